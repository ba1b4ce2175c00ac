/**
 * The method registry: what each second-factor method is, as data the pages, the sign-in flow, the
 * audit log and (later) the policy read. Each method's behaviour (enrol, challenge, verify) is a
 * strategy in `src/app/methods/`, one per kind, behind one interface; routes are generic over both.
 *
 * Strength order for the system-preferred method (DESIGN.md): passkey > push > totp > voice ≈ sms.
 * A Temporary Access Pass is a bootstrap credential outside the order.
 */
import type { MethodKind } from '../methods.js';
import { amrValues } from '../methods.js';

export type SecondFactorKind = Exclude<MethodKind, 'password' | 'email'>;

/** How a challenge is answered: a code typed into a form, or an outside event (a push approval, a passkey). */
export type ChallengeStyle = 'code' | 'external';

export interface MethodDefinition {
  kind: SecondFactorKind;
  /** RFC 8176 `amr` value. */
  amr: string;
  /** Higher is stronger; equal values are equally strong. */
  strength: number;
  challengeStyle: ChallengeStyle;
  /** What people call it, in the article's words where it has them. */
  name: string;
  /** "Sign in another way" option text, with {detail} for the method's detail. */
  useText: string;
  /** The heading of the sign-in page that asks for it. */
  heading: string;
  /** The prompt above the code field at sign-in. */
  prompt: string;
  /** How many of this kind one user may hold. */
  maxPerUser: number;
}

export const methodDefinitions: Record<SecondFactorKind, MethodDefinition> = {
  totp: {
    kind: 'totp',
    amr: amrValues.totp,
    strength: 2,
    challengeStyle: 'code',
    name: 'Authenticator app – code',
    useText: 'Use a code from your authenticator app',
    heading: 'Enter the code from your authenticator app',
    prompt: 'Enter the 6-digit code shown in your authenticator app.',
    maxPerUser: 5,
  },
  sms: {
    kind: 'sms',
    amr: amrValues.sms,
    strength: 1,
    challengeStyle: 'code',
    name: 'Phone – text message',
    useText: 'Text a code to {detail}',
    heading: 'Check your phone',
    prompt: 'We have sent a 6-digit code by text message to {detail}. It expires in 10 minutes.',
    maxPerUser: 5,
  },
  voice: {
    kind: 'voice',
    amr: amrValues.voice,
    strength: 1,
    challengeStyle: 'code',
    name: 'Phone – call',
    useText: 'Call {detail} and read out a code',
    heading: 'Answer your phone',
    prompt: 'We are calling {detail}. Enter the 6-digit code you hear. It expires in 10 minutes.',
    maxPerUser: 5,
  },
  push: {
    kind: 'push',
    amr: amrValues.push,
    strength: 3,
    challengeStyle: 'external',
    name: 'App based authentication – notification',
    useText: 'Approve a request on my authenticator app ({detail})',
    heading: 'Approve the sign-in on your phone',
    prompt: 'Open your authenticator app and enter the number shown to sign in.',
    maxPerUser: 5,
  },
  passkey: {
    kind: 'passkey',
    amr: amrValues.passkey,
    strength: 4,
    challengeStyle: 'external',
    name: 'Passkey',
    useText: 'Use a passkey ({detail})',
    heading: 'Use your passkey',
    prompt: 'Use your passkey to sign in.',
    maxPerUser: 10,
  },
  tap: {
    kind: 'tap',
    amr: amrValues.tap,
    strength: 0,
    challengeStyle: 'code',
    name: 'Temporary Access Pass',
    useText: 'Use a Temporary Access Pass',
    heading: 'Enter your Temporary Access Pass',
    prompt: 'Enter the Temporary Access Pass your administrator gave you.',
    maxPerUser: 1,
  },
};

/** The kinds this build can challenge (a Temporary Access Pass is issued, not enrolled). Passkeys come later. */
export const enabledKinds: readonly SecondFactorKind[] = ['totp', 'sms', 'voice', 'push', 'tap'];

export function isSecondFactorKind(value: string): value is SecondFactorKind {
  return (enabledKinds as readonly string[]).includes(value);
}

/** A registered method as the core sees it. */
export interface MethodSummary {
  id: string;
  kind: SecondFactorKind;
  /** Shown to the user: the app name, or the masked phone number. */
  detail: string;
}

/**
 * The order to offer a user's methods in: the default first (when it is one of them), then strongest
 * first; ties keep registration order. Returns a new array.
 */
export function orderMethods<T extends MethodSummary>(methods: readonly T[], defaultMethodId: string | null): T[] {
  return methods
    .map((method, index) => ({ method, index }))
    .sort((a, b) => {
      if (a.method.id === defaultMethodId) return -1;
      if (b.method.id === defaultMethodId) return 1;
      const byStrength = methodDefinitions[b.method.kind].strength - methodDefinitions[a.method.kind].strength;
      return byStrength !== 0 ? byStrength : a.index - b.index;
    })
    .map(({ method }) => method);
}

/** The method to prompt: the user's default if they still have it, otherwise the strongest (system-preferred). */
export function methodToPrompt<T extends MethodSummary>(methods: readonly T[], defaultMethodId: string | null): T | null {
  return orderMethods(methods, defaultMethodId)[0] ?? null;
}

export function describeUse(method: MethodSummary): string {
  return methodDefinitions[method.kind].useText.replace('{detail}', method.detail);
}

/** "Phone – text message – +44 7••• •••456"; the detail is left out when the name already says it. */
export function labelMethod(name: string, detail: string): string {
  return detail === '' || name.includes(detail) ? name : `${name} – ${detail}`;
}
