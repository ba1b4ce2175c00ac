/**
 * Phone – text message and Phone – call: a 6-digit code sent to a number in E.164, by SMS or read out
 * by a voice call. The number is checked (allowed countries, mobile for texts), quotas against SMS
 * pumping apply to every code sent, and the method becomes active only when the first code comes back.
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../../core/errors.js';
import { checkPhoneNumber, countryOfNumber, maskPhoneNumber } from '../../core/methods/phone.js';
import { methodDefinitions, type SecondFactorKind } from '../../core/methods/registry.js';
import type { MethodRow, UserRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import { checkPhoneQuotas, createCodeChallenge, renewCode, verifyCodeChallenge } from './codes.js';
import type { ChallengeContext, MethodStrategy } from './strategy.js';

const ENROLMENT_SECONDS = 15 * 60;

async function sendCode(ctx: AppContext, kind: 'sms' | 'voice', to: string, code: string, purpose: string): Promise<void> {
  const text =
    kind === 'sms'
      ? `${code} is your ${ctx.config.organisationName} sign-in code. It expires in 10 minutes. Do not share it with anyone.`
      : `Your ${ctx.config.organisationName} sign-in code is ${code}.`;
  await ctx.delivery.enqueue({ channel: kind, to, purpose, text, code });
}

function makePhoneStrategy(kind: Extract<SecondFactorKind, 'sms' | 'voice'>): MethodStrategy {
  const phoneOf = (method: MethodRow): string => {
    if (!method.phone_e164) throw new Error(`phone method ${method.id} has no number`);
    return method.phone_e164;
  };

  async function challenge(ctx: AppContext, user: UserRow, method: MethodRow, context: ChallengeContext, country: string) {
    await checkPhoneQuotas(ctx, { userId: user.id, ip: context.ip, country });
    const { challengeId, code } = await createCodeChallenge(ctx, { userId: user.id, methodId: method.id, kind, context });
    await sendCode(ctx, kind, phoneOf(method), code, `${context.purpose}-code`);
    return challengeId;
  }

  return {
    definition: methodDefinitions[kind],

    detail: (method) => maskPhoneNumber(phoneOf(method)),

    async beginEnrolment(ctx, user, form, context) {
      const checked = checkPhoneNumber(form.phone ?? '', {
        allowedCountries: ctx.config.secondFactors.allowedCountries,
        requireMobile: kind === 'sms',
        allowDramaRange: ctx.config.secondFactors.allowDramaRange,
      });
      if (!checked.ok) throw new PortcullisError(checked.code, checked.params);
      const existing = await ctx.store.methods.activeForUser(user.id);
      if (existing.some((m) => m.kind === kind && m.phone_e164 === checked.e164)) throw new PortcullisError('method-duplicate');
      if (existing.filter((m) => m.kind === kind).length >= methodDefinitions[kind].maxPerUser) {
        throw new PortcullisError('method-limit', { max: methodDefinitions[kind].maxPerUser });
      }
      const methodId = randomUUID();
      const now = ctx.clock();
      await ctx.store.methods.insertPending({
        id: methodId,
        userId: user.id,
        kind,
        label: '',
        phoneE164: checked.e164,
        secretSealed: null,
        now,
        pendingExpiresAt: new Date(now.getTime() + ENROLMENT_SECONDS * 1000),
      });
      const method = (await ctx.store.methods.find(methodId))!;
      const challengeId = await challenge(ctx, user, method, { ...context, binding: `enrolment:${methodId}` }, checked.country);
      return { methodId, challengeId, sentTo: maskPhoneNumber(checked.e164) };
    },

    async finishEnrolment(ctx, user, method, challengeId, code, context) {
      const result = await verifyCodeChallenge(ctx, challengeId, code, { ...context, binding: `enrolment:${method.id}` });
      if (!result.ok) return result;
      if (!(await ctx.store.methods.activate(user.id, method.id, ctx.clock(), null))) return { ok: false, reason: 'code-expired' };
      return { ok: true };
    },

    async beginChallenge(ctx, user, method, context) {
      return { challengeId: await challenge(ctx, user, method, context, countryOfNumber(phoneOf(method))) };
    },

    async resend(ctx, user, method, challengeId, context) {
      const binding = method.status === 'pending' ? `enrolment:${method.id}` : context.binding;
      await checkPhoneQuotas(ctx, { userId: user.id, ip: context.ip, country: countryOfNumber(phoneOf(method)) });
      const code = await renewCode(ctx, challengeId, { ...context, binding });
      await sendCode(ctx, kind, phoneOf(method), code, `${context.purpose}-code`);
    },

    async verify(ctx, _user, method, challengeId, code, context) {
      const result = await verifyCodeChallenge(ctx, challengeId, code, context);
      if (result.ok) await ctx.store.methods.markUsed(method.id, ctx.clock());
      return result;
    },
  };
}

export const smsStrategy = makePhoneStrategy('sms');
export const voiceStrategy = makePhoneStrategy('voice');
