import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { builtInRoles, isValidGroupName } from '../directory.js';
import { methodDefinitions, type SecondFactorKind } from '../methods/registry.js';
import { EMPTY_PROFILE, KIND_BITS, kindsOfMask, maskOf, parseProfile, profileKey } from './profile.js';

/** The order SQLite's BINARY and PostgreSQL's "C" collations give: UTF-8 bytes, compared as bytes. */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

const kindOrder = KIND_BITS.map(([kind]) => kind);
/** The kinds evaluation counts (a Temporary Access Pass is issued, not registered, and evaluation ignores it). */
const countedKinds = (Object.keys(methodDefinitions) as SecondFactorKind[]).filter((k) => k !== 'tap');

describe('KIND_BITS', () => {
  it('gives every kind evaluation counts its own bit, and nothing else one', () => {
    expect(KIND_BITS.map(([kind]) => kind).sort()).toEqual([...countedKinds].sort());
    const bits = KIND_BITS.map(([, bit]) => bit);
    for (const bit of bits) expect(Number.isInteger(Math.log2(bit))).toBe(true);
    expect(new Set(bits).size).toBe(bits.length);
  });

  it('keeps the values stored in existing rows (changing one silently re-buckets every user)', () => {
    expect(Object.fromEntries(KIND_BITS)).toEqual({ sms: 1, voice: 2, totp: 4, push: 8, passkey: 16, 'recovery-code': 32 });
  });
});

describe('profileKey and parseProfile', () => {
  it.each([
    ['the module’s own example', { roles: ['user', 'local-admin'], groups: ['mfa pilot'], kinds: ['sms', 'push'] }, 'local-admin,user|mfa pilot|9'],
    ['a new user with nothing', { roles: [], groups: [], kinds: [] }, EMPTY_PROFILE],
    ['repeated roles, groups and kinds (two phones) count once', { roles: ['user', 'user'], groups: ['b', 'a', 'b'], kinds: ['sms', 'sms', 'voice'] }, 'user|a,b|3'],
    ['kinds that evaluation ignores add no bit', { roles: ['user'], groups: [], kinds: ['tap', 'password', 'email', 'unknown'] }, 'user||0'],
    ['every counted kind', { roles: ['global-admin', 'user'], groups: [], kinds: ['passkey', 'push', 'totp', 'voice', 'sms'] }, 'global-admin,user||31'],
    ['upper case sorts before lower case, as in SQL binary order', { roles: [], groups: ['beta', 'Alpha', 'alpha'], kinds: [] }, '|Alpha,alpha,beta|0'],
    // Regression: a plain .sort() is UTF-16 code-unit order, which put '𝐀' (U+1D400, surrogates D835 DC00)
    // before 'ｆ' (U+FF46); UTF-8 byte order, which SQL uses, puts it after, so the key written by the
    // application and the one recomputed in SQL differed, and the compliance report counted the same
    // users in two profiles.
    ['code-point order above U+FFFF (UTF-8 byte order, as SQL gives)', { roles: [], groups: ['𝐀lpha', 'ｆｉｎａｎｃｅ', 'Zeta'], kinds: [] }, '|Zeta,ｆｉｎａｎｃｅ,𝐀lpha|0'],
  ])('%s', (_name, input, key) => {
    expect(profileKey(input)).toBe(key);
  });

  it('reads the empty profile as no roles, groups or kinds (not one empty-named role)', () => {
    expect(parseProfile(EMPTY_PROFILE)).toEqual({ roles: [], groups: [], kinds: [] });
  });

  it('reads kinds from the mask in KIND_BITS order, whatever order they were registered in', () => {
    expect(parseProfile('user|mfa pilot|9')).toEqual({ roles: ['user'], groups: ['mfa pilot'], kinds: ['sms', 'push'] });
    expect(parseProfile(profileKey({ roles: [], groups: [], kinds: ['passkey', 'totp', 'sms'] })).kinds).toEqual(['sms', 'totp', 'passkey']);
  });

  it('relies on group and role names never holding its separators (it does not escape them)', () => {
    // profileKey joins with ',' and '|' without escaping: a name holding either would read back as
    // different names. Group names are checked on creation; roles are the built-in ones.
    for (const name of ['a,b', 'a|b', ',', '|']) expect(isValidGroupName(name)).toBe(false);
    for (const role of builtInRoles) expect(role.name).not.toMatch(/[,|]/);
  });
});

