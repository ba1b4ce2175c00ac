/**
 * A device's decision on a challenge, what an approved set-up check activates, and what a fraud
 * report ("No, it's not me") does.
 */
import { PortcullisError } from '../../../core/errors.js';
import { methodDefinitions } from '../../../core/methods/registry.js';
import { decidePush, isWellFormedId, readDecision } from '../../../core/methods/push.js';
import type { MethodRow, PushChallengeRow, UserRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { notifyUser } from '../../notifications.js';
import { signOutOfApplications } from '../../oidc/sign-out.js';
import { recordSecondFactorFailure } from '../../sign-in-attempts.js';
import { busTopics } from './shared.js';
import { verifyDeviceRequestWith, type DeviceRequest, type VerifiedDevice } from './device-requests.js';
import { ownChallenge } from './challenges.js';
/**
 * POST /device/v1/challenges/:id/decision, pipelined (src/store/pipeline.ts): the challenge is read with
 * the device's method and user, and the device's last-seen time goes alongside, so on PostgreSQL the
 * decision — and the waiting sign-in page's event, published as soon as it is recorded — comes round
 * trips sooner (issue #18 point 3). The answer is sent once every write has been made.
 */
export function decideFromDevice(ctx: AppContext, request: DeviceRequest, id: string, ip: string): Promise<{ status: string }> {
  return ctx.store.pipelined(async () => {
    const { verified, read } = await verifyDeviceRequestWith(ctx, request, 'decide-challenge', async () => (isWellFormedId(id) ? ((await ctx.store.push.findChallenge(id)) ?? null) : null));
    return decideChallenge(ctx, verified, id, ip, read);
  });
}

/** A decision from the device: the signature was checked; here the rules and what follows. */
export async function decideChallenge(ctx: AppContext, verified: VerifiedDevice, id: string, ip: string, read?: PushChallengeRow | null): Promise<{ status: string }> {
  const row = await ownChallenge(ctx, verified, id, 'decide-challenge', read);
  const { claims, user, method } = verified;
  // A malformed field is refused before anything is decided: the challenge stays as it was.
  const input = readDecision(claims);
  if ('refused' in input) throw new PortcullisError(input.refused, { field: input.field });

  const now = ctx.clock();
  const outcome = decidePush({ status: row.status, expiresAt: new Date(row.expires_at), number: row.number }, input, now);
  if ('refused' in outcome) throw new PortcullisError(outcome.refused);
  if (!(await ctx.store.push.decide(row.id, outcome.status, now))) throw new PortcullisError('challenge-decided');
  await ctx.bus.publish(busTopics.challenge(row.id), outcome.status);

  if (row.purpose === 'test') {
    const enrolmentId = row.binding.replace(/^enrolment:/, '');
    if (outcome.status === 'approved') await activatePairedDevice(ctx, user, method, ip);
    await ctx.bus.publish(busTopics.enrolment(enrolmentId), outcome.status);
  } else if (outcome.status !== 'approved') {
    // Denials, wrong numbers and reports count toward the lockout when they happen, whether or not the
    // sign-in page ever looks again (an attacker's page would not).
    await recordSecondFactorFailure(ctx, user.id, ip);
  }
  if (outcome.status === 'reported') await handleFraudReport(ctx, user, row, ip);
  await ctx.store.audit.append({
    type: 'push.decided',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip,
    details: { challengeId: row.id, deviceId: method.id, purpose: row.purpose, status: outcome.status, signInIp: row.ip },
  });
  if (outcome.status === 'wrong-number') throw new PortcullisError('wrong-number');
  return { status: outcome.status };
}

async function activatePairedDevice(ctx: AppContext, user: UserRow, method: MethodRow, ip: string): Promise<void> {
  const now = ctx.clock();
  if (!(await ctx.store.methods.activate(user.id, method.id, now, null))) return;
  await ctx.store.audit.append({
    type: 'method.added',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip,
    details: { methodId: method.id, kind: 'push', via: 'pairing' },
  });
  await notifyUser(ctx, user, { kind: 'method-added', method: `${methodDefinitions.push.name} (${method.label})`, withoutSecondFactor: false });
}

/**
 * "No, it's not me": the sign-in is refused (by the status), push is blocked for the user until an
 * administrator lifts it (when PUSH_BLOCK_ON_FRAUD), the user is emailed and administrators alerted.
 */
async function handleFraudReport(ctx: AppContext, user: UserRow, challenge: PushChallengeRow, ip: string): Promise<void> {
  const now = ctx.clock();
  if (ctx.config.push.blockOnFraud) await ctx.store.push.setUserBlocked(user.id, now);
  // Someone else may hold the password: end the person's Portcullis sessions and what applications hold
  // (docs/oidc.md#signing-out-of-applications). The device's request does not wait for the back-channel logouts.
  await ctx.store.sessions.deleteAllForUser(user.id);
  void (await signOutOfApplications(ctx, user.id, 'push-fraud-reported')).deliveries;
  ctx.metrics.fraudReports.inc();
  ctx.logger.error({ event: 'push.fraud-reported', userId: user.id, signInIp: challenge.ip, deviceIp: ip }, 'a push sign-in request was reported as fraud');
  await ctx.store.audit.append({
    type: 'push.fraud-reported',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip,
    details: { challengeId: challenge.id, signInIp: challenge.ip, pushBlocked: ctx.config.push.blockOnFraud },
  });
  await notifyUser(ctx, user, { kind: 'push-fraud-reported', blocked: ctx.config.push.blockOnFraud, signInIp: challenge.ip ?? 'unknown' });
  await alertAdministrators(ctx, user, challenge);
}

/** Emails the global administrators and the local administrators of the user's organisation. */
async function alertAdministrators(ctx: AppContext, user: UserRow, challenge: PushChallengeRow): Promise<void> {
  const admins = await ctx.store.roles.administratorsFor(user.organisation_id);
  for (const admin of admins) {
    await ctx.delivery.enqueue({
      channel: 'email',
      to: admin.email,
      purpose: 'fraud-alert',
      subject: `Fraud reported: a sign-in request to ${user.email} was reported as not them`,
      text: [
        `Dear ${admin.display_name},`,
        '',
        `${user.display_name} (${user.email}) answered a sign-in request with "No, it's not me" on ${now(ctx)}.`,
        `The sign-in came from the address ${challenge.ip ?? 'unknown'}. It was refused.`,
        ctx.config.push.blockOnFraud
          ? 'Sign-in requests to their authenticator app are blocked until an administrator lifts the block.'
          : 'Their authenticator app can still receive sign-in requests.',
        '',
        'Their password may be known to someone else: check the sign-in log and consider requiring a new password.',
      ].join('\n'),
    });
  }
}

function now(ctx: AppContext): string {
  return new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/London' }).format(ctx.clock());
}
