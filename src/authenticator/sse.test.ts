import { describe, expect, it } from 'vitest';
import { EventStreamParser } from './sse.js';

function parseAll(chunks: string[]) {
  const parser = new EventStreamParser();
  const events = chunks.flatMap((chunk) => parser.feed(chunk));
  return [...events, ...parser.end()];
}

describe('EventStreamParser', () => {
  it('reads the device stream: a comment on opening, challenge events, keep-alive comments', () => {
    const stream = ': open\n\nevent: challenge\ndata: {"id":"a"}\n\n: keep-alive\n\nevent: challenge\ndata: {"id":"b"}\n\n';
    expect(parseAll([stream])).toEqual([
      { event: 'challenge', data: '{"id":"a"}', lastEventId: '' },
      { event: 'challenge', data: '{"id":"b"}', lastEventId: '' },
    ]);
  });

  it('gives the same events however the bytes are split, including a CRLF split in two', () => {
    const stream = 'event: challenge\r\ndata: {"id":"x"}\r\n\r\nevent: challenge\rdata: {"id":"y"}\r\r';
    const whole = parseAll([stream]);
    expect(whole.map((e) => e.data)).toEqual(['{"id":"x"}', '{"id":"y"}']);
    for (let cut = 1; cut < stream.length; cut++) expect(parseAll([stream.slice(0, cut), stream.slice(cut)]), `cut at ${cut}`).toEqual(whole);
    expect(parseAll(stream.split(''))).toEqual(whole);
  });

  it.each([
    ['joins data lines with newlines', 'data: one\ndata: two\n\n', [{ event: 'message', data: 'one\ntwo', lastEventId: '' }]],
    ['takes only one space after the colon', 'data:  two spaces\n\n', [{ event: 'message', data: ' two spaces', lastEventId: '' }]],
    ['reads a field with no colon as empty', 'data\n\n', [{ event: 'message', data: '', lastEventId: '' }]],
    ['ignores an event with no data', 'event: challenge\n\n', []],
    ['drops an event not ended by a blank line', 'event: challenge\ndata: {"id":"z"}\n', []],
    ['ignores unknown fields', 'foo: bar\ndata: x\n\n', [{ event: 'message', data: 'x', lastEventId: '' }]],
    ['keeps the last event id', 'id: 7\ndata: x\n\ndata: y\n\n', [{ event: 'message', data: 'x', lastEventId: '7' }, { event: 'message', data: 'y', lastEventId: '7' }]],
    ['skips a byte order mark', '\uFEFFdata: x\n\n', [{ event: 'message', data: 'x', lastEventId: '' }]],
  ])('%s', (_name, stream, expected) => {
    expect(parseAll([stream])).toEqual(expected);
  });

  it('records retry: in milliseconds', () => {
    const parser = new EventStreamParser();
    parser.feed('retry: 3000\n\nretry: soon\n\n');
    expect(parser.retryMs).toBe(3000);
  });
});
