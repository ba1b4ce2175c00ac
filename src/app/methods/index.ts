/** The registry of method strategies, by kind. Routes look methods up here; none is special-cased. */
import type { MethodSummary, SecondFactorKind } from '../../core/methods/registry.js';
import type { MethodRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import { smsStrategy, voiceStrategy } from './phone.js';
import { pushStrategy } from './push.js';
import type { MethodStrategy } from './strategy.js';
import { tapStrategy } from './tap.js';
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

/** What the core needs of method rows: id, kind, and the detail pages show. */
export function summarise(rows: readonly MethodRow[]): MethodSummary[] {
  return rows.flatMap((row) => {
    const strategy = strategyFor(row.kind);
    return strategy ? [{ id: row.id, kind: strategy.definition.kind, detail: strategy.detail(row) }] : [];
  });
}

/** The user's active second methods that this build can challenge, with what pages show for them. */
export async function methodSummaries(ctx: AppContext, userId: string): Promise<MethodSummary[]> {
  return summarise(await ctx.store.methods.activeForUser(userId));
}
