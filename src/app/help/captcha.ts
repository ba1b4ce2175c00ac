/**
 * The help centre's CAPTCHA: ALTCHA proof of work (altcha-lib 2, its v2 challenge format), self-hosted.
 * A challenge is signed with an HMAC key derived from PORTCULLIS_SECRET (so any node verifies what any
 * node issued) and expires; a solution is accepted once, across nodes, by recording the challenge's
 * signature in the shared throttle store until the challenge expires (`increment` is atomic: only the
 * first use counts 1).
 *
 * Deterministic mode: the server picks the counter the solver must reach (so the work is known, and the
 * solution is checked by the key's HMAC, without re-deriving), as altcha-lib recommends.
 */
import { createChallenge, randomInt, verifySolution, type Challenge, type Solution } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { hmac } from '../../crypto/tokens.js';
import type { AppContext } from '../context.js';

/** PBKDF2 iterations per attempt, and the range of attempts the solver must make. */
export const CAPTCHA_COST = 100;
export const CAPTCHA_COUNTER_MIN = 500;
export const CAPTCHA_COUNTER_MAX = 2500;
/** How long a challenge may be solved and sent: enough to read the article and write a comment. */
export const CAPTCHA_LIFETIME_SECONDS = 30 * 60;

export type CaptchaResult = { ok: true } | { ok: false; reason: 'captcha-required' | 'captcha-invalid' | 'captcha-expired' | 'captcha-used' };

function secrets(ctx: AppContext): { signature: string; key: string } {
  // Two keys from one purpose key, as altcha-lib takes strings: one signs the challenge, one the derived key.
  return { signature: hmac(ctx.keys.captcha, 'challenge'), key: hmac(ctx.keys.captcha, 'derived-key') };
}

export async function createCaptchaChallenge(ctx: AppContext): Promise<Challenge> {
  const { signature, key } = secrets(ctx);
  return createChallenge({
    algorithm: 'PBKDF2/SHA-256',
    cost: CAPTCHA_COST,
    counter: randomInt(CAPTCHA_COUNTER_MAX, CAPTCHA_COUNTER_MIN),
    deriveKey,
    expiresAt: new Date(ctx.clock().getTime() + CAPTCHA_LIFETIME_SECONDS * 1000),
    hmacSignatureSecret: signature,
    hmacKeySignatureSecret: key,
  });
}

interface Payload {
  challenge: Challenge;
  solution: Solution;
}

function decodePayload(text: string): Payload | null {
  if (!text || text.length > 4096) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
    const { challenge, solution } = (value ?? {}) as Partial<Payload>;
    if (typeof challenge !== 'object' || challenge === null || typeof challenge.parameters !== 'object' || challenge.parameters === null) return null;
    if (typeof challenge.signature !== 'string' || typeof solution !== 'object' || solution === null) return null;
    return { challenge, solution };
  } catch {
    return null;
  }
}

/** Checks a solution without using it up (nothing is written). */
export async function checkCaptcha(ctx: AppContext, text: string): Promise<CaptchaResult & { expiresAt?: Date; signature?: string }> {
  if (!text) return { ok: false, reason: 'captcha-required' };
  const payload = decodePayload(text);
  if (!payload) return { ok: false, reason: 'captcha-invalid' };
  const expiresAt = payload.challenge.parameters.expiresAt;
  // altcha-lib compares expiry with the wall clock; ours is the context's (tests move it).
  if (typeof expiresAt !== 'number' || expiresAt * 1000 <= ctx.clock().getTime()) {
    return { ok: false, reason: typeof expiresAt === 'number' ? 'captcha-expired' : 'captcha-invalid' };
  }
  const { signature, key } = secrets(ctx);
  try {
    const result = await verifySolution({
      challenge: payload.challenge,
      solution: payload.solution,
      deriveKey,
      hmacSignatureSecret: signature,
      hmacKeySignatureSecret: key,
    });
    if (result.expired) return { ok: false, reason: 'captcha-expired' };
    if (!result.verified) return { ok: false, reason: 'captcha-invalid' };
  } catch {
    // A payload altcha-lib cannot read (an unknown algorithm, a malformed counter) is an invalid one.
    return { ok: false, reason: 'captcha-invalid' };
  }
  return { ok: true, expiresAt: new Date(expiresAt * 1000), signature: payload.challenge.signature! };
}

/** Uses a checked solution up: true the first time, on any node, until the challenge expires. */
export async function spendCaptcha(ctx: AppContext, signature: string, expiresAt: Date): Promise<boolean> {
  const count = await ctx.throttles.increment(`captcha-used:${signature}`, ctx.clock(), expiresAt);
  return count === 1;
}
