// Test helper: a RunIo whose streams collect text instead of printing it.
import type { RunIo } from '../run.ts';

export function captureIo(): RunIo & { outText(): string; errText(): string } {
  let out = '';
  let err = '';
  return {
    out: {
      write: (s: string) => {
        out += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    err: {
      write: (s: string) => {
        err += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    outText: () => out,
    errText: () => err,
  };
}
