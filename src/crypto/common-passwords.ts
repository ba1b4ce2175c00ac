/**
 * The blocklist of commonly used passwords (NIST SP 800-63B §5.1.1.2): the 49,000-entry list that
 * zxcvbn-ts maintains (@zxcvbn-ts/language-common), drawn from public breach corpora. Loaded once.
 */
import { createRequire } from 'node:module';

/** Loaded at the first password checked, not at start (2.3 MB of heap). */
const loadDictionary = () => (createRequire(import.meta.url)('@zxcvbn-ts/language-common') as typeof import('@zxcvbn-ts/language-common')).dictionary;

let list: Set<string> | undefined;

export function commonPasswords(): Set<string> {
  if (!list) {
    const words = (loadDictionary() as Record<string, string[]>)['passwords-common'] ?? [];
    list = new Set(words.map((w) => w.toLowerCase()));
  }
  return list;
}

export function isCommonPassword(lowerCased: string): boolean {
  return commonPasswords().has(lowerCased);
}
