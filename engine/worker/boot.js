// Worker entry: TypeScript sources run through tsx's loader in this thread too.
import { register } from 'tsx/esm/api';
register();
await import('./worker.ts');
