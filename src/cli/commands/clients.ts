/** `portcullis client`: registered OpenID Connect clients (docs/oidc.md#clients). */
import type { AppContext } from '../../app/context.js';
import {
  addClient,
  ClientInPolicyError,
  ClientInputError,
  listClients,
  NoClientSecretError,
  removeClient,
  rotateClientSecret,
  showClient,
  UnknownClientError,
  type ClientInfo,
} from '../../app/oidc/clients.js';
import { CliExit, cliActor } from '../runtime.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

const asJson = (client: ClientInfo) => ({
  clientId: client.clientId,
  name: client.name,
  key: client.key,
  kind: client.kind,
  firstParty: client.firstParty,
  tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
  grantTypes: client.grantTypes,
  redirectUris: client.redirectUris,
  postLogoutRedirectUris: client.postLogoutRedirectUris,
  backChannelLogoutUri: client.backChannelLogoutUri,
  scopes: client.scopes,
  ...(client.kind === 'service' ? {} : { idTokenSignedResponseAlg: client.idTokenAlg }),
  createdAt: client.createdAt.toISOString(),
  secretCreatedAt: client.secretCreatedAt?.toISOString() ?? null,
});

/** A bad value is a usage mistake (exit 2), named by its option; an unknown client is exit 1. */
async function translate<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ClientInputError) throw new CliExit(2, error.message);
    if (error instanceof UnknownClientError || error instanceof NoClientSecretError || error instanceof ClientInPolicyError) throw new CliExit(1, error.message);
    throw error;
  }
}

const SECRET_WARNING = 'Keep it now: it is shown only this once (`client rotate-secret` makes a new one).';

export interface ClientAddOptions {
  name: string;
  key?: string;
  redirectUri: string[];
  postLogoutRedirectUri: string[];
  backChannelLogoutUri?: string;
  confidential?: boolean;
  firstParty?: boolean;
  service?: boolean;
  scope: string[];
  idTokenAlg?: string;
  json?: boolean;
}

export async function clientAdd(ctx: AppContext, options: ClientAddOptions): Promise<void> {
  const { client, secret } = await translate(() =>
    addClient(
      ctx,
      {
        name: options.name,
        ...(options.key === undefined ? {} : { key: options.key }),
        redirectUris: options.redirectUri,
        postLogoutRedirectUris: options.postLogoutRedirectUri,
        backChannelLogoutUri: options.backChannelLogoutUri,
        confidential: options.confidential === true || options.service === true,
        firstParty: options.firstParty === true,
        service: options.service === true,
        scopes: options.scope,
        ...(options.idTokenAlg === undefined ? {} : { idTokenAlg: options.idTokenAlg }),
      },
      cliActor(),
    ),
  );
  if (options.json) return out(JSON.stringify({ ...asJson(client), clientSecret: secret }, null, 2));
  out(`Added ${client.kind} client ${client.name}.`);
  out(`Client ID: ${client.clientId}`);
  out(`Policy key: ${client.key} (a policy requirement names it client:${client.key})`);
  if (secret) {
    out(`Client secret: ${secret}`);
    out(SECRET_WARNING);
  } else {
    out('It is public: no secret; it must use PKCE (S256).');
  }
}

export async function clientList(ctx: AppContext, options: { json?: boolean }): Promise<void> {
  const clients = await listClients(ctx);
  if (options.json) return out(JSON.stringify(clients.map(asJson), null, 2));
  if (!clients.length) return out('There are no clients yet. Add one with `portcullis client add`.');
  out(
    table([
      ['CLIENT ID', 'KEY', 'NAME', 'KIND', 'FIRST PARTY', 'GRANT TYPES', 'CREATED'],
      ...clients.map((c) => [c.clientId, c.key, c.name, c.kind, c.firstParty ? 'yes' : 'no', c.grantTypes.join(' '), c.createdAt.toISOString()]),
    ]),
  );
}

export async function clientShow(ctx: AppContext, clientId: string, options: { json?: boolean }): Promise<void> {
  const client = await translate(() => showClient(ctx, clientId));
  if (options.json) return out(JSON.stringify(asJson(client), null, 2));
  const rows: [string, string][] = [
    ['Client ID', client.clientId],
    ['Name', client.name],
    ['Policy key', `${client.key} (client:${client.key} in the policy)`],
    ['Kind', client.kind],
    ['First party', client.firstParty ? 'yes (consent is not asked)' : 'no (consent is asked)'],
    ['Authentication', client.tokenEndpointAuthMethod],
    ['Grant types', client.grantTypes.join(', ')],
    ['Redirect URIs', client.redirectUris.join(', ') || '-'],
    ['Post-logout redirect URIs', client.postLogoutRedirectUris.join(', ') || '-'],
    ['Back-channel logout URI', client.backChannelLogoutUri ?? '-'],
    ['Scopes', client.kind === 'service' ? client.scopes.join(' ') || '(none)' : '-'],
    ['ID tokens signed with', client.kind === 'service' ? '-' : client.idTokenAlg],
    ['Created', client.createdAt.toISOString()],
    ['Secret made', client.secretCreatedAt?.toISOString() ?? '-'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  out(rows.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${value}`).join('\n'));
}

export async function clientRemove(ctx: AppContext, clientId: string): Promise<void> {
  const client = await translate(() => removeClient(ctx, clientId, cliActor()));
  out(`Removed client ${client.name} (${client.clientId}). Tokens it holds stay valid until they expire.`);
}

export async function clientRotateSecret(ctx: AppContext, clientId: string, options: { json?: boolean }): Promise<void> {
  const { client, secret } = await translate(() => rotateClientSecret(ctx, clientId, cliActor()));
  if (options.json) return out(JSON.stringify({ clientId: client.clientId, clientSecret: secret, secretCreatedAt: client.secretCreatedAt?.toISOString() ?? null }, null, 2));
  out(`New secret for ${client.name} (${client.clientId}); the old one no longer works.`);
  out(`Client secret: ${secret}`);
  out(SECRET_WARNING);
}
