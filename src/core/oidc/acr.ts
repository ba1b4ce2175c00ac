/**
 * Authentication context classes (`acr`) and method references (`amr`) for ID tokens (issue #13; docs/oidc.md).
 *
 * The classes are ordered: each one is met by every stronger one. A session reaches the class of the
 * strongest method it used: the password alone `password`; any second factor `mfa`; an approved push
 * `app-push`; a passkey `phishing-resistant`. What a request asks
 * (`acr_values`, OpenID Connect Core 1.0 §3.1.2.1, in order of preference) is met by the first asked class the
 * session reaches; a class no method reaches (an unknown one included) is never claimed — that ends in
 * `unmet_authentication_requirements` (RFC 9470 §3), never a weaker acr than asked.
 */
import type { MethodKind, MethodUse } from '../methods.js';
import { amrValues } from '../methods.js';
import type { BuiltInStrength } from '../methods/definition.js';
import { methodDefinitions } from '../methods/registry.js';

export const ACR = {
  password: 'urn:portcullis:acr:password',
  mfa: 'urn:portcullis:acr:mfa',
  appPush: 'urn:portcullis:acr:app-push',
  phishingResistant: 'urn:portcullis:acr:phishing-resistant',
} as const;

export type Acr = (typeof ACR)[keyof typeof ACR];

/** Weakest first: a class is met by itself and every class after it. */
const ORDER: readonly Acr[] = [ACR.password, ACR.mfa, ACR.appPush, ACR.phishingResistant];

/** What discovery advertises (`acr_values_supported`): every class, now that passkeys reach the strongest. */
export const ACR_VALUES_SUPPORTED: readonly Acr[] = ORDER;

const BY_STRENGTH: Record<BuiltInStrength, Acr> = { mfa: ACR.mfa, 'app-push': ACR.appPush, 'phishing-resistant': ACR.phishingResistant };

/**
 * The class each method reaches on its own (with the password before it, for second factors): the
 * strongest built-in strength its definition meets; any other second factor (a Temporary Access Pass,
 * which stands in for one at sign-in: docs/policy.md) reaches `mfa`. An emailed code only starts a
 * password reset, which ends without a session.
 */
function methodAcr(method: MethodKind): Acr | null {
  if (method === 'password') return ACR.password;
  if (method === 'email') return null;
  const meets = methodDefinitions[method].meets.map((s) => BY_STRENGTH[s]);
  return meets.reduce<Acr>((best, acr) => (rank(acr) > rank(best) ? acr : best), ACR.mfa);
}

const rank = (acr: string): number => ORDER.indexOf(acr as Acr);

export function isKnownAcr(value: string): value is Acr {
  return rank(value) !== -1;
}

/** The strongest class these methods reach, or null when none (no method at all). */
export function acrReachedBy(methods: readonly MethodKind[]): Acr | null {
  let best: Acr | null = null;
  for (const method of methods) {
    const acr = methodAcr(method);
    if (acr !== null && (best === null || rank(acr) > rank(best))) best = acr;
  }
  return best;
}

/**
 * The class a policy strength asks for (issue #13 point 4): the weakest class every one of its methods
 * reaches — `mfa` → `…:mfa`, `app-push` (push, passkey) → `…:app-push`, `phishing-resistant` → its own;
 * a custom strength of a text and push → `…:mfa`. Null for a strength of no method that reaches one.
 */
export function acrForStrength(methods: Iterable<MethodKind>): Acr | null {
  let weakest: Acr | null = null;
  for (const method of methods) {
    const acr = methodAcr(method);
    if (acr === null) continue;
    if (weakest === null || rank(acr) < rank(weakest)) weakest = acr;
  }
  return weakest;
}

/** The stronger of two classes (null: none). */
export function strongerAcr(a: Acr | null, b: Acr | null): Acr | null {
  if (a === null) return b;
  if (b === null) return a;
  return rank(a) >= rank(b) ? a : b;
}

/**
 * What was asked, raised to at least `floor` (a policy requirement of the application): each asked class
 * weaker than the floor becomes the floor, in the client's order of preference; nothing asked asks the
 * floor. A class Portcullis does not know stays as it is (it is never met). No floor: what was asked.
 */
export function raiseAskedAcr(asked: readonly string[], floor: Acr | null): string[] {
  if (floor === null) return [...asked];
  if (asked.length === 0) return [floor];
  return [...new Set(asked.map((value) => (isKnownAcr(value) && rank(value) < rank(floor) ? floor : value)))];
}

export type AcrDecision = { met: true; acr: Acr } | { met: false };

/**
 * Whether `reached` meets what was asked (`asked` in order of preference, empty when nothing was), and the
 * acr to put in the ID token: the first asked class that is met (so the token says what was asked), or,
 * when nothing was asked, the class reached.
 */
export function decideAcr(asked: readonly string[], reached: Acr | null): AcrDecision {
  if (reached === null) return { met: false };
  if (asked.length === 0) return { met: true, acr: reached };
  for (const value of asked) {
    if (isKnownAcr(value) && rank(value) <= rank(reached)) return { met: true, acr: value };
  }
  return { met: false };
}

/**
 * RFC 8176 values of the methods used in a session, each once, in the order first used, and `mfa` (RFC 8176
 * §2: "multiple-factor authentication") when more than one kind of method was used. The values are the
 * method registry's (`amrValues`).
 */
export function amrFor(uses: readonly MethodUse[]): string[] {
  const kinds = [...new Set(uses.map((use) => use.method).filter((kind) => kind !== 'email'))];
  const values = [...new Set(kinds.map((kind) => amrValues[kind]))];
  return kinds.length > 1 ? [...values, 'mfa'] : values;
}

/**
 * `acr_values` as sent (space-separated, OpenID Connect Core 1.0 §3.1.2.1), plus an essential `acr` claim's.
 * `acr_values` are voluntary: a class Portcullis does not define is left out, as if not asked (the ID token
 * then says the class reached, which the application checks). An essential `acr` claim is kept as asked:
 * an unknown class there is never met.
 */
export function askedAcrValues(acrValues: string | undefined, claimsAcr: readonly string[] = []): string[] {
  const fromParam = (acrValues ?? '').split(' ').filter((value) => value.length > 0 && isKnownAcr(value));
  return [...new Set([...fromParam, ...claimsAcr])];
}

/** Whether a method of this kind, after the password, reaches `acr` (an unknown class is reached by none). */
export function methodMeetsAcr(kind: MethodKind, acr: string): boolean {
  const reached = methodAcr(kind);
  return reached !== null && isKnownAcr(acr) && rank(acr) <= rank(reached);
}
