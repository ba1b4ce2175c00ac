/**
 * The token endpoint's writes in one transaction (src/store/write-unit.ts): everything a token request
 * saves — the consumed code or refresh token, the new tokens, the audit event — is written together after
 * oidc-provider has built its answer and before the answer is sent. If the writes fail because another
 * request consumed the same code or refresh token first (the compare-and-set lost), nothing of this
 * request is kept and the client is told `invalid_grant`, as oidc-provider would have said (RFC 6749 §5.2);
 * the tokens built for it were never stored, so they are worth nothing.
 */
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { AppContext } from '../../app/context.js';

export function tokenWritesInOneTransaction(provider: Provider, ctx: AppContext): void {
  provider.use(async (koa, next) => {
    if (koa.method !== 'POST' || koa.path !== '/token') return next();
    try {
      await ctx.store.inOneTransaction(next);
    } catch (error) {
      if (!(error instanceof errors.InvalidGrant)) throw error;
      // Counted and audited as every refusal is (./events.ts).
      provider.emit('grant.error', koa, Object.assign(error, { error_detail: 'consumed by another request at the same time' }));
      koa.status = 400;
      koa.set('cache-control', 'no-store');
      koa.body = { error: 'invalid_grant', error_description: 'grant request is invalid' };
    }
  });
}
