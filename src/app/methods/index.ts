/**
 * The method units (./unit.ts), one per folder, and their strategies by kind. Routes look methods up
 * here; none is special-cased. The kinds themselves are listed once, in ./definitions.ts; the map below
 * is checked against that list by the compiler (a kind without a strategy does not build).
 */
import type { MethodSummary, SecondFactorKind } from '../../core/methods/registry.js';
import type { MethodRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import { passkeyUnit } from './passkey/index.js';
import { phoneUnit } from './phone/index.js';
import { pushUnit } from './push/index.js';
import { recoveryCodeUnit } from './recovery-code/index.js';
import type { MethodStrategy } from './strategy.js';
import { tapUnit } from './tap/index.js';
import { totpUnit } from './totp/index.js';
import type { MethodUnit } from './unit.js';

/** In the order "Add sign-in method" offers them: strongest first, the backup last. */
export const units: readonly MethodUnit[] = [passkeyUnit, pushUnit, totpUnit, phoneUnit, recoveryCodeUnit, tapUnit];

export const strategies = Object.fromEntries(units.flatMap((unit) => unit.strategies.map((s) => [s.definition.kind, s]))) as Record<SecondFactorKind, MethodStrategy>;

const unitOfKind = new Map<string, MethodUnit>(units.flatMap((unit) => unit.strategies.map((s) => [s.definition.kind, unit] as const)));

export function strategyFor(kind: string): MethodStrategy | undefined {
  return Object.hasOwn(strategies, kind) ? strategies[kind as SecondFactorKind] : undefined;
}

export function strategyOf(method: MethodRow): MethodStrategy {
  const strategy = strategyFor(method.kind);
  if (!strategy) throw new Error(`no strategy for method kind ${method.kind}`);
  return strategy;
}

/** The unit that provides a kind. */
export function unitOf(kind: string): MethodUnit | undefined {
  return unitOfKind.get(kind);
}

/** The unit with this slug (/security-info/add/:slug). */
export function unitBySlug(slug: string): MethodUnit | undefined {
  return units.find((unit) => unit.slug === slug);
}

/** The unit whose "Add sign-in method" choice has this value. */
export function unitByChoice(value: string): MethodUnit | undefined {
  return units.find((unit) => unit.enrolment?.value === value);
}

/** What the core needs of method rows: id, kind, and the detail pages show. */
export function summarise(rows: readonly MethodRow[]): MethodSummary[] {
  return rows.flatMap((row) => {
    const strategy = strategyFor(row.kind);
    if (!strategy) return [];
    const model = strategy.model?.(row);
    return [{ id: row.id, kind: strategy.definition.kind, detail: strategy.detail(row), ...(model ? { model } : {}) }];
  });
}

/** The user's active second methods that this build can challenge, with what pages show for them. */
export async function methodSummaries(ctx: AppContext, userId: string): Promise<MethodSummary[]> {
  return summarise(await ctx.store.methods.activeForUser(userId));
}
