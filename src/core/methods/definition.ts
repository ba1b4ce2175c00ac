/**
 * What a sign-in method is, as data: each method's unit (src/app/methods/<unit>/definition.ts) declares
 * one of these, and the registry (./registry.ts) reads them from the one list of units'
 * definitions (src/app/methods/definitions.ts). Pure data: the policy, the sign-in state machine, the
 * compliance report and the pages all read it, and none of them names a method.
 */

/**
 * How a challenge is answered: a code typed into a form, an outside event (a push approved on the
 * phone), or a browser ceremony whose typed response the page posts (a passkey's WebAuthn assertion).
 */
export type ChallengeStyle = 'code' | 'external' | 'ceremony';

/** The strengths Portcullis defines (DESIGN.md); a policy may add its own from the same kinds. */
export type BuiltInStrength = 'mfa' | 'app-push' | 'phishing-resistant';

export interface MethodDefinition<K extends string = string> {
  kind: K;
  /** RFC 8176 `amr` value. */
  amr: string;
  /** Higher is stronger; equal values are equally strong (the system-preferred order). */
  strength: number;
  challengeStyle: ChallengeStyle;
  /** What people call it, in the article's words where it has them. */
  name: string;
  /** "Sign in another way" option text, with {detail} for the method's detail. */
  useText: string;
  /** The heading of the sign-in page that asks for it. */
  heading: string;
  /** The prompt at sign-in, with {detail}. */
  prompt: string;
  /** How many of this kind one user may hold. */
  maxPerUser: number;
  /**
   * The bit this kind takes in a user's policy profile (src/core/policy/profile.ts), stored in every
   * user's row: once given, never changed. Null for a credential that is issued, not registered (a pass).
   */
  profileBit: number | null;
  /** The built-in strengths it meets. */
  meets: readonly BuiltInStrength[];
  /** Whether a person can add it themselves on Security info (a pass is issued by an administrator). */
  selfService: boolean;
  /**
   * A backup for when the others are lost (recovery codes): added only beside another method, never
   * suggested as the method to set up, and never a person's first.
   */
  backupOnly: boolean;
  /** Whether a registration campaign may nudge people to set it up. */
  campaignable: boolean;
  /** How it reads in a sentence ("you must use … to sign in"). */
  phrase: string;
  /** The steps to set it up, for the Security info banner and the campaign page. */
  setUpSteps: readonly string[];
}
