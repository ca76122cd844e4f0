// The download tests' one way to expect a failure: a HubError of the given reason whose message
// matches `text` (what the CLI prints to the user).

import assert from 'node:assert/strict';
import { HubError } from '../errors.ts';

export async function rejectsWith(p: Promise<unknown>, reason: string, text: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof HubError, `expected a HubError, got ${e.stack}`);
    assert.equal(e.reason, reason, e.message);
    assert.match(e.message, text);
    return true;
  });
}
