#!/usr/bin/env node
// Entry point of the `blockserve` command: the compiled build in dist/ (scripts/build.mjs; `npm install`
// makes it). No TypeScript loader at run time.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('blockserve: the compiled build is missing (dist/cli/main.js): run `npm run build` (npm install runs it)\n');
  process.exit(1);
}
await import(main.href);
