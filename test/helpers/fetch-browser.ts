/**
 * A browser over fetch, for tests that need a listening server (the OpenID Connect provider answers the
 * raw request, which inject() would also reach, but its redirects lead to other origins): keeps cookies
 * (deleting expired ones), sends forms from this site with the page's CSRF token, and follows redirects
 * within Portcullis.
 */
export interface FetchAnswer {
  status: number;
  location: string | null;
  body: string;
  contentType: string;
  headers: Headers;
}

export class FetchBrowser {
  readonly cookies = new Map<string, string>();
  csrf = '';
  constructor(
    readonly base: string,
    /** The Accept header to send (oidc-provider answers HTML only to a browser that accepts it). */
    private readonly options: { accept?: string } = {},
  ) {}

  async send(method: 'GET' | 'POST', target: string, form?: Record<string, string>): Promise<FetchAnswer> {
    const headers: Record<string, string> = {
      ...(this.options.accept ? { accept: this.options.accept } : {}),
      cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
    };
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams({ _csrf: this.csrf, ...form }).toString();
      Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', origin: this.base, 'sec-fetch-site': 'same-origin' });
    }
    const response = await fetch(new URL(target, this.base), { method, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attributes.some((a) => /max-age=0|expires=thu, 01 jan 1970/i.test(a.trim()))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    this.csrf = /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? this.csrf;
    return { status: response.status, location: response.headers.get('location'), body: text, contentType: response.headers.get('content-type') ?? '', headers: response.headers };
  }

  /**
   * Where a browser goes next from an answer: its redirect, or the instant meta refresh of a page that
   * continues by itself (oidc/continue.njk); followed as `follow` does.
   */
  async next(answer: FetchAnswer): Promise<FetchAnswer & { url: string }> {
    const refresh = /<meta http-equiv="refresh" content="0;url=([^"]+)">/.exec(answer.body)?.[1]?.replaceAll('&amp;', '&');
    const target = answer.location ?? refresh;
    if (!target) throw new Error(`no redirect and no refresh in a ${answer.status} answer`);
    return this.follow(target);
  }

  /** GETs, following redirects within Portcullis, until a page or a redirect to another origin. */
  async follow(target: string): Promise<FetchAnswer & { url: string }> {
    let url = target;
    for (let hops = 0; hops < 20; hops++) {
      const answer = await this.send('GET', url);
      if (answer.status < 300 || answer.status >= 400 || !answer.location) return { ...answer, url };
      const next = new URL(answer.location, new URL(url, this.base));
      if (next.origin !== new URL(this.base).origin) return { ...answer, url };
      url = next.href;
    }
    throw new Error('too many redirects');
  }
}
