/**
 * Housekeeping: what has expired is deleted now and then — sessions, sign-in flows, throttle counters,
 * challenges, abandoned set-ups and the provider's artefacts (docs/shared-state.md says what each is).
 */
import { deleteExpiredOidcArtefacts } from '../store/oidc-adapter.js';
import { snapshotCompliance } from './compliance.js';
import type { AppContext } from './context.js';

/** Once a day (on whichever node comes first): the compliance counts the dashboard's trend is made of. */
export async function dailyWork(ctx: AppContext): Promise<void> {
  await snapshotCompliance(ctx);
}

export async function sweepExpired(ctx: AppContext): Promise<void> {
  const now = ctx.clock();
  await Promise.all([
    ctx.store.sessions.deleteExpired(now),
    ctx.store.signInFlows.deleteExpired(now),
    ctx.throttles.deleteExpired(now),
    ctx.store.challenges.deleteExpired(now),
    ctx.store.methods.deleteStalePending(now),
    deleteExpiredOidcArtefacts(ctx.store.database.db, now),
  ]);
}
