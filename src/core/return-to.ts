/**
 * Where to go after signing in. Only a path on this site is accepted (OWASP ASVS 5 V3.7: no open
 * redirects): it must start with one "/", and not "//" or "/\" which browsers read as another host.
 */
export const DEFAULT_RETURN_TO = '/account';

export function safeReturnTo(candidate: unknown): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 2048) return DEFAULT_RETURN_TO;
  if (!candidate.startsWith('/') || candidate.startsWith('//') || candidate.startsWith('/\\')) return DEFAULT_RETURN_TO;
  if (/[\u0000-\u001f\u007f]/.test(candidate)) return DEFAULT_RETURN_TO;
  return candidate;
}
