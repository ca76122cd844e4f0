// Incremental Server-Sent Events parser (the subset OpenAI-style servers use): bytes in, one `data`
// payload out per event. Written here rather than shared with server/ so the load tester checks the
// wire format independently of the code it measures.
//
// Per the SSE spec: lines end in \n, \r\n or \r; `data:` lines (one optional space after the colon)
// accumulate, joined by \n; an empty line dispatches; lines starting with ':' are comments
// (keep-alives); other fields (event, id, retry) are ignored.

export class SseParser {
  private decoder = new TextDecoder('utf-8');
  private pending = '';
  private dataLines: string[] = [];
  private hasData = false;
  private skipLeadingLf = false;

  /** Feed a chunk of bytes; returns the data payloads of every event completed by it. */
  push(chunk: Uint8Array): string[] {
    return this.feedText(this.decoder.decode(chunk, { stream: true }));
  }

  /** Flush at end of stream: an event without its final blank line is not dispatched (per spec). */
  end(): { danglingBytes: boolean } {
    const rest = this.decoder.decode();
    return { danglingBytes: (this.pending + rest).length > 0 || this.hasData };
  }

  private feedText(text: string): string[] {
    const out: string[] = [];
    let start = 0;
    let i = 0;
    if (this.skipLeadingLf && text.length > 0) {
      if (text.charCodeAt(0) === 10) start = i = 1;
      this.skipLeadingLf = false;
    }
    for (; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      const line = this.pending + text.slice(start, i);
      this.pending = '';
      if (ch === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.skipLeadingLf = true; // a \r\n split across chunks
        }
      }
      start = i + 1;
      this.line(line, out);
    }
    this.pending += text.slice(start);
    return out;
  }

  private line(line: string, out: string[]): void {
    if (line.length === 0) {
      if (this.hasData) out.push(this.dataLines.join('\n'));
      this.dataLines = [];
      this.hasData = false;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.dataLines.push(value);
    this.hasData = true;
  }
}
