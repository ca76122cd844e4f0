// The live progress line: rewritten in place on a terminal, a plain line every few seconds otherwise.
import { performance } from 'node:perf_hooks';
import type { ProgressSink } from './runner.ts';
import type { RequestRecord } from './types.ts';

export class ProgressLine implements ProgressSink {
  private sentCount = 0;
  private doneCount = 0;
  private errorCount = 0;
  private outputTokens = 0;
  private start = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
    private readonly total: number | null,
  ) {}

  begin(): void {
    this.start = performance.now();
    const tty = !!this.stream.isTTY;
    this.timer = setInterval(() => this.draw(tty), tty ? 500 : 5000);
    this.timer.unref();
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.draw(!!this.stream.isTTY);
    if (this.stream.isTTY) this.stream.write('\n');
  }

  sent(): void {
    this.sentCount++;
  }

  finished(rec: RequestRecord): void {
    this.doneCount++;
    if (!rec.ok) this.errorCount++;
    else this.outputTokens += rec.outputTokens ?? 0;
  }

  line(): string {
    const s = (performance.now() - this.start) / 1000;
    const total = this.total ? `/${this.total}` : '';
    return `[${this.label}] ${s.toFixed(1)}s sent ${this.sentCount}${total} done ${this.doneCount} in-flight ${this.sentCount - this.doneCount} errors ${this.errorCount} | ${(this.doneCount / Math.max(s, 1e-3)).toFixed(1)} req/s ${(this.outputTokens / Math.max(s, 1e-3)).toFixed(0)} tok/s`;
  }

  private draw(tty: boolean): void {
    this.stream.write(tty ? `\r\x1b[K${this.line()}` : `${this.line()}\n`);
  }
}
