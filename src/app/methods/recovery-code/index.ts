/**
 * Recovery codes: NIST SP 800-63B-4 §3.1.2 look-up secrets. Ten codes made from a CSPRNG, shown once
 * on the set-up page (the answer to its POST) and stored only as keyed hashes in the method's `data`;
 * each works once. A backup beside another method, never a first one. A new set replaces the old one
 * (enrolment.ts deletes it in the activating transaction).
 */
import { randomUUID } from 'node:crypto';
import { recoveryCodeDefinition } from './definition.js';
import {
  hashRecoveryCode,
  newRecoveryCodes,
  normaliseRecoveryCode,
  parseRecoveryCodeData,
  RECOVERY_CODE_COUNT,
  serialiseRecoveryCodeData,
  unusedCount,
  type RecoveryCodeData,
} from './codes.js';
import type { CodeVerification } from '../../../core/sign-in/flow.js';
import { safeEqual, secureRandomBytes } from '../../../crypto/tokens.js';
import { notifyUser } from '../../notifications.js';
import { beginEnrolment, finishEnrolment } from '../enrolment.js';
import { codePage } from '../pages.js';
import { typedCode, type MethodStrategy } from '../strategy.js';
import type { MethodUnit } from '../unit.js';

/** How long a new set waits for "I have saved my recovery codes". */
const ENROLMENT_SECONDS = 15 * 60;

/** What the person confirms on the set-up page (finishEnrolment's response). */
const SAVED = 'saved';

export const recoveryCodeStrategy: MethodStrategy = {
  definition: recoveryCodeDefinition,

  detail(method) {
    const data = parseRecoveryCodeData(method.data);
    return `${data ? unusedCount(data) : 0} of ${RECOVERY_CODE_COUNT} left`;
  },

  replacesExisting: true,

  deletionNote: 'Your recovery codes will stop working.',

  async beginEnrolment(ctx, user) {
    const methodId = randomUUID();
    const codes = newRecoveryCodes(secureRandomBytes);
    // Only the keyed hashes are stored (SP 800-63B-4 §3.1.2.2); the codes themselves exist only in the
    // value returned, which the set-up page shows once.
    const data: RecoveryCodeData = {
      v: 1,
      codes: codes.map((code) => ({ h: hashRecoveryCode(ctx.keys.codeHash, methodId, normaliseRecoveryCode(code)!), used: null })),
    };
    const now = ctx.clock();
    await ctx.store.methods.insertPending({
      id: methodId,
      userId: user.id,
      kind: recoveryCodeDefinition.kind,
      label: recoveryCodeDefinition.name,
      phoneE164: null,
      secretSealed: null,
      now,
      pendingExpiresAt: new Date(now.getTime() + ENROLMENT_SECONDS * 1000),
      data: serialiseRecoveryCodeData(data),
      lookupKey: null,
    });
    return { methodId, challengeId: null, shown: { codes } };
  },

  // Run by enrolment.ts inside the activating transaction: ctx.store is bound to it.
  async finishEnrolment(ctx, user, method, _challengeId, response, context): Promise<CodeVerification> {
    if (typedCode(response) !== SAVED) return { ok: false, reason: 'code-incorrect' };
    const now = ctx.clock();
    if (!(await ctx.store.methods.activate(user.id, method.id, now, null))) return { ok: false, reason: 'code-expired' };
    await ctx.store.audit.append({
      type: 'recovery-codes.created',
      at: now,
      actor: { kind: 'user', userId: user.id },
      subjectUserId: user.id,
      ip: context.ip,
      details: { methodId: method.id, codes: RECOVERY_CODE_COUNT },
    });
    return { ok: true };
  },

  async beginChallenge() {
    return { challengeId: null };
  },

  async verify(ctx, user, method, _challengeId, response, context): Promise<CodeVerification> {
    const typed = normaliseRecoveryCode(typedCode(response));
    if (typed === null || method.status !== 'active') return { ok: false, reason: 'code-incorrect' };
    const data = parseRecoveryCodeData(method.data);
    if (!data) return { ok: false, reason: 'code-incorrect' };
    const candidate = hashRecoveryCode(ctx.keys.codeHash, method.id, typed);
    // Every entry is compared, in constant time, whether or not one has matched already: how long the
    // check takes says nothing about which code (or whether any) matched.
    let match = -1;
    data.codes.forEach((code, index) => {
      if (safeEqual(candidate, code.h)) match = index;
    });
    if (match === -1) return { ok: false, reason: 'code-incorrect' };
    if (data.codes[match]!.used !== null) return { ok: false, reason: 'code-reused' };
    const now = ctx.clock();
    const after: RecoveryCodeData = { v: 1, codes: data.codes.map((code, index) => (index === match ? { h: code.h, used: now.toISOString() } : code)) };
    const left = unusedCount(after);
    // The code is spent, audited and its owner told in one transaction. replaceData is a compare-and-set
    // on the data read: of requests racing with the same code, exactly one gets true (the code works once).
    const used = await ctx.store.transaction(async (repos, trx) => {
      if (!(await repos.methods.replaceData(method.id, method.data, serialiseRecoveryCodeData(after), now))) return false;
      await repos.audit.append({
        type: 'recovery-code.used',
        at: now,
        actor: { kind: 'user', userId: user.id },
        subjectUserId: user.id,
        ip: context.ip,
        details: { methodId: method.id, left },
      });
      await notifyUser(ctx, user, { kind: 'recovery-code-used', left }, trx);
      return true;
    });
    return used ? { ok: true } : { ok: false, reason: 'code-reused' };
  },

  challengePage: async () => codePage(recoveryCodeDefinition, '', { canResend: false, passLike: true, label: 'Recovery code' }),
};

export const recoveryCodeUnit: MethodUnit = {
  slug: 'recovery-codes',
  strategies: [recoveryCodeStrategy],
  enrolment: {
    value: 'recovery-codes',
    // A backup only: offered beside another method, never as the first one.
    choice: (input, hasMethods) =>
      hasMethods && input.offers('recovery-code')
        ? {
            text: 'Recovery codes',
            hint: 'Ten codes to keep safe, for when you cannot use your phone. Setting up new codes stops your old ones working.',
            group: 'recovery-codes',
            kind: 'recovery-code',
          }
        : null,
    // The codes are shown once: this page is the answer to the POST that made them.
    async start(input) {
      const started = await beginEnrolment(input.ctx, input.session, recoveryCodeStrategy, {}, input.client);
      const codes = started.shown?.codes as string[];
      return { type: 'page', page: { template: 'security-info/add-recovery-codes.njk', data: { backHref: '/security-info/add', methodId: started.methodId, codes } } };
    },
    // The codes cannot be shown again (only their hashes are kept): start again for a new set.
    async pending() {
      return { type: 'redirect', to: '/security-info/add' };
    },
    async finish(input, method) {
      const response = { type: 'code' as const, code: input.form.saved === 'yes' ? SAVED : '' };
      const result = await finishEnrolment(input.ctx, input.session, recoveryCodeStrategy, method.id, null, response, input.client);
      if (!result.ok) return { type: 'refused', error: { code: 'recovery-codes-not-saved', field: 'saved' } };
      return { type: 'added', methodId: method.id, proved: null, to: '/security-info?done=added' };
    },
  },
};
