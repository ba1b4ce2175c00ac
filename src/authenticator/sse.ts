/**
 * An incremental parser for `text/event-stream` (the WHATWG HTML standard, §9.2.6 "Interpreting an
 * event stream"). The SDK reads the device event stream with `fetch` rather than `EventSource`,
 * because `EventSource` cannot send the `Authorization` header that carries the signed request.
 */

export interface ServerSentEvent {
  /** The `event:` field, or "message" when there was none. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last `id:` seen on the stream (the spec's "last event ID buffer"). */
  lastEventId: string;
}

export class EventStreamParser {
  private buffer = '';
  private started = false;
  private eventType = '';
  private data: string[] = [];
  private lastEventId = '';
  /** The `retry:` field, in milliseconds, if the server sent one. */
  retryMs: number | null = null;

  /** Feeds decoded text; returns the events completed by it. */
  feed(text: string): ServerSentEvent[] {
    this.buffer += text;
    if (!this.started && this.buffer.length > 0) {
      this.started = true;
      // §9.2.6: a leading U+FEFF BOM is ignored.
      if (this.buffer.startsWith('\uFEFF')) this.buffer = this.buffer.slice(1);
    }
    const events: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** The stream ended: §9.2.6 discards an event that was not followed by a blank line. */
  end(): ServerSentEvent[] {
    const trailing = this.buffer.endsWith('\r') ? this.feed('\n') : [];
    this.buffer = '';
    this.data = [];
    this.eventType = '';
    return trailing;
  }

  private line(line: string): ServerSentEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // a comment, such as the server's keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // other fields are ignored
    }
    return null;
  }

  private dispatch(): ServerSentEvent | null {
    const type = this.eventType;
    const data = this.data;
    this.eventType = '';
    this.data = [];
    if (data.length === 0) return null;
    return { event: type || 'message', data: data.join('\n'), lastEventId: this.lastEventId };
  }
}
