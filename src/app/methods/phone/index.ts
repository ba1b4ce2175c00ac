/**
 * Phone – text message and Phone – call: a 6-digit code sent to a number in E.164, by SMS or read out
 * by a voice call. The number is checked (allowed countries, mobile for texts), quotas against SMS
 * pumping apply to every code sent, and the method becomes active only when the first code comes back.
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../../../core/errors.js';
import { checkPhoneNumber, countryOfNumber, maskPhoneNumber } from '../../../core/methods/phone.js';
import { isPortcullisError, type ErrorCode } from '../../../core/errors.js';
import { methodDefinitions, type SecondFactorKind } from '../../../core/methods/registry.js';
import type { MethodRow, UserRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { checkPhoneQuotas, createCodeChallenge, renewCode, verifyCodeChallenge } from '../codes.js';
import { beginEnrolment, finishEnrolment } from '../enrolment.js';
import { codePage, refusedCode } from '../pages.js';
import { typedCode, type ChallengeContext, type MethodStrategy } from '../strategy.js';
import type { EnrolmentInput, EnrolmentOutcome, MethodUnit } from '../unit.js';

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

    async finishEnrolment(ctx, user, method, challengeId, response, context) {
      const result = await verifyCodeChallenge(ctx, challengeId, typedCode(response), { ...context, binding: `enrolment:${method.id}` });
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

    async verify(ctx, _user, method, challengeId, response, context) {
      const result = await verifyCodeChallenge(ctx, challengeId, typedCode(response), context);
      if (result.ok) await ctx.store.methods.markUsed(method.id, ctx.clock());
      return result;
    },

    challengePage: async (_ctx, input) => codePage(methodDefinitions[kind], input.detail, { canResend: input.challengeId !== null }),
  };
}

export const smsStrategy = makePhoneStrategy('sms');
export const voiceStrategy = makePhoneStrategy('voice');

const byDelivery: Record<string, MethodStrategy> = { sms: smsStrategy, voice: voiceStrategy };

function phoneForm(input: EnrolmentInput): EnrolmentOutcome {
  return {
    type: 'page',
    page: {
      template: 'security-info/add-phone.njk',
      data: { backHref: '/security-info/add', phone: input.form.phone ?? '', delivery: input.form.delivery ?? '', sms: input.offers('sms'), voice: input.offers('voice') },
    },
  };
}

/** The page of a pending phone: the code form, with "Send a new code". */
async function codeForm(input: EnrolmentInput, method: MethodRow): Promise<EnrolmentOutcome> {
  const strategy = byDelivery[method.kind]!;
  const definition = strategy.definition;
  return {
    type: 'page',
    page: {
      template: 'security-info/add-verify.njk',
      data: {
        backHref: '/security-info/add/phone',
        methodId: method.id,
        challengeId: input.query.challenge ?? input.form.challenge ?? '',
        heading: definition.heading,
        prompt: definition.prompt.replace('{detail}', strategy.detail(method)),
        ...(input.query.resent === '1' ? { notice: 'We have sent you a new code.' } : {}),
      },
    },
  };
}

/** Phone – text message or call: the number, then the code sent to it. */
export const phoneUnit: MethodUnit = {
  slug: 'phone',
  strategies: [smsStrategy, voiceStrategy],
  enrolment: {
    value: 'phone',
    choice(input) {
      const sms = input.offers('sms');
      const voice = input.offers('voice');
      if (!sms && !voice) return null;
      const hint = sms && voice ? 'Get a code by text message or by phone call' : sms ? 'Get a code by text message' : 'Get a code by phone call';
      return { text: 'Phone', hint, group: 'phone', kind: sms ? 'sms' : 'voice' };
    },
    start: async () => ({ type: 'redirect', to: '/security-info/add/phone' }),
    open: async (input) => phoneForm(input),
    async submit(input) {
      const phone = input.form.phone ?? '';
      const delivery = input.form.delivery ?? '';
      const strategy = byDelivery[delivery];
      if (!strategy) {
        const error = phone.trim() === '' ? { code: 'phone-missing' as const, field: 'phone' } : { code: 'phone-delivery-missing' as const, field: 'delivery' };
        return { type: 'refused', error };
      }
      try {
        const started = await beginEnrolment(input.ctx, input.session, strategy, { phone }, input.client);
        return { type: 'redirect', to: `/security-info/add/${started.methodId}?challenge=${started.challengeId}` };
      } catch (error) {
        if (!isPortcullisError(error)) throw error;
        const code: ErrorCode = error.code;
        const at = code.startsWith('method-not-') ? 'delivery' : code.startsWith('phone-') && !code.startsWith('phone-quota') ? 'phone' : undefined;
        return { type: 'refused', error: { code, params: error.params, ...(at ? { field: at } : {}) } };
      }
    },
    pending: codeForm,
    async finish(input, method) {
      const challengeId = input.form.challenge || null;
      const result = await finishEnrolment(input.ctx, input.session, byDelivery[method.kind]!, method.id, challengeId, { type: 'code', code: input.form.code ?? '' }, input.client);
      if (!result.ok) return refusedCode(result.reason);
      return { type: 'added', methodId: method.id, proved: method.kind as SecondFactorKind, to: '/security-info?done=added' };
    },
    async resend(input, method) {
      const strategy = byDelivery[method.kind]!;
      const challengeId = input.form.challenge ?? '';
      try {
        await strategy.resend!(input.ctx, input.session.user, method, challengeId, { purpose: 'enrolment', binding: `enrolment:${method.id}`, ip: input.client.ip });
      } catch (error) {
        if (!isPortcullisError(error) || error.code === 'enrolment-expired') throw error;
        return { type: 'refused', error: { code: error.code, params: error.params } };
      }
      return { type: 'redirect', to: `/security-info/add/${method.id}?challenge=${encodeURIComponent(challengeId)}&resent=1` };
    },
  },
};
