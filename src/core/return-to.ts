/**
 * Where to go after signing in. Only a path on this site is accepted (OWASP ASVS 5 V3.7: no open
 * redirects): it must start with one "/", and not "//" or "/\" which browsers read as another host.
 *
 * It becomes a Location header, which carries ISO-8859-1 at most (RFC 9110 §5.5; Node refuses more, so
 * a returnTo with "€" used to turn a finished sign-in into a 500, issue #12). Everything but visible
 * ASCII is therefore percent-encoded as UTF-8 (RFC 3986 §2.1), which is what a browser would have sent
 * for the same address: the page it lands on reads the same path and query.
 */
export const DEFAULT_RETURN_TO = '/account';

/** The longest returnTo kept, once encoded, in octets: longer ones go to the default. */
export const MAX_RETURN_TO_LENGTH = 2048;

export function safeReturnTo(candidate: unknown): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > MAX_RETURN_TO_LENGTH) return DEFAULT_RETURN_TO;
  if (!candidate.startsWith('/') || candidate.startsWith('//') || candidate.startsWith('/\\')) return DEFAULT_RETURN_TO;
  // Control characters (C0, DEL, C1) would split or hide part of a header (CWE-113).
  if (/[\u0000-\u001f\u007f-\u009f]/.test(candidate)) return DEFAULT_RETURN_TO;
  // An unpaired surrogate has no UTF-8 form, so no address to go to (with the u flag, pairs do not match).
  if (/[\ud800-\udfff]/u.test(candidate)) return DEFAULT_RETURN_TO;
  const encoded = candidate.replace(/[^\x21-\x7e]+/gu, (run) => encodeURIComponent(run));
  // The limit is on what is sent, so that a returnTo passed through here again stays as it is.
  return encoded.length <= MAX_RETURN_TO_LENGTH ? encoded : DEFAULT_RETURN_TO;
}