// ── Properties ──────────────────────────────────────────────────────────────────────────────────────

/** Names a group may have: letters and digits from several scripts (some beyond U+FFFF), and the allowed punctuation. */
const arbGroupName = fc
  .array(fc.constantFrom('a', 'B', 'z', '0', '9', 'é', 'É', 'ß', 'ｆ', 'ｱ', '中', '𝐀', '𠀀', ' ', '.', '_', '(', ')', '&', "'", '-'), { minLength: 1, maxLength: 12 })
  .map((chars) => chars.join(''))
  .filter((name) => name === name.trim() && isValidGroupName(name));
const arbRole = fc.constantFrom(...builtInRoles.map((r) => r.name));
const arbKind = fc.constantFrom<string>(...kindOrder, 'tap');
const arbInput = fc.record({
  roles: fc.array(arbRole, { maxLength: 6 }),
  groups: fc.array(arbGroupName, { maxLength: 6 }),
  kinds: fc.array(arbKind, { maxLength: 8 }),
});

describe('properties (fast-check)', () => {
  it('round-trips: parseProfile(profileKey(x)) is x with names distinct in SQL binary order and kinds distinct in bit order', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        expect(parseProfile(profileKey(input))).toEqual({
          roles: [...new Set(input.roles)].sort(byUtf8),
          groups: [...new Set(input.groups)].sort(byUtf8),
          kinds: kindOrder.filter((k) => input.kinds.includes(k)),
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('is the same key whatever order roles, groups and kinds come in, and however often each repeats', () => {
    fc.assert(
      fc.property(
        arbInput.chain((input) =>
          fc.record({
            input: fc.constant(input),
            roles: fc.shuffledSubarray(input.roles, { minLength: input.roles.length }),
            groups: fc.shuffledSubarray(input.groups, { minLength: input.groups.length }),
            kinds: fc.shuffledSubarray(input.kinds, { minLength: input.kinds.length }),
            again: fc.nat(),
          }),
        ),
        ({ input, roles, groups, kinds, again }) => {
          const repeated = { roles: [...roles, ...roles.slice(0, again % 3)], groups: [...groups, ...groups.slice(0, again % 2)], kinds: [...kinds, ...kinds] };
          expect(profileKey({ roles, groups, kinds })).toBe(profileKey(input));
          expect(profileKey(repeated)).toBe(profileKey(input));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gives distinct sets of counted kinds distinct masks, and kindsOfMask inverts maskOf', () => {
    fc.assert(
      fc.property(fc.subarray(kindOrder), fc.subarray(kindOrder), (a, b) => {
        expect(maskOf(a) === maskOf(b)).toBe([...a].sort().join() === [...b].sort().join());
        expect(kindsOfMask(maskOf(a))).toEqual(kindOrder.filter((k) => a.includes(k)));
      }),
    );
  });

  it('gives distinct profiles distinct keys (users are never merged into someone else’s bucket)', () => {
    fc.assert(
      fc.property(arbInput, arbInput, (x, y) => {
        const same = (p: string[], q: string[]) => new Set(p).size === new Set(q).size && p.every((v) => q.includes(v));
        const counted = (kinds: string[]) => kinds.filter((k) => k !== 'tap');
        const equal = same(x.roles, y.roles) && same(x.groups, y.groups) && same(counted(x.kinds), counted(y.kinds));
        expect(profileKey(x) === profileKey(y)).toBe(equal);
      }),
      { numRuns: 1000 },
    );
  });
});
