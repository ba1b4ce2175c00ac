/**
 * Authenticator app – code (TOTP, RFC 6238). The seed is made here from a CSPRNG (160 bits), sealed with
 * AES-256-GCM under the key-encryption key before it is stored, and shown once as a QR code of its
 * otpauth:// URI and as text. The method becomes active only after one correct code; each time step is
 * accepted once.
 */
import { randomUUID } from 'node:crypto';
import { methodDefinitions } from '../../core/methods/registry.js';
import { checkTotp, formatKeyForTyping, TOTP_SECRET_BYTES, totpSecretFromBytes, totpUri } from '../../core/methods/totp.js';
import type { CodeVerification } from '../../core/sign-in/flow.js';
import { openText, sealText } from '../../crypto/seal.js';
import { secureRandomBytes } from '../../crypto/tokens.js';
import type { MethodRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import type { MethodStrategy } from './strategy.js';

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
  definition: methodDefinitions.totp,

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

  async finishEnrolment(ctx, user, method, _challengeId, code): Promise<CodeVerification> {
    const result = check(ctx, method, code, null);
    if (!result.ok) return result;
    // The step is recorded as used, so the code that activated the app cannot also sign in.
    if (!(await ctx.store.methods.activate(user.id, method.id, ctx.clock(), result.step))) return { ok: false, reason: 'code-expired' };
    return { ok: true };
  },

  async beginChallenge() {
    return { challengeId: null };
  },

  async verify(ctx, _user, method, _challengeId, code): Promise<CodeVerification> {
    const result = check(ctx, method, code, method.totp_last_step);
    if (!result.ok) return result;
    if (!(await ctx.store.methods.claimTotpStep(method.id, result.step, ctx.clock()))) return { ok: false, reason: 'code-reused' };
    return { ok: true };
  },
};
