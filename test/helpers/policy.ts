/** Policies and people for the pure policy tests (src/core/policy/*.test.ts). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { MethodSummary, SecondFactorKind } from '../../src/core/methods/registry.js';
import { compilePolicy, type CompiledPolicy, type PolicyInput } from '../../src/core/policy/document.js';
import type { PolicySubject } from '../../src/core/policy/evaluate.js';

export const EXAMPLE_POLICY = path.resolve(import.meta.dirname, '..', '..', 'examples', 'nhsmail-elevated-rights.yaml');

/** Compiles a policy, throwing with its problems when it does not compile. */
export function compile(input: PolicyInput): CompiledPolicy {
  const result = compilePolicy(input);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.policy;
}

/** The shipped example as read from YAML, for variants of it. */
export const exampleDocument = () => parse(readFileSync(EXAMPLE_POLICY, 'utf8')) as { requirements: Array<Record<string, unknown>>; registration: Array<Record<string, unknown>> };

/** The article's policy as shipped: push for elevated rights from 30 November 2023, no grace. */
export const example = () => compile(exampleDocument() as PolicyInput);

/** A registered method of a kind. */
export const m = (kind: SecondFactorKind, id = `m-${kind}`): MethodSummary => ({ id, kind, detail: kind });

/** A typical user with no methods, exceptions or snoozes, but for `overrides`. */
export const user = (overrides: Partial<PolicySubject> = {}): PolicySubject => ({
  roles: ['user'],
  elevated: false,
  groups: [],
  registered: [],
  defaultMethodId: null,
  hasActiveTap: false,
  exceptions: [],
  snoozes: [],
  ...overrides,
});

/** A global administrator (an elevated role). */
export const admin = (overrides: Partial<PolicySubject> = {}) => user({ roles: ['user', 'global-admin'], elevated: true, ...overrides });
