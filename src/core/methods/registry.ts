/**
 * The method registry: what each second-factor method is, as data the pages, the sign-in flow, the
 * audit log and (later) the policy read. Each method's behaviour (enrol, challenge, verify) is a
 * unit in `src/app/methods/`, behind one interface (src/app/methods/unit.ts); routes are generic over both.
 *
 * Strength order for the system-preferred method (DESIGN.md): passkey > push > totp > voice ≈ sms ≈
 * recovery codes. A Temporary Access Pass is a bootstrap credential outside the order. The entries
 * themselves are declared by each method's unit (src/app/methods/<unit>/definition.ts).
 */
import { methodDefinitionList } from '../../app/methods/definitions.js';
import type { BuiltInStrength, ChallengeStyle, MethodDefinition } from './definition.js';

export type { ChallengeStyle, MethodDefinition } from './definition.js';

/** Every second-factor kind, from the one list of method units' definitions. */
export type SecondFactorKind = (typeof methodDefinitionList)[number]['kind'];

export const methodDefinitions = Object.fromEntries(methodDefinitionList.map((d) => [d.kind, d as MethodDefinition<SecondFactorKind>])) as Record<
  SecondFactorKind,
  MethodDefinition<SecondFactorKind>
>;

/** The kinds, strongest first (the system-preferred order). */
export const secondFactorKinds: readonly SecondFactorKind[] = methodDefinitionList.map((d) => d.kind).sort((a, b) => methodDefinitions[b].strength - methodDefinitions[a].strength);

/** The kinds this build can challenge: all of them. */
export const enabledKinds: readonly SecondFactorKind[] = secondFactorKinds;

/** The kinds meeting a built-in strength, from the definitions. */
export function kindsMeeting(strength: BuiltInStrength): SecondFactorKind[] {
  return secondFactorKinds.filter((k) => (methodDefinitions[k].meets as readonly string[]).includes(strength));
}

export function isSecondFactorKind(value: string): value is SecondFactorKind {
  return Object.hasOwn(methodDefinitions, value);
}

/** Whether a method of this kind is answered by typing (a code or a pass), not by an event or a ceremony. */
export function isTyped(style: ChallengeStyle): boolean {
  return style === 'code';
}

/** A registered method as the core sees it. */
export interface MethodSummary {
  id: string;
  kind: SecondFactorKind;
  /** Shown to the user: the app name, or the masked phone number. */
  detail: string;
  /** The authenticator's model where the method has one (a passkey's AAGUID), for a policy's model lists. */
  model?: string | null;
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
