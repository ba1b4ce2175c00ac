/**
 * The login prompt of an OpenID Connect interaction (docs/oidc.md#the-interaction): may the person's
 * Portcullis session answer it, or must they sign in (again) or step up first, or can they never meet it?
 *
 * Checks, in order, each with its reason:
 * 1. `no-session`: nobody is signed in (or the session is restricted by the method policy) → sign in.
 * 2. `fresh-sign-in`: `prompt=login` (OpenID Connect Core 1.0 §3.1.2.1), or `max_age` older than the
 *    sign-in (§3.1.2.1: "the OP MUST attempt to actively re-authenticate") → a new sign-in. A sign-in that
 *    happened after the interaction began is fresh whatever the max_age (max_age=0 would never be met).
 * 3. `unreachable`: the asked acr is stronger than every method the person may use could reach → the unmet
 *    page, ending in `unmet_authentication_requirements` (RFC 9470 §3).
 * 4. `step-up`: the asked acr is reachable but this session has not reached it → a second factor.
 * Otherwise the interaction finishes with the session's `acr`, `amr` and sign-in time.
 */
import type { MethodKind, MethodUse } from '../methods.js';
import { type Acr, acrReachedBy, amrFor, decideAcr } from './acr.js';

export interface LoginRequest {
  /** `prompt=login` was asked. */
  promptLogin: boolean;
  /** `max_age`, in seconds, when asked. */
  maxAge: number | undefined;
  /** The acr values asked, in order of preference (empty: none). */
  askedAcr: readonly string[];
  /** When the interaction began. */
  startedAt: Date;
}

export interface LoginSession {
  userId: string;
  /** When the person last signed in fully (a step-up does not change it). */
  signedInAt: Date;
  methods: readonly MethodUse[];
  /** Restricted by the method policy to registering a method: not a sign-in an application may rely on. */
  restricted: boolean;
}

export type LoginDecision =
  | { action: 'finish'; accountId: string; acr: Acr; amr: string[]; authTime: number }
  | { action: 'sign-in'; reason: 'no-session' | 'fresh-sign-in' }
  /** `acr`: the class to reach (the first asked class the person's methods can reach). */
  | { action: 'step-up'; acr: Acr }
  | { action: 'unreachable' };

export function decideLogin(request: LoginRequest, session: LoginSession | null, usableKinds: readonly MethodKind[], now: Date): LoginDecision {
  if (!session || session.restricted) return { action: 'sign-in', reason: 'no-session' };
  // The interaction's start is known to the second (its `iat`): only a sign-in in a later second is surely
  // after it. At worst a person signs in once more; never is an older sign-in taken for a fresh one.
  const signedInAfterStart = session.signedInAt.getTime() >= (Math.floor(request.startedAt.getTime() / 1000) + 1) * 1000;
  const withinMaxAge = request.maxAge === undefined || now.getTime() - session.signedInAt.getTime() <= request.maxAge * 1000;
  if (!signedInAfterStart && (request.promptLogin || !withinMaxAge)) return { action: 'sign-in', reason: 'fresh-sign-in' };
  const reachable = decideAcr(request.askedAcr, acrReachedBy(['password', ...usableKinds, ...session.methods.map((m) => m.method)]));
  if (!reachable.met) return { action: 'unreachable' };
  const reached = decideAcr(request.askedAcr, acrReachedBy(session.methods.map((m) => m.method)));
  if (!reached.met) return { action: 'step-up', acr: reachable.acr };
  return {
    action: 'finish',
    accountId: session.userId,
    acr: reached.acr,
    amr: amrFor(session.methods),
    // OpenID Connect Core 1.0 §2: auth_time, seconds since the epoch.
    authTime: Math.floor(session.signedInAt.getTime() / 1000),
  };
}
