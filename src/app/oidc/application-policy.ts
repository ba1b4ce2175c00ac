/**
 * The method policy at the door of one application (issue #13 point 4; docs/oidc.md#applications-in-the-policy):
 * what the requirements targeting this client (`client:KEY`) ask of this person's sign-in to it, decided by the
 * pure core (src/core/oidc/application-requirements.ts). Both the interaction and the provider's session-reuse
 * check (src/server/oidc/provider.ts) ask here, so there is one answer.
 */
import { applicationDemand, type ApplicationDemand } from '../../core/oidc/application-requirements.js';
import { raiseAskedAcr } from '../../core/oidc/acr.js';
import { hasApplicationRequirements } from '../../core/policy/applications.js';
import { createOidcClientRepository } from '../../store/repositories/oidc-clients.js';
import type { UserRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import { currentPolicy, subjectFor } from '../policy.js';

const NONE: ApplicationDemand = { acr: null, enforced: [], reportOnly: [] };

/** What the policy asks of this person signing in to this client now (nothing for an unknown client or person). */
export async function demandFor(ctx: AppContext, user: UserRow, clientId: string): Promise<ApplicationDemand> {
  const { policy } = await currentPolicy(ctx);
  if (!hasApplicationRequirements(policy)) return NONE;
  const client = await createOidcClientRepository(ctx.store.database.db).find(clientId);
  if (!client) return NONE;
  return applicationDemand(policy, await subjectFor(ctx, user), client.key, ctx.clock());
}

/**
 * The acr values the provider must see reached before it reuses a session for this client: those asked
 * (`acr_values`, an essential `acr` claim), raised to what the policy's requirements in force ask.
 */
export async function askedAcrFor(ctx: AppContext, accountId: string, clientId: string, asked: readonly string[]): Promise<string[]> {
  // The common case, on every authorization request: no requirement targets an application, no query.
  if (!hasApplicationRequirements((await currentPolicy(ctx)).policy)) return [...asked];
  const user = await ctx.store.users.findById(accountId);
  if (!user || user.status !== 'active') return [...asked];
  return raiseAskedAcr(asked, (await demandFor(ctx, user, clientId)).acr);
}
