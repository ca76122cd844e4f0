// One error class for everything a download can go wrong with that the user can act on (unknown repo,
// gated repo, no safetensors, disk full, offline cache miss...). The CLI prints its message alone.

export class HubError extends Error {
  constructor(
    message: string,
    /** Machine-readable reason, for tests and callers that branch on it. */
    readonly reason: HubErrorReason = 'other',
  ) {
    super(message);
  }
}

export type HubErrorReason =
  | 'not-found'
  | 'gated'
  | 'auth'
  | 'revision'
  | 'no-safetensors'
  | 'checksum'
  | 'disk-full'
  | 'offline'
  | 'network'
  | 'archive'
  | 'other';
