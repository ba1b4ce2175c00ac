/**
 * A small cookie-keeping client over Fastify's inject(), behaving like a browser posting forms from
 * this site (Origin and Sec-Fetch-Site set, the page's CSRF token sent back).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export const ORIGIN = 'http://localhost:8080';

export interface SetCookie {
  name: string;
  value: string;
  attributes: string;
}

export function parseSetCookies(response: LightMyRequestResponse): SetCookie[] {
  const header = response.headers['set-cookie'];
  const list = Array.isArray(header) ? header : header ? [header] : [];
  return list.map((line) => {
    const [pair = '', ...rest] = line.split(';');
    const eq = pair.indexOf('=');
    return { name: pair.slice(0, eq).trim(), value: decodeURIComponent(pair.slice(eq + 1).trim()), attributes: rest.join(';') };
  });
}

export function csrfFrom(html: string): string | undefined {
  return /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
}

export class TestBrowser {
  readonly cookies = new Map<string, string>();
  lastHtml = '';

  constructor(
    readonly app: FastifyInstance,
    readonly remoteAddress = '203.0.113.10',
  ) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private remember(response: LightMyRequestResponse): LightMyRequestResponse {
    for (const cookie of parseSetCookies(response)) {
      if (cookie.value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(cookie.attributes)) this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    if (String(response.headers['content-type'] ?? '').startsWith('text/html')) this.lastHtml = response.body;
    return response;
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.remember(
      await this.app.inject({ method: 'GET', url, remoteAddress: this.remoteAddress, headers: { cookie: this.cookieHeader(), ...headers } }),
    );
  }

  /** Posts a form with the CSRF token of the last page seen (unless the form names its own _csrf). */
  async post(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const token = csrfFrom(this.lastHtml);
    const body = new URLSearchParams({ ...(token ? { _csrf: token } : {}), ...form }).toString();
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        remoteAddress: this.remoteAddress,
        payload: body,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          origin: ORIGIN,
          'sec-fetch-site': 'same-origin',
          cookie: this.cookieHeader(),
          ...headers,
        },
      }),
    );
  }

  /** Email, then password; returns the password step's response. */
  async signIn(email: string, password: string): Promise<LightMyRequestResponse> {
    await this.get('/sign-in');
    const first = await this.post('/sign-in', { email });
    if (first.statusCode !== 303) return first;
    await this.get('/sign-in/password');
    return this.post('/sign-in/password', { password });
  }
}
