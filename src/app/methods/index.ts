/** The registry of method strategies, by kind. Routes look methods up here; none is special-cased. */
import type { SecondFactorKind } from '../../core/methods/registry.js';
import type { MethodRow } from '../../store/schema.js';
import { smsStrategy, voiceStrategy } from './phone.js';
import { pushStrategy } from './push.js';
import { tapStrategy } from '../tap.js';
import type { MethodStrategy } from './strategy.js';
import { totpStrategy } from './totp.js';

export const strategies: Partial<Record<SecondFactorKind, MethodStrategy>> = {
  totp: totpStrategy,
  sms: smsStrategy,
  voice: voiceStrategy,
  push: pushStrategy,
  tap: tapStrategy,
};

export function strategyFor(kind: string): MethodStrategy | undefined {
  return strategies[kind as SecondFactorKind];
}

export function strategyOf(method: MethodRow): MethodStrategy {
  const strategy = strategyFor(method.kind);
  if (!strategy) throw new Error(`no strategy for method kind ${method.kind}`);
  return strategy;
}
