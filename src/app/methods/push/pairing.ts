/**
 * Pairing a device from Security info: a one-time code shown as a QR code, and the set-up's state
 * as the Security info page follows it (waiting, paired, approved, refused, expired).
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../../../core/errors.js';
import { methodDefinitions } from '../../../core/methods/registry.js';
import { randomToken } from '../../../crypto/tokens.js';
import type { UserRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { ACTIVATION_CODE_BYTES, PAIRING_SECONDS, hashCode } from './shared.js';

export interface PairingStart {
  enrolmentId: string;
  /** `{PUBLIC_URL}/authenticator/#pair={code}`: shown once as a QR code and a link; the code is kept only hashed. */
  url: string;
  expiresAt: Date;
}

export async function startPairing(ctx: AppContext, user: UserRow): Promise<PairingStart> {
  if ((await ctx.store.methods.countActive(user.id, 'push')) >= methodDefinitions.push.maxPerUser) {
    throw new PortcullisError('method-limit', { max: methodDefinitions.push.maxPerUser });
  }
  const code = randomToken(ACTIVATION_CODE_BYTES);
  const id = randomUUID();
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + PAIRING_SECONDS * 1000);
  await ctx.store.push.insertEnrolment({ id, userId: user.id, codeHash: hashCode(code), now, expiresAt });
  const url = new URL('/authenticator/', ctx.config.publicUrl);
  url.hash = `pair=${code}`;
  return { enrolmentId: id, url: url.toString(), expiresAt };
}

export interface PairingStatus {
  state: 'waiting' | 'paired' | 'approved' | 'refused' | 'expired';
  /** Once paired: the number to type into the app for the test request. */
  number?: string;
  methodId?: string;
  testChallengeId?: string;
}

export async function pairingStatus(ctx: AppContext, user: UserRow, enrolmentId: string): Promise<PairingStatus> {
  const enrolment = await ctx.store.push.findEnrolment(enrolmentId, user.id);
  const now = ctx.clock();
  if (!enrolment) return { state: 'expired' };
  if (!enrolment.method_id || !enrolment.test_challenge_id) {
    return { state: Date.parse(enrolment.expires_at) <= now.getTime() ? 'expired' : 'waiting' };
  }
  const challenge = await ctx.store.push.findChallenge(enrolment.test_challenge_id);
  const method = await ctx.store.methods.find(enrolment.method_id);
  if (method?.status === 'active') return { state: 'approved', methodId: method.id, testChallengeId: enrolment.test_challenge_id };
  if (!challenge || challenge.status === 'expired' || (challenge.status === 'pending' && Date.parse(challenge.expires_at) <= now.getTime())) {
    return { state: 'expired' };
  }
  // Approved but not active yet: the decision is being recorded (decideChallenge activates the method
  // next, then tells the Security info page). Still "paired", so that page keeps listening instead of
  // saying the set-up failed.
  if (challenge.status === 'approved') return { state: 'paired', number: challenge.number, methodId: enrolment.method_id };
  if (challenge.status !== 'pending') return { state: 'refused' };
  return { state: 'paired', number: challenge.number, methodId: enrolment.method_id };
}
