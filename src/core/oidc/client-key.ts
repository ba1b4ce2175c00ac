/**
 * A client's policy key (issue #13 point 4): what a policy requirement names it by (`client:KEY`). Lower-case
 * letters, digits and dashes, 1 to 64, starting with a letter or digit (the policy document's target
 * syntax); unique among clients. By default it is the client's name, slugified.
 */

export const CLIENT_KEY = /^[a-z0-9][a-z0-9-]{0,63}$/;

export const isClientKey = (value: string): boolean => CLIENT_KEY.test(value);

/** "Staff rota (beta)" → "staff-rota-beta"; a name of no letter or digit → "client". */
export function clientKeyFromName(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/g, '');
  return slug || 'client';
}

/** `key`, or `key-2`, `key-3`… (kept within 64 characters), the first not taken. */
export function uniqueClientKey(key: string, taken: ReadonlySet<string>): string {
  if (!taken.has(key)) return key;
  for (let n = 2; ; n += 1) {
    const suffix = `-${n}`;
    const candidate = `${key.slice(0, 64 - suffix.length).replace(/-+$/g, '')}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}
