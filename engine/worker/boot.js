// Worker entry when the engine runs from the TypeScript sources (tests, development): the thread does
// not inherit tsx's loader, so register it here. The compiled build (dist/) starts worker.js directly.
import { register } from 'tsx/esm/api';
register();
await import('./worker.ts');
