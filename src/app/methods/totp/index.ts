/**
 * Authenticator app – code (TOTP, RFC 6238). The seed is made here from a CSPRNG (160 bits), sealed with
 * AES-256-GCM under the key-encryption key before it is stored, and shown once as a QR code of its
 * otpauth:// URI and as text. The method becomes active only after one correct code; each time step is
 * accepted once.
 */
import { randomUUID } from 'node:crypto';
import { totpDefinition } from './definition.js';
import { checkTotp, formatKeyForTyping, TOTP_SECRET_BYTES, totpSecretFromBytes, totpUri } from '../../../core/methods/totp.js';
import type { CodeVerification } from '../../../core/sign-in/flow.js';
import { openText, sealText } from '../../../crypto/seal.js';
import { secureRandomBytes } from '../../../crypto/tokens.js';
import type { MethodRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { codePage, qrCodeSvg, refusedCode } from '../pages.js';
import { beginEnrolment, finishEnrolment, pendingMethod } from '../enrolment.js';
import { typedCode, type MethodStrategy } from '../strategy.js';
import type { MethodUnit } from '../unit.js';

/** How long a set-up may wait for its first code. */
const ENROLMENT_SECONDS = 15 * 60;

const sealingContext = (methodId: string) => `totp-seed:${methodId}`;

function seedOf(ctx: AppContext, method: MethodRow): string {
  if (!method.secret_sealed) throw new Error(`TOTP method ${method.id} has no seed`);
  return openText(ctx.keys.keyEncryption, method.secret_sealed, sealingContext(method.id));
}

function check(ctx: AppContext, method: MethodRow, code: string, lastUsedStep: number | null) {
  return checkTotp({ secretBase32: seedOf(ctx, method), code, now: ctx.clock(), lastUsedStep });
}

export const totpStrategy: MethodStrategy = {
  definition: totpDefinition,

  detail: (method) => method.label || 'Authenticator app',

  async beginEnrolment(ctx, user) {
    const methodId = randomUUID();
    const seed = totpSecretFromBytes(secureRandomBytes(TOTP_SECRET_BYTES));
    const now = ctx.clock();
    await ctx.store.methods.insertPending({
      id: methodId,
      userId: user.id,
      kind: 'totp',
      label: 'Authenticator app',
      phoneE164: null,
      secretSealed: sealText(ctx.keys.keyEncryption, seed, sealingContext(methodId)),
      now,
      pendingExpiresAt: new Date(now.getTime() + ENROLMENT_SECONDS * 1000),
    });
    return {
      methodId,
      challengeId: null,
      totp: { uri: totpUri({ secretBase32: seed, issuer: ctx.config.organisationName, account: user.email }), key: formatKeyForTyping(seed) },
    };
  },

  async finishEnrolment(ctx, user, method, _challengeId, response): Promise<CodeVerification> {
    const result = check(ctx, method, typedCode(response), null);
    if (!result.ok) return result;
    // The step is recorded as used, so the code that activated the app cannot also sign in.
    if (!(await ctx.store.methods.activate(user.id, method.id, ctx.clock(), result.step))) return { ok: false, reason: 'code-expired' };
    return { ok: true };
  },

  async beginChallenge() {
    return { challengeId: null };
  },

  async verify(ctx, _user, method, _challengeId, response): Promise<CodeVerification> {
    const result = check(ctx, method, typedCode(response), method.totp_last_step);
    if (!result.ok) return result;
    if (!(await ctx.store.methods.claimTotpStep(method.id, result.step, ctx.clock()))) return { ok: false, reason: 'code-reused' };
    return { ok: true };
  },

  challengePage: async (_ctx, input) => codePage(totpDefinition, input.detail, { canResend: false }),
};

/** Starts a set-up and sends the person to its page (the QR code and the key). */
async function startCodeApp(input: Parameters<NonNullable<MethodUnit['enrolment']>['start']>[0]) {
  const started = await beginEnrolment(input.ctx, input.session, totpStrategy, {}, input.client);
  return { type: 'redirect' as const, to: `/security-info/add/${started.methodId}` };
}

/**
 * "I want to use a different authenticator app": any app that makes 6-digit codes. Offered on "Add
 * sign-in method" only where the Portcullis Authenticator is not (the two share a group), and from
 * the pairing page's link.
 */
export const totpUnit: MethodUnit = {
  slug: 'code-app',
  strategies: [totpStrategy],
  enrolment: {
    value: 'totp',
    choice: (input) =>
      input.offers('totp') ? { text: 'Authenticator app', hint: 'Enter a 6-digit code from an authenticator app on your phone', group: 'authenticator-app', kind: 'totp' } : null,
    start: startCodeApp,
    open: startCodeApp,
    async pending(input, method) {
      const { ctx, session } = input;
      const seed = seedOf(ctx, method);
      const uri = totpUri({ secretBase32: seed, issuer: ctx.config.organisationName, account: session.user.email });
      const qrSvg = await qrCodeSvg(uri, 'QR code for setting up your authenticator app');
      return { type: 'page', page: { template: 'security-info/add-totp.njk', data: { backHref: '/security-info/add', methodId: method.id, qrSvg, key: formatKeyForTyping(seed), account: session.user.email } } };
    },
    async finish(input, method) {
      const result = await finishEnrolment(input.ctx, input.session, totpStrategy, method.id, null, { type: 'code', code: input.form.code ?? '' }, input.client);
      if (!result.ok) return refusedCode(result.reason);
      return { type: 'added', methodId: method.id, proved: 'totp', to: '/security-info?done=added' };
    },
  },
};
