/**
 * App based authentication – notification (push with number matching), as one unit: the device pairs
 * itself from the code Security info shows (./pairing.ts), its signed requests (./device-requests.ts),
 * challenges within the push-bombing limits (./challenges.ts), its decisions and fraud reports
 * (./decisions.ts), and its own settings (./devices.ts). At sign-in the challenge is answered by an
 * outside event: the device's approval, with the right number, recorded.
 */
import { describeDuration } from '../../../core/duration.js';
import { PortcullisError } from '../../../core/errors.js';
import { verifyPushStatus } from '../../../core/methods/push.js';
import type { CodeVerification } from '../../../core/sign-in/flow.js';
import { assertMayRegister } from '../../policy.js';
import { qrCodeSvg } from '../pages.js';
import type { MethodStrategy } from '../strategy.js';
import type { EnrolmentInput, EnrolmentOutcome, MethodUnit } from '../unit.js';
import { startSignInChallenge } from './challenges.js';
import { pushDefinition } from './definition.js';
import { pairingStatus, startPairing } from './pairing.js';
import { busTopics, PAIRING_SECONDS } from './shared.js';

export const pushStrategy: MethodStrategy = {
  definition: pushDefinition,

  detail: (method) => method.label || 'Authenticator app',

  async beginChallenge(ctx, user, method, context) {
    const purpose = context.purpose === 'enrolment' ? 'sign-in' : context.purpose;
    return { challengeId: await startSignInChallenge(ctx, user, method, { binding: context.binding, ip: context.ip, location: context.location ?? null, purpose }) };
  },

  async verify(ctx, _user, method, challengeId, _response, context): Promise<CodeVerification> {
    if (!challengeId) return { ok: false, reason: 'push-timeout' };
    const challenge = await ctx.store.push.findChallenge(challengeId);
    // A challenge answers only the attempt it was sent for.
    if (!challenge || challenge.binding !== context.binding || challenge.method_id !== method.id) return { ok: false, reason: 'push-timeout' };
    const now = ctx.clock();
    const result = verifyPushStatus(challenge.status, new Date(challenge.expires_at), now);
    if (!result.ok) return result;
    // One approval, one sign-in: of two racing requests only one turns it into a session.
    if (!(await ctx.store.push.useApproval(challenge.id, now))) return { ok: false, reason: 'push-timeout' };
    await ctx.store.methods.markUsed(method.id, now);
    return { ok: true };
  },

  /** The number to type into the app, while the challenge is live. */
  async challengePage(ctx, input) {
    const challenge = input.challengeId ? await ctx.store.push.findChallenge(input.challengeId) : undefined;
    const now = ctx.clock().getTime();
    const live = challenge?.status === 'pending' && Date.parse(challenge.expires_at) > now;
    return {
      template: 'sign-in/push.njk',
      data: {
        number: live ? challenge.number : '',
        expiresIn: live ? describeDuration(Math.max(1, Math.round((Date.parse(challenge.expires_at) - now) / 1000))) : '',
        device: input.detail || 'your phone',
        methodId: input.method.id,
      },
    };
  },

  /** The phone's decision, for the waiting page's event stream. */
  async challengeEvents(ctx, challengeId) {
    const challenge = await ctx.store.push.findChallenge(challengeId);
    return { topic: busTopics.challenge(challengeId), status: challenge && challenge.status !== 'pending' ? challenge.status : challenge ? null : 'expired', expiresAt: new Date(challenge?.expires_at ?? 0) };
  },
};

/**
 * "Authenticator app": a one-time pairing code as a QR code and a link, shown once (the code is kept
 * only hashed, so this page is the answer to the POST that made it, not a page to come back to).
 */
async function pairingPage(input: EnrolmentInput): Promise<EnrolmentOutcome> {
  const { ctx, session } = input;
  await assertMayRegister(ctx, session.user, session.restricted !== null, 'push');
  const pairing = await startPairing(ctx, session.user);
  const qrSvg = await qrCodeSvg(pairing.url, 'QR code for setting up the Portcullis Authenticator');
  return {
    type: 'page',
    page: { template: 'security-info/add-app.njk', data: { backHref: '/security-info/add', qrSvg, pairingUrl: pairing.url, enrolmentId: pairing.enrolmentId, codeApp: input.offers('totp') } },
  };
}

const HEADINGS: Record<string, string> = {
  waiting: 'Connect your phone',
  paired: 'Approve the test request',
  refused: 'The set-up did not finish',
  expired: 'The set-up did not finish',
};

export const pushUnit: MethodUnit = {
  slug: 'app',
  strategies: [pushStrategy],
  enrolment: {
    value: 'push',
    choice: (input) =>
      input.offers('push')
        ? { text: 'Authenticator app', hint: 'Approve sign-ins on your phone with the Portcullis Authenticator, by typing the number we show you', group: 'authenticator-app', kind: 'push' }
        : null,
    start: pairingPage,

    /** The pairing as it goes: waiting for the phone, then its test request, then added. */
    async follow(input, enrolmentId) {
      const { ctx, session } = input;
      const status = await pairingStatus(ctx, session.user, enrolmentId);
      if (status.state === 'approved' && status.methodId) {
        // The phone's approval of the test request proves it, like a step-up: it joins the session's methods
        // once (the approval is used up, so coming back to this page later proves nothing new).
        const proved = status.testChallengeId !== undefined && (await ctx.store.push.useApproval(status.testChallengeId, ctx.clock()));
        return { type: 'added', methodId: status.methodId, proved: proved ? 'push' : null, to: `/security-info/added/${status.methodId}` };
      }
      return {
        type: 'page',
        page: {
          template: 'security-info/add-app-status.njk',
          data: { backHref: '/security-info/add', heading: HEADINGS[status.state], state: status.state, number: status.number ?? '', enrolmentId },
        },
      };
    },

    // The page names the state it shows (`seen`); the stream says "update" only once the state differs
    // from it, so a page already showing "paired" is not told to reload over and over.
    async events(input, enrolmentId) {
      const { ctx, session } = input;
      const enrolment = await ctx.store.push.findEnrolment(enrolmentId, session.user.id);
      if (!enrolment) throw new PortcullisError('not-found');
      const seen = input.query.seen === 'paired' ? 'paired' : 'waiting';
      return {
        topic: busTopics.enrolment(enrolment.id),
        seconds: PAIRING_SECONDS,
        changed: async () => (await pairingStatus(ctx, session.user, enrolment.id)).state !== seen,
      };
    },
  },
};
