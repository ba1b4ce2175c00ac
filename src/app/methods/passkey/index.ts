/**
 * Passkeys (WebAuthn Level 3) as one unit: registration from Security info, a passkey as the second
 * step after a password, and passwordless sign-in from the email page (a discoverable credential, with
 * conditional UI autofill). The relying-party checks are in ./webauthn.ts; this file keeps the state:
 * single-use challenges bound to the flow, the credential (public key, counter, AAGUID, backup flags)
 * in the method's `data`, its credential id as the method's lookup key (unique across users).
 */
import { randomUUID } from 'node:crypto';
import type { CodeVerification } from '../../../core/sign-in/flow.js';
import { hmac, safeEqual, secureRandomBytes } from '../../../crypto/tokens.js';
import { isUniqueViolation } from '../../../store/errors.js';
import type { MethodRow, UserRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { notifyUser } from '../../notifications.js';
import { modelRefusal } from '../../policy.js';
import { beginEnrolment, finishEnrolment } from '../enrolment.js';
import type { MethodStrategy } from '../strategy.js';
import type { EnrolmentInput, EnrolmentOutcome, MethodUnit } from '../unit.js';
import { passkeyDefinition } from './definition.js';
import {
  authenticationOptions,
  CEREMONY_TIMEOUT_MS,
  checkAssertion,
  checkRegistration,
  credentialIdOf,
  isSynced,
  modelOf,
  registrationOptions,
  relyingPartyFor,
  userHandleOf,
  type RelyingParty,
  type StoredCredential,
} from './webauthn.js';

const ENROLMENT_SECONDS = CEREMONY_TIMEOUT_MS / 1000;
const NONCE_BYTES = 16;
const PASSWORDLESS_BINDING = 'passkey:passwordless';

function relyingParty(ctx: AppContext): RelyingParty {
  return relyingPartyFor(ctx.config.publicUrl.toString(), ctx.config.organisationName);
}

/*
 * Challenges (WebAuthn §13.4.3): 16 random bytes, an expiry 5 minutes on, and a MAC binding both to
 * what the challenge is for (a sign-in flow, one set-up, or the email page's passwordless sign-in). The
 * server keeps nothing until one is used: then the challenge is recorded in the shared throttle store
 * until it expires, so it answers one ceremony only, on any node.
 */
function issueChallenge(ctx: AppContext, binding: string): string {
  const body = Buffer.alloc(NONCE_BYTES + 8);
  secureRandomBytes(NONCE_BYTES).copy(body);
  body.writeBigUInt64BE(BigInt(ctx.clock().getTime() + CEREMONY_TIMEOUT_MS), NONCE_BYTES);
  const mac = Buffer.from(hmac(ctx.keys.codeHash, `webauthn:${binding}:${body.toString('base64url')}`), 'base64url').subarray(0, 16);
  return Buffer.concat([body, mac]).toString('base64url');
}

/** Whether a challenge is one we issued for `binding` and has not expired (it may still have been used). */
function challengeValid(ctx: AppContext, binding: string, challenge: string): boolean {
  if (!/^[A-Za-z0-9_-]{54}$/.test(challenge)) return false;
  const bytes = Buffer.from(challenge, 'base64url');
  const body = bytes.subarray(0, NONCE_BYTES + 8);
  const expected = Buffer.from(hmac(ctx.keys.codeHash, `webauthn:${binding}:${body.toString('base64url')}`), 'base64url').subarray(0, 16).toString('hex');
  if (!safeEqual(bytes.subarray(NONCE_BYTES + 8).toString('hex'), expected)) return false;
  return Number(body.readBigUInt64BE(NONCE_BYTES)) > ctx.clock().getTime();
}

/** Uses a challenge up: true once, for the first ceremony that answers it. */
async function consumeChallenge(ctx: AppContext, challenge: string): Promise<boolean> {
  const now = ctx.clock();
  return (await ctx.throttles.increment(`webauthn-challenge:${challenge}`, now, new Date(now.getTime() + CEREMONY_TIMEOUT_MS))) === 1;
}

/** The challenge in a response's clientDataJSON (to consume it once the ceremony has been checked). */
function challengeOf(response: unknown): string | null {
  try {
    const data = (response as { response?: { clientDataJSON?: unknown } }).response?.clientDataJSON;
    if (typeof data !== 'string') return null;
    const parsed = JSON.parse(Buffer.from(data, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof parsed.challenge === 'string' ? parsed.challenge : null;
  } catch {
    return null;
  }
}

/** The WebAuthn user handle: not the email, not the id itself, but stable for the person (§14.6.1). */
function userHandle(ctx: AppContext, userId: string): string {
  return Buffer.from(hmac(ctx.keys.codeHash, `webauthn-user:${userId}`), 'base64url').subarray(0, 32).toString('base64url');
}

function credentialOf(method: MethodRow): StoredCredential | null {
  if (!method.data) return null;
  try {
    return JSON.parse(method.data) as StoredCredential;
  } catch {
    return null;
  }
}

/** JSON for a `<script type="application/json">` block: nothing in it can end the element. */
function jsonForPage(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** A name people give a passkey: 1 to 60 characters of text, no control characters. */
export function passkeyName(name: string): string | null {
  const trimmed = name.trim().replace(/\s+/g, ' ');
  return /^[\p{L}\p{N}\p{P}\p{Zs}]{1,60}$/u.test(trimmed) ? trimmed : null;
}

/**
 * Checks an assertion against a stored credential, uses its challenge up, and moves the counter on;
 * a counter that went backwards is refused as a clone signal (§6.1.1), audited and emailed.
 */
async function checkAndRecord(
  ctx: AppContext,
  user: UserRow,
  method: MethodRow,
  response: unknown,
  binding: string,
  requireUserVerification: boolean,
): Promise<CodeVerification> {
  const credential = credentialOf(method);
  if (!credential || credentialIdOf(response) !== credential.id) return { ok: false, reason: 'code-incorrect' };
  const result = await checkAssertion(relyingParty(ctx), response, (challenge) => challengeValid(ctx, binding, challenge), credential);
  const now = ctx.clock();
  if (!result.ok) {
    // The same assertion sent again (a double submit, a replay) is a used challenge, not a clone.
    if (result.reason === 'counter-regression') {
      const challenge = challengeOf(response);
      if (!challenge || !(await consumeChallenge(ctx, challenge))) return { ok: false, reason: 'code-reused' };
      await ctx.store.audit.append({
        type: 'passkey.counter-regression',
        at: now,
        actor: { kind: 'user', userId: user.id },
        subjectUserId: user.id,
        ip: null,
        details: { methodId: method.id, storedCounter: credential.counter },
      });
      await notifyUser(ctx, user, { kind: 'passkey-clone-suspected', method: method.label });
    }
    return { ok: false, reason: result.reason === 'challenge' ? 'code-expired' : 'code-incorrect' };
  }
  if (requireUserVerification && !result.userVerified) return { ok: false, reason: 'code-incorrect' };
  const challenge = challengeOf(response);
  if (!challenge || !(await consumeChallenge(ctx, challenge))) return { ok: false, reason: 'code-reused' };
  const updated: StoredCredential = { ...credential, counter: result.counter, backedUp: result.backedUp, userVerified: credential.userVerified || result.userVerified };
  // Compare-and-set on the stored credential: of two assertions racing, one moves the counter.
  if (!(await ctx.store.methods.replaceData(method.id, method.data, JSON.stringify(updated), now))) return { ok: false, reason: 'code-reused' };
  return { ok: true };
}

export const passkeyStrategy: MethodStrategy = {
  definition: passkeyDefinition,

  detail: (method) => method.label || 'Passkey',

  model: (method) => method.model,

  async beginEnrolment(ctx, user) {
    const methodId = randomUUID();
    const now = ctx.clock();
    await ctx.store.methods.insertPending({
      id: methodId,
      userId: user.id,
      kind: 'passkey',
      label: 'Passkey',
      phoneE164: null,
      secretSealed: null,
      now,
      pendingExpiresAt: new Date(now.getTime() + ENROLMENT_SECONDS * 1000 * 3),
    });
    return { methodId, challengeId: null };
  },

  /**
   * Activates the set-up with a credential `verifyRegistration` checked (inside the enrolment's
   * transaction, which must not wait on the throttle store: on SQLite that would wait on itself).
   */
  async finishEnrolment(ctx, user, method, _challengeId, response): Promise<CodeVerification> {
    const checked = response.type === 'ceremony' ? verified.get(response.response as object) : undefined;
    if (!checked) return { ok: false, reason: 'code-incorrect' };
    const { credential, name } = checked;
    try {
      const activated = await ctx.store.methods.activate(user.id, method.id, ctx.clock(), null, { data: JSON.stringify(credential), lookupKey: credential.id, label: name, model: credential.aaguid });
      return activated ? { ok: true } : { ok: false, reason: 'code-expired' };
    } catch (error) {
      // Another set-up registered the same credential since the check: the unique index refused this one.
      if (isUniqueViolation(error)) return { ok: false, reason: 'code-reused' };
      throw error;
    }
  },

  async beginChallenge(ctx, _user, _method, context) {
    return { challengeId: issueChallenge(ctx, context.binding) };
  },

  async verify(ctx, user, method, challengeId, response, context) {
    if (response.type !== 'ceremony' || !challengeId) return { ok: false, reason: 'code-incorrect' };
    return checkAndRecord(ctx, user, method, response.response, context.binding, false);
  },

  async challengePage(ctx, input) {
    const credential = credentialOf(input.method);
    const challenge = input.challengeId ?? issueChallenge(ctx, input.context.binding);
    const options = authenticationOptions(relyingParty(ctx), credential ? [{ id: credential.id, transports: credential.transports }] : [], challenge);
    return {
      template: 'sign-in/passkey.njk',
      data: { heading: passkeyDefinition.heading, prompt: passkeyDefinition.prompt, optionsJson: jsonForPage(options) },
    };
  },

  deletionNote: 'Your device may still offer this passkey: you can remove it there too, in its passwords or passkeys settings.',
};

/** Registration responses this process checked, with the credential each proved (see finishEnrolment). */
const verified = new WeakMap<object, { credential: StoredCredential; name: string }>();

/**
 * Checks a registration response for a pending set-up (§7.1), uses its challenge up, and makes sure the
 * credential id is not registered already (§7.1 step 25: one account only); the token it returns is
 * what `finishEnrolment` activates.
 */
async function verifyRegistration(
  ctx: AppContext,
  user: UserRow,
  method: MethodRow,
  response: unknown,
  name: string,
): Promise<{ ok: true; token: object } | { ok: false; reason: 'refused' | 'expired' | 'duplicate' } | { ok: false; reason: 'model'; requirement: string }> {
  const result = await checkRegistration(relyingParty(ctx), response, (challenge) => challengeValid(ctx, `enrolment:${method.id}`, challenge));
  if (!result.ok) return { ok: false, reason: result.reason === 'challenge' ? 'expired' : 'refused' };
  const challenge = challengeOf(response);
  if (!challenge || !(await consumeChallenge(ctx, challenge))) return { ok: false, reason: 'expired' };
  if (await ctx.store.methods.lookupKeyTaken('passkey', result.credential.id)) return { ok: false, reason: 'duplicate' };
  // A strength that lists the models it accepts, for a requirement that applies to this person.
  const refusal = await modelRefusal(ctx, user, 'passkey', result.credential.aaguid);
  if (refusal) return { ok: false, reason: 'model', requirement: refusal };
  const token = {};
  verified.set(token, { credential: result.credential, name });
  return { ok: true, token };
}

/** The set-up page: a name, and the browser's ceremony with options bound to this set-up. */
async function ceremonyPage(input: EnrolmentInput, method: MethodRow, name?: string): Promise<EnrolmentOutcome> {
  const { ctx, session } = input;
  const existing = (await ctx.store.methods.activeForUser(session.user.id)).flatMap((m) => {
    const credential = m.kind === 'passkey' ? credentialOf(m) : null;
    return credential ? [{ id: credential.id, transports: credential.transports }] : [];
  });
  const options = registrationOptions(
    relyingParty(ctx),
    { handle: userHandle(ctx, session.user.id), name: session.user.email, displayName: session.user.display_name },
    existing,
    issueChallenge(ctx, `enrolment:${method.id}`),
  );
  return {
    type: 'page',
    page: { template: 'security-info/add-passkey.njk', data: { backHref: '/security-info/add', methodId: method.id, name: name ?? input.form.name ?? '', optionsJson: jsonForPage(options) } },
  };
}

export const passkeyUnit: MethodUnit = {
  slug: 'passkey',
  strategies: [passkeyStrategy],
  enrolment: {
    value: 'passkey',
    choice: (input) =>
      input.offers('passkey')
        ? { text: 'Passkey', hint: 'Sign in with your fingerprint, face or screen lock, a phone nearby, or a security key. It cannot be used on a fake website.', group: 'passkey', kind: 'passkey' }
        : null,
    async start(input) {
      const started = await beginEnrolment(input.ctx, input.session, passkeyStrategy, {}, input.client);
      return { type: 'redirect', to: `/security-info/add/${started.methodId}` };
    },
    pending: (input, method) => ceremonyPage(input, method),
    async finish(input, method) {
      const name = passkeyName(input.form.name ?? '');
      if (name === null) return { type: 'refused', error: { code: 'method-name-invalid', field: 'name' } };
      let response: unknown = null;
      try {
        response = JSON.parse(input.form.credential ?? '');
      } catch {
        return { type: 'refused', error: { code: 'passkey-refused', field: 'credential' } };
      }
      const checked = await verifyRegistration(input.ctx, input.session.user, method, response, name);
      if (!checked.ok && checked.reason === 'model') return { type: 'refused', error: { code: 'passkey-model-not-allowed', params: { requirement: checked.requirement }, field: 'credential' } };
      if (!checked.ok) return { type: 'refused', error: { code: checked.reason === 'duplicate' ? 'passkey-duplicate' : 'passkey-refused', field: 'credential' } };
      const result = await finishEnrolment(input.ctx, input.session, passkeyStrategy, method.id, null, { type: 'ceremony', response: checked.token }, input.client);
      if (!result.ok) return { type: 'refused', error: { code: result.reason === 'code-reused' ? 'passkey-duplicate' : 'passkey-refused', field: 'credential' } };
      return { type: 'added', methodId: method.id, proved: 'passkey', to: '/security-info?done=added' };
    },
  },

  facts(method) {
    const credential = credentialOf(method);
    if (!credential) return { facts: [], renamable: true };
    const model = modelOf(credential.aaguid);
    return { facts: [isSynced(credential) ? 'Synced passkey' : 'Device-bound passkey', ...(model ? [model] : [])], renamable: true };
  },

  rename: passkeyName,

  /** "Sign in with a passkey" on the email page: a discoverable credential, no password. */
  firstFactor: {
    async page(ctx) {
      const options = authenticationOptions(relyingParty(ctx), [], issueChallenge(ctx, PASSWORDLESS_BINDING));
      return { template: 'sign-in/passkey-first-factor.njk', data: { passwordlessOptionsJson: jsonForPage(options) } };
    },
    async verify(ctx, form) {
      let response: unknown;
      try {
        response = JSON.parse(form.credential ?? '');
      } catch {
        return { ok: false, reason: 'refused' };
      }
      const id = credentialIdOf(response);
      const method = id ? await ctx.store.methods.findByLookupKey('passkey', id) : undefined;
      const user = method ? await ctx.store.users.findById(method.user_id) : undefined;
      if (!method || !user) return { ok: false, reason: 'refused' };
      // The handle the authenticator returns must be the one we gave this person (§7.2 step 6).
      const handle = userHandleOf(response);
      if (handle !== null && handle !== userHandle(ctx, user.id)) return { ok: false, reason: 'refused' };
      // Without a password, the passkey is both factors: user verification is required (NIST SP 800-63B-4 §3.1.7).
      const result = await checkAndRecord(ctx, user, method, response, PASSWORDLESS_BINDING, true);
      if (!result.ok) return { ok: false, reason: result.reason === 'code-expired' ? 'expired' : 'refused' };
      return { ok: true, method };
    },
  },
};
