/** `portcullis token`: personal API tokens for the admin API (docs/admin-api.md). The token is printed once. */
import type { AppContext } from '../../app/context.js';
import { ADMIN_TOKEN_SCOPES, createAdminToken, listAdminTokens, revokeAdminToken } from '../../app/admin-api.js';
import { cliActor } from '../runtime.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

export interface TokenAddOptions {
  user: string;
  name: string;
  scope: string[];
  days: string;
  json?: boolean;
}

export async function tokenAdd(ctx: AppContext, options: TokenAddOptions): Promise<void> {
  const scopes = options.scope.length ? options.scope.flatMap((s) => s.split(',').map((x) => x.trim()).filter(Boolean)) : ['admin:read'];
  const created = await createAdminToken(ctx, options.user, { name: options.name, scopes, days: Number(options.days) }, cliActor());
  if (options.json) return out(JSON.stringify({ id: created.id, token: created.token, scopes: created.scopes, expiresAt: created.expiresAt.toISOString() }, null, 2));
  out(created.token);
  process.stderr.write(`Token ${created.id} for ${options.user} (${created.scopes.join(' ')}), until ${created.expiresAt.toISOString()}. It is shown only now: keep it secret.\n`);
}

export async function tokenList(ctx: AppContext, options: { json?: boolean }): Promise<void> {
  const tokens = await listAdminTokens(ctx);
  if (options.json) return out(JSON.stringify(tokens, null, 2));
  if (!tokens.length) return out('No API tokens.');
  for (const t of tokens) out(`${t.id}  ${t.email}  ${t.name}  ${t.scopes}  until ${t.expires_at}${t.revoked_at ? `  revoked ${t.revoked_at}` : ''}${t.last_used_at ? `  last used ${t.last_used_at}` : ''}`);
}

export async function tokenRevoke(ctx: AppContext, id: string): Promise<void> {
  await revokeAdminToken(ctx, id, cliActor());
  out(`Token ${id} revoked.`);
}

export const TOKEN_SCOPES_TEXT = ADMIN_TOKEN_SCOPES.join(', ');
