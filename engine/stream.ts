// One request's event stream, the only stream class of the engine (the loop's and the worker
// client's): the producer pushes, the consumer pulls with for-await. Events are buffered until pulled.
// Leaving early (break, or return() from a closed socket) runs `onCancel` once so the engine aborts
// the request and frees its cache; a stream that already ended cancels nothing.
export class EngineStream<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | null = null;
  private ended = false;
  private iterated = false;

  constructor(private readonly onCancel: () => void) {}

  get isEnded(): boolean {
    return this.ended;
  }

  push(event: T): void {
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

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterated) throw new Error('a request stream can be iterated only once');
    this.iterated = true;
    return {
      next: () => {
        if (this.buffer.length) return Promise.resolve({ value: this.buffer.shift()!, done: false });
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
