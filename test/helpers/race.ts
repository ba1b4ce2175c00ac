/**
 * Requests that arrive at the same instant: every socket is opened and sent all but the last byte of
 * its request, then the last bytes go out together, in one tick (the "last-byte sync" of race-condition
 * testing). The server can start none of them before all are complete, so they are handled as
 * concurrently as the server allows.
 */
import { connect, type Socket } from 'node:net';
import { ORIGIN } from './http.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A form post as a browser on our own origin sends it, with the cookies (and CSRF token) it holds. */
export function formPost(path: string, form: Record<string, string>, cookies: ReadonlyMap<string, string>): string {
  const body = new URLSearchParams(form).toString();
  return [
    `POST ${path} HTTP/1.1`,
    `Host: ${new URL(ORIGIN).host}`,
    'Content-Type: application/x-www-form-urlencoded',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Origin: ${ORIGIN}`,
    'Sec-Fetch-Site: same-origin',
    `Cookie: ${[...cookies].map(([k, v]) => `${k}=${v}`).join('; ')}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

function parse(raw: string): RawResponse {
  const split = raw.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = raw.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body: raw.slice(split + 4) };
}

/**
 * Sends every request over its own connection from `localAddress` (any 127.x.y.z address: a test can
 * stand for its own client address) and releases them together; resolves with the responses in order.
 */
export async function releaseTogether(port: number, requests: string[], localAddress = '127.0.0.1'): Promise<RawResponse[]> {
  const sockets = await Promise.all(
    requests.map(
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  const responses = sockets.map(
    (socket) =>
      new Promise<RawResponse>((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.once('error', reject);
        socket.once('end', () => resolve(parse(Buffer.concat(chunks).toString('utf8'))));
      }),
  );
  const bytes = requests.map((request) => Buffer.from(request, 'utf8'));
  await Promise.all(sockets.map((socket, i) => new Promise<void>((resolve) => socket.write(bytes[i]!.subarray(0, -1), () => resolve()))));
  // Give the server time to read every head and wait on every body.
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const [i, socket] of sockets.entries()) socket.write(bytes[i]!.subarray(-1));
  return Promise.all(responses);
}

/** How many responses had each status. */
export function tally(responses: RawResponse[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of responses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}
