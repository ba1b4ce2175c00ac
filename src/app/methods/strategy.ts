/**
 * One strategy per method kind, behind one interface, serving both sign-in and Security info (as Ory
 * Kratos does): set-up (begin and finish enrolment), challenge (begin, its page, resend, verify), and
 * how to describe a registered method. A unit (./unit.ts) holds the strategies of its kinds; routes and
 * pages are generic over them.
 */
import type { CodeVerification } from '../../core/sign-in/flow.js';
import type { MethodDefinition, SecondFactorKind } from '../../core/methods/registry.js';
import type { ChallengesTable, MethodRow, UserRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import type { MethodPage } from './unit.js';

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
  /** What else the unit's set-up page shows once (a passkey's creation options, recovery codes). */
  shown?: Record<string, unknown>;
}

/** The answer to a challenge, as the form brought it: a typed code, an outside event, or a ceremony's response. */
export type ChallengeResponse = { type: 'code'; code: string } | { type: 'event' } | { type: 'ceremony'; response: unknown };

/** The code typed, or '' when the answer is not a code. */
export function typedCode(response: ChallengeResponse): string {
  return response.type === 'code' ? response.code : '';
}

/** What the sign-in page of a challenge is given. */
export interface ChallengePageInput {
  user: { id: string; email: string };
  method: MethodRow;
  /** The method's detail as the options list shows it. */
  detail: string;
  challengeId: string | null;
  context: ChallengeContext;
}

export interface MethodStrategy {
  definition: MethodDefinition<SecondFactorKind>;
  /** The detail shown for a registered method: the app's name, or the masked phone number. */
  detail(method: MethodRow): string;
  /**
   * Starts setting the method up from the set-up form's fields; throws PortcullisError for bad input or
   * quotas. Absent for push: a device pairs itself from the code Security info shows (src/app/methods/push/pairing.ts).
   */
  beginEnrolment?(ctx: AppContext, user: UserRow, form: Record<string, string>, context: ChallengeContext): Promise<EnrolmentStart>;
  /** Finishes the set-up with the first code: the method becomes active only when it is right. */
  finishEnrolment?(ctx: AppContext, user: UserRow, method: MethodRow, challengeId: string | null, response: ChallengeResponse, context: ChallengeContext): Promise<CodeVerification>;
  /** Starts a challenge for an active method (sends a code; nothing for an app that makes its own). */
  beginChallenge(ctx: AppContext, user: UserRow, method: MethodRow, context: ChallengeContext): Promise<{ challengeId: string | null }>;
  /** Sends a new code for the same challenge (keeps its count of wrong tries); absent for TOTP. */
  resend?(ctx: AppContext, user: UserRow, method: MethodRow, challengeId: string, context: ChallengeContext): Promise<void>;
  verify(ctx: AppContext, user: UserRow, method: MethodRow, challengeId: string | null, response: ChallengeResponse, context: ChallengeContext): Promise<CodeVerification>;
  /** The sign-in page that asks for it: a code form, the number to type on the phone, a passkey ceremony. */
  challengePage(ctx: AppContext, input: ChallengePageInput): Promise<MethodPage>;
  /** An event stream the challenge page follows (push: the phone's decision), where there is one. */
  challengeEvents?(ctx: AppContext, challengeId: string): Promise<{ topic: string; status: string | null; expiresAt: Date } | null>;
  /** The authenticator's model (a passkey's AAGUID), which a policy's strength may list (issue #14). */
  model?(method: MethodRow): string | null;
  /** Adding one replaces the person's existing one (recovery codes: a new set; the old stops working). */
  replacesExisting?: boolean;
  /** What deleting it means, said on the confirmation page beyond the method going. */
  deletionNote?: string;
}
