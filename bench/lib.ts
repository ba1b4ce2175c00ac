/**
 * What the benchmarks share: statistics, free ports and process memory, fresh databases, and a lean
 * HTTP "browser" (node:http with keep-alive, a cookie jar and the CSRF token of the last page).
 */
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { createPostgresDatabase } from '../test/helpers/postgres.js';

export { postgresAnswers } from '../test/helpers/postgres.js';

export const DEFAULT_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The p-th percentile (nearest rank); NaN for no samples. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** VmRSS of a process in MiB, or null where there is no /proc (not Linux) or it has exited. */
export async function rssMiB(pid: number): Promise<number | null> {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** A fresh PostgreSQL database on the server `adminUrl` names, as test/helpers/context.ts makes them. */
export function freshPostgresDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  return createPostgresDatabase(adminUrl, 'portcullis_bench');
}

export type Target = { kind: 'sqlite' } | { kind: 'postgres'; adminUrl: string };

/** A fresh database for one run: a SQLite file in `dataDir`, or a new PostgreSQL database. */
export async function freshDatabase(target: Target, dataDir: string): Promise<{ url: string; label: string; drop(): Promise<void> }> {
  if (target.kind === 'sqlite') return { url: `sqlite:${path.join(dataDir, 'bench.db')}`, label: 'SQLite', drop: async () => undefined };
  const database = await freshPostgresDatabase(target.adminUrl);
  return { ...database, label: `PostgreSQL at ${new URL(database.url).host}` };
}

// ── HTTP ────────────────────────────────────────────────────────────────────────────────────────────

/** Keep-alive connections for pages and API requests (an event stream takes a connection of its own). */
export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface HttpResponse {
  status: number;
  location: string | undefined;
  setCookies: string[];
  body: string;
  /** performance.now() when the answer's last byte arrived. */
  at: number;
}

export function request(origin: URL, method: 'GET' | 'POST', pathname: string, headers: Record<string, string>, body?: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: origin.hostname, port: origin.port, method, path: pathname, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, setCookies: res.headers['set-cookie'] ?? [], body: text, at: performance.now() }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One browser: its own cookie jar and the CSRF token of the last page it saw. */
export class FormBrowser {
  protected readonly cookies = new Map<string, string>();
  private csrf = '';
  protected readonly origin: URL;

  constructor(origin: string) {
    this.origin = new URL(origin);
  }

  protected cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async send(method: 'GET' | 'POST', pathname: string, form?: Record<string, string>): Promise<HttpResponse> {
    const headers: Record<string, string> = { cookie: this.cookieHeader() };
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams({ _csrf: this.csrf, ...form }).toString();
      // What a browser sends with a same-site form post; the server's CSRF check reads both.
      Object.assign(headers, {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
        origin: this.origin.origin,
        'sec-fetch-site': 'same-origin',
      });
    }
    const response = await request(this.origin, method, pathname, headers, body);
    for (const line of response.setCookies) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    this.csrf = /name="_csrf" value="([^"]+)"/.exec(response.body)?.[1] ?? this.csrf;
    return response;
  }
}
