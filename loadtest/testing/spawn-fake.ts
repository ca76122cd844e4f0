// Test helper: start the fake server in a child process and talk to it over HTTP.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FakeScript, TruthRecord } from './fake-server.ts';

export interface FakeHandle {
  url: string;
  truth(): Promise<TruthRecord[]>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function spawnFakeServer(script: FakeScript): Promise<FakeHandle> {
  const main = fileURLToPath(new URL('./fake-server-main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, JSON.stringify(script)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('fake server did not start in 20 s')), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /LISTENING (\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`fake server exited with ${code}`)));
  });
  return {
    url,
    truth: async () => (await fetch(`${url}/_truth`)).json() as Promise<TruthRecord[]>,
    reset: async () => void (await fetch(`${url}/_reset`, { method: 'POST' })).arrayBuffer(),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
