/**
 * A sign-in method as one unit (issue #14): a folder under src/app/methods/ holding its registry entry
 * (definition.ts, pure data the core reads), its behaviour at sign-in (one strategy per kind: challenge,
 * verification, resend), its set-up steps and the pages they show, what Security info shows for it, and
 * what deleting it means. Security info and the sign-in pages are generic routes over these units
 * (src/server/security-info/routes.ts, src/server/sign-in/routes.ts); none of them names a method.
 *
 * docs/architecture.md#adding-a-sign-in-method says what adding one takes.
 */
import type { ErrorCode } from '../../core/errors.js';
import type { MethodKind } from '../../core/methods.js';
import type { SecondFactorKind } from '../../core/methods/registry.js';
import type { MethodRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import type { ActiveSession, ClientInfo } from '../sessions.js';
import type { MethodStrategy } from './strategy.js';

/** A page a unit asks the server to show: one of our templates, its data, and its status. */
export interface MethodPage {
  template: string;
  data: Record<string, unknown>;
  status?: number;
}

/** Where a set-up step leads. */
export type EnrolmentOutcome =
  | { type: 'page'; page: MethodPage }
  | { type: 'redirect'; to: string }
  /**
   * The method is active. `proved`: the kind whose first use in this set-up proved it (a code, the
   * phone's approval, a passkey's signature) joins the session's methods, as a step-up would; null when
   * the set-up proves nothing of its own (recovery codes are shown, not used).
   */
  | { type: 'added'; methodId: string; proved: MethodKind | null; to: string }
  /**
   * The answer was not accepted: the server shows the step's page again (`pending` after `finish`, `open`
   * after `submit`) with the error at its field.
   */
  | { type: 'refused'; error: { code: ErrorCode; params?: Record<string, string | number>; field?: string } };

/** What a set-up step is given: the person, their client, the form or query, and what the policy offers. */
export interface EnrolmentInput {
  ctx: AppContext;
  session: ActiveSession;
  client: ClientInfo & { ip: string };
  /** The posted form (empty for a GET). */
  form: Record<string, string>;
  /** The query string. */
  query: Record<string, string>;
  /** Whether the policy lets this person set up a kind now (in a restricted session, only a kind that helps). */
  offers(kind: SecondFactorKind): boolean;
  /** The kind the organisation recommends (the strongest that meets every requirement), if any. */
  recommended: SecondFactorKind | null;
}

/** An event stream a set-up page follows (push pairing): the bus topic, and whether the state moved on. */
export interface EnrolmentEvents {
  topic: string;
  /** How long the stream stays open. */
  seconds: number;
  /** True once the page's state (`seen`) is out of date. */
  changed(): Promise<boolean>;
}

/** The "Add sign-in method" choice a unit offers. Of choices in one group, only the first offered shows. */
export interface MethodChoice {
  text: string;
  hint: string;
  /** Units in one group are alternatives (the Portcullis Authenticator before any app that makes codes). */
  group: string;
  /** The kind whose recommendation the choice carries ("recommended by your organisation"). */
  kind: SecondFactorKind;
}

/** The set-up steps of a unit, each a generic route of Security info. */
export interface MethodEnrolment {
  /** The value of its radio on "Add sign-in method" (and a campaign's method: the kinds it sets up are the unit's). */
  value: string;
  /** The "Add sign-in method" choice, or null when the policy offers none of its kinds (or it does not fit now). */
  choice(input: EnrolmentInput, hasMethods: boolean): Promise<MethodChoice | null> | MethodChoice | null;
  /** Chosen on "Add sign-in method", or from a campaign's "Set it up now" (a POST). */
  start(input: EnrolmentInput): Promise<EnrolmentOutcome>;
  /** GET /security-info/add/:slug: a first page to come back to (a form); absent when set-up starts only from a POST. */
  open?(input: EnrolmentInput): Promise<EnrolmentOutcome>;
  /** POST /security-info/add/:slug: that form, posted. */
  submit?(input: EnrolmentInput): Promise<EnrolmentOutcome>;
  /** GET /security-info/add/:methodId: the page of a pending method of this unit. */
  pending?(input: EnrolmentInput, method: MethodRow): Promise<EnrolmentOutcome>;
  /** POST /security-info/add/:methodId: the answer that activates it (a first code, a passkey's response). */
  finish?(input: EnrolmentInput, method: MethodRow): Promise<EnrolmentOutcome>;
  /** POST /security-info/add/:methodId/resend. */
  resend?(input: EnrolmentInput, method: MethodRow): Promise<EnrolmentOutcome>;
  /** GET /security-info/add/:slug/:id: a step the unit follows by its own id (a pairing). */
  follow?(input: EnrolmentInput, id: string): Promise<EnrolmentOutcome>;
  /** GET /security-info/add/:slug/:id/events: that step's event stream; null when there is no such step. */
  events?(input: EnrolmentInput, id: string): Promise<EnrolmentEvents | null>;
}

/** What Security info shows of a registered method beyond its name and detail. */
export interface MethodFacts {
  /** Lines shown under the detail ("Synced passkey", "Google Password Manager"). */
  facts: string[];
  /** Whether the person may rename it here. */
  renamable: boolean;
}

/** Passwordless sign-in from the email page (a discoverable passkey), where a unit offers it. */
export interface FirstFactor {
  /** The block shown on the email page: a template partial and its data (options for the browser). */
  page(ctx: AppContext): Promise<MethodPage>;
  /** Verifies the posted response; the method it proved (with its owner), or why not. */
  verify(ctx: AppContext, form: Record<string, string>, client: ClientInfo & { ip: string }): Promise<{ ok: true; method: MethodRow } | { ok: false; reason: 'refused' | 'expired' }>;
}

export interface MethodUnit {
  /** The unit's name in URLs (/security-info/add/:slug). */
  slug: string;
  /** One strategy per kind the unit provides (phone: text message and call). */
  strategies: readonly MethodStrategy[];
  enrolment?: MethodEnrolment;
  /** What Security info shows beyond name and detail; absent: nothing more. */
  facts?(method: MethodRow): MethodFacts;
  /** A new name for a method, checked; null when the name is not acceptable. */
  rename?(name: string): string | null;
  firstFactor?: FirstFactor;
}
