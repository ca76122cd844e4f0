// One request's event stream: events are buffered until the consumer pulls them. If the consumer stops
// iterating early (break, or return() from a closed socket), `onCancel` runs so the engine can abort the
// request and free its cache.
import type { EngineEvent } from '../api.ts';

export class RequestStream implements AsyncIterable<EngineEvent> {
  private readonly buffer: EngineEvent[] = [];
  private waiter: ((r: IteratorResult<EngineEvent>) => void) | null = null;
  private ended = false;
  private iterated = false;

  constructor(private readonly onCancel: () => void) {}

  get isEnded(): boolean {
    return this.ended;
  }

  push(event: EngineEvent): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: event, done: false });
    } else {
      this.buffer.push(event);
    }
  }

  /** No more events after the ones buffered. */
  end(): void {
    this.ended = true;
    if (this.waiter && this.buffer.length === 0) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<EngineEvent> {
    if (this.iterated) throw new Error('a request stream can be iterated only once');
    this.iterated = true;
    return {
      next: () => {
        const e = this.buffer.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiter = resolve;
        });
      },
      return: () => {
        const wasEnded = this.ended;
        this.buffer.length = 0;
        this.ended = true;
        if (!wasEnded) this.onCancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
