// A push-driven AsyncIterable: the producer pushes events, the consumer pulls with for-await.
// Ends after `end()`; events pushed after that are dropped.

export class EventQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | null = null;
  private ended = false;

  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) { const w = this.waiter; this.waiter = null; w({ value: item, done: false }); }
    else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    if (this.waiter && this.items.length === 0) { const w = this.waiter; this.waiter = null; w({ value: undefined, done: true }); }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => { this.waiter = resolve; });
      },
      return: () => {
        this.ended = true;
        this.items.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
