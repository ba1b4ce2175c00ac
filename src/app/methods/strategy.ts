/**
 * One strategy per method kind, behind one interface, serving both sign-in and Security info (as Ory
 * Kratos does): set-up (begin and finish enrolment), challenge (begin, resend, verify), and how to
 * describe a registered method. Routes and pages are generic over the registry of strategies.
 */
import type { CodeVerification } from '../../core/sign-in/flow.js';
import type { MethodDefinition } from '../../core/methods/registry.js';
import type { ChallengesTable, MethodRow, UserRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';

export interface ChallengeContext {
  purpose: ChallengesTable['purpose'];
  /** What the challenge is bound to (the hash of a sign-in flow's cookie, or a set-up's id). */
  binding: string;
  ip: string;
  /** Coarse location of the client, when known (shown with a push request). */
  location?: string | null;
}

/** What the set-up page needs to show after the first step. */
export interface EnrolmentStart {
  methodId: string;
  challengeId: string | null;
  /** TOTP: the otpauth:// URI for the QR code, and the key for typing. */
  totp?: { uri: string; key: string };
  /** Phone: the masked number the code went to. */
  sentTo?: string;
}

export interface MethodStrategy {
  definition: MethodDefinition;
  /** The detail shown for a registered method: the app's name, or the masked phone number. */
  detail(method: MethodRow): string;
  /**
   * Starts setting the method up from the set-up form's fields; throws PortcullisError for bad input or
   * quotas. Absent for push: a device pairs itself from the code Security info shows (src/app/push.ts).
   */
  beginEnrolment?(ctx: AppContext, user: UserRow, form: Record<string, string>, context: ChallengeContext): Promise<EnrolmentStart>;
  /** Finishes the set-up with the first code: the method becomes active only when it is right. */
  finishEnrolment?(ctx: AppContext, user: UserRow, method: MethodRow, challengeId: string | null, code: string, context: ChallengeContext): Promise<CodeVerification>;
  /** Starts a challenge for an active method (sends a code; nothing for an app that makes its own). */
  beginChallenge(ctx: AppContext, user: UserRow, method: MethodRow, context: ChallengeContext): Promise<{ challengeId: string | null }>;
  /** Sends a new code for the same challenge (keeps its count of wrong tries); absent for TOTP. */
  resend?(ctx: AppContext, user: UserRow, method: MethodRow, challengeId: string, context: ChallengeContext): Promise<void>;
  verify(ctx: AppContext, user: UserRow, method: MethodRow, challengeId: string | null, code: string, context: ChallengeContext): Promise<CodeVerification>;
}
