/** `portcullis keys`: the OpenID Connect provider's signing keys (docs/oidc.md#signing-keys). */
import type { AppContext } from '../../app/context.js';
import { listSigningKeys, rotateSigningKeys, type SigningKeyInfo } from '../../app/oidc/signing-keys.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

const asJson = (key: SigningKeyInfo) => ({
  kid: key.kid,
  alg: key.alg,
  state: key.state,
  createdAt: key.createdAt.toISOString(),
  retireAfter: key.retireAfter?.toISOString() ?? null,
});

export async function keysList(ctx: AppContext, options: { json?: boolean }): Promise<void> {
  const keys = await listSigningKeys(ctx);
  if (options.json) return out(JSON.stringify(keys.map(asJson), null, 2));
  if (!keys.length) return out('No signing keys yet: the server makes them on its first start (or run keys rotate).');
  out(table([['KID', 'ALG', 'STATE', 'CREATED', 'RETIRE AFTER'], ...keys.map((k) => [k.kid, k.alg, k.state, k.createdAt.toISOString(), k.retireAfter?.toISOString() ?? '-'])]));
}

export async function keysRotate(ctx: AppContext): Promise<void> {
  const current = await rotateSigningKeys(ctx);
  const previous = (await listSigningKeys(ctx)).filter((k) => k.state === 'previous');
  const until = previous.map((k) => k.retireAfter!.getTime());
  out(`New current keys: ${current.map((k) => `${k.kid} (${k.alg})`).join(', ')}.`);
  if (until.length) out(`The keys they replace stay in the JWKS until ${new Date(Math.max(...until)).toISOString()}, then retire. Running servers pick the new keys up within a minute.`);
}
