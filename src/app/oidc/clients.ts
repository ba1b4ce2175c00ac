/**
 * Registered OpenID Connect clients (docs/oidc.md#clients, issue #13): what `portcullis client …` adds,
 * lists, shows, removes and re-keys, and what oidc-provider reads through its adapter's Client model.
 *
 * Three kinds:
 * - **confidential**: signs users in (authorization code + refresh token) and authenticates with a
 *   256-bit random secret, `client_secret_basic` (RFC 6749 §2.3.1: the method every server must support);
 * - **public**: signs users in, has no secret (`none`), and is held to PKCE instead (RFC 7636; required
 *   for every client here);
 * - **service**: no user, no redirect URI: the client credentials grant (RFC 6749 §4.4) alone, with a
 *   secret, for the scopes it was registered with.
 *
 * The secret is shown once, by `add` and `rotate-secret`. oidc-provider compares the presented
 * `client_secret` with the registered one itself, so it is stored sealed (AES-256-GCM under the
 * key-encryption key, bound to `oidc-client-secret:<client_id>`), not hashed, and opened only when
 * oidc-provider loads the client.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Actor } from '../../core/audit.js';
import { hasForbiddenNameCharacters } from '../../core/directory.js';
import { clientKeyFromName, isClientKey, uniqueClientKey } from '../../core/oidc/client-key.js';
import { namedApplications } from '../../core/policy/applications.js';
import { compilePolicy } from '../../core/policy/document.js';
import { openText, sealText } from '../../crypto/seal.js';
import { randomToken, secureRandomBytes } from '../../crypto/tokens.js';
import { createOidcClientRepository, type OidcClientRow } from '../../store/repositories/oidc-clients.js';
import type { AppContext } from '../context.js';
import { readPolicyText } from '../policy.js';

export type ClientKind = OidcClientRow['kind'];

export interface ClientInput {
  name: string;
  /** The policy key (`client:KEY`); by default the name, slugified. */
  key?: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backChannelLogoutUri?: string;
  confidential: boolean;
  firstParty: boolean;
  service: boolean;
  /** Service clients: the scopes they may ask for. */
  scopes: string[];
  /** How its ID tokens are signed: RS256 (the default every client accepts) or ES256. */
  idTokenAlg?: string;
}

/** The ID token signing algorithms a client may ask for: the provider's keys (src/app/oidc/signing-keys.ts). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'ES256'] as const;

export interface ClientInfo {
  clientId: string;
  name: string;
  /** What a policy requirement names it by: `client:KEY` (docs/policy.md#applications). */
  key: string;
  kind: ClientKind;
  firstParty: boolean;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backChannelLogoutUri: string | null;
  grantTypes: string[];
  tokenEndpointAuthMethod: 'client_secret_basic' | 'none';
  scopes: string[];
  idTokenAlg: string;
  createdAt: Date;
  secretCreatedAt: Date | null;
}

/** A value a client cannot be registered with; `option` names the command-line option it came from. */
export class ClientInputError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'ClientInputError';
  }
}

export class UnknownClientError extends Error {
  constructor(readonly clientId: string) {
    super(`There is no client ${clientId}`);
    this.name = 'UnknownClientError';
  }
}

/** The policy in force names the client (`client:KEY`): removing it would leave a requirement naming nothing. */
export class ClientInPolicyError extends Error {
  constructor(
    readonly clientId: string,
    readonly key: string,
  ) {
    super(`The policy in force names client:${key} (client ${clientId}); change the policy first (\`portcullis policy apply\`), then remove the client`);
    this.name = 'ClientInPolicyError';
  }
}

/** A public client has no secret to rotate. */
export class NoClientSecretError extends Error {
  constructor(readonly clientId: string) {
    super(`Client ${clientId} is public: it has no secret to rotate`);
    this.name = 'NoClientSecretError';
  }
}

type ClientContext = Pick<AppContext, 'store' | 'keys' | 'clock'>;

const SECRET_BYTES = 32; // 256 bits, from the CSPRNG.
// 128 bits, hex: URL-safe, and never starting with '-', which a command line would take for an option.
const CLIENT_ID_BYTES = 16;
const NAME_MAX = 120;
const sealingContext = (clientId: string): string => `oidc-client-secret:${clientId}`;
const repository = (ctx: ClientContext) => createOidcClientRepository(ctx.store.database.db);

/** RFC 8252 §7.3 (loopback) and §8.3: http only on this machine, for native apps and development. */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * A redirect, post-logout or back-channel logout URI: absolute; https, or http on a loopback host;
 * no fragment (RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component"); no
 * credentials. oidc-provider then matches redirect URIs exactly, as OpenID Connect Core §3.1.2.1 asks
 * ("MUST exactly match"), which is its default and is kept.
 */
export function checkClientUri(option: string, value: string): string {
  if (hasForbiddenNameCharacters(value) || /\s/.test(value)) throw new ClientInputError(option, 'a URI cannot hold spaces or control characters');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ClientInputError(option, `${value} is not an absolute URI (it needs https://…)`);
  }
  if (value.includes('#')) throw new ClientInputError(option, `${value} has a fragment (#…); RFC 6749 §3.1.2 forbids one`);
  if (url.username || url.password) throw new ClientInputError(option, `${value} holds a user name or password`);
  if (url.protocol === 'http:') {
    if (!LOOPBACK_HOSTS.has(url.hostname)) {
      throw new ClientInputError(option, `${value} must use https (http is allowed only for localhost and 127.0.0.1, RFC 8252 §7.3)`);
    }
  } else if (url.protocol !== 'https:') {
    throw new ClientInputError(option, `${value} must use https`);
  }
  return value;
}

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Checks the input and turns it into the row to store (without its secret). */
export function describeNewClient(input: ClientInput): Omit<OidcClientRow, 'client_id' | 'secret_sealed' | 'secret_created_at' | 'created_at'> {
  const name = input.name.trim();
  if (!name.length || name.length > NAME_MAX) throw new ClientInputError('--name', `a client's name is 1 to ${NAME_MAX} characters`);
  if (hasForbiddenNameCharacters(name)) throw new ClientInputError('--name', 'a name cannot hold control characters (such as a newline) or direction overrides');
  const key = input.key === undefined ? clientKeyFromName(name) : input.key.trim();
  if (!isClientKey(key)) throw new ClientInputError('--key', `${JSON.stringify(key)} is not a key: lower-case letters, digits and dashes, 1 to 64, starting with a letter or digit`);
  const redirectUris = input.redirectUris.map((uri) => checkClientUri('--redirect-uri', uri));
  const postLogoutRedirectUris = input.postLogoutRedirectUris.map((uri) => checkClientUri('--post-logout-redirect-uri', uri));
  const backChannelLogoutUri = input.backChannelLogoutUri === undefined ? null : checkClientUri('--back-channel-logout-uri', input.backChannelLogoutUri);
  const scopes = [...new Set(input.scopes.flatMap((scope) => scope.split(' ')).filter(Boolean))];
  for (const scope of scopes) if (!SCOPE_TOKEN.test(scope)) throw new ClientInputError('--scope', `${JSON.stringify(scope)} is not a scope (RFC 6749 §3.3: printable ASCII, no quote or backslash)`);

  const idTokenAlg = input.idTokenAlg ?? 'RS256';
  if (!(ID_TOKEN_ALGORITHMS as readonly string[]).includes(idTokenAlg)) throw new ClientInputError('--id-token-alg', `${JSON.stringify(idTokenAlg)} is not one of ${ID_TOKEN_ALGORITHMS.join(', ')}`);
  if (input.service) {
    if (input.idTokenAlg !== undefined) throw new ClientInputError('--id-token-alg', 'a --service client gets no ID tokens');
    // A service acts for itself: there is no user to send back, sign out or ask for consent.
    if (redirectUris.length) throw new ClientInputError('--redirect-uri', 'a --service client has no redirect URI: it uses the client credentials grant only');
    if (postLogoutRedirectUris.length) throw new ClientInputError('--post-logout-redirect-uri', 'a --service client signs no user in, so has nowhere to send one after sign-out');
    if (backChannelLogoutUri) throw new ClientInputError('--back-channel-logout-uri', 'a --service client signs no user in, so has no sessions to end');
    if (input.firstParty) throw new ClientInputError('--first-party', 'a --service client is never asked for consent, so --first-party means nothing for it');
    return {
      name,
      key,
      kind: 'service',
      first_party: 0,
      redirect_uris: '[]',
      post_logout_redirect_uris: '[]',
      grant_types: JSON.stringify(['client_credentials']),
      backchannel_logout_uri: null,
      scope: scopes.join(' '),
      id_token_alg: 'RS256',
    };
  }
  if (!redirectUris.length) throw new ClientInputError('--redirect-uri', 'a client that signs users in needs at least one (or use --service for the client credentials grant)');
  if (scopes.length) throw new ClientInputError('--scope', 'only --service clients are registered with scopes; the scopes of sign-ins come with the claims (a later step)');
  return {
    name,
    key,
    kind: input.confidential ? 'confidential' : 'public',
    first_party: input.firstParty ? 1 : 0,
    redirect_uris: JSON.stringify([...new Set(redirectUris)]),
    post_logout_redirect_uris: JSON.stringify([...new Set(postLogoutRedirectUris)]),
    grant_types: JSON.stringify(['authorization_code', 'refresh_token']),
    backchannel_logout_uri: backChannelLogoutUri,
    scope: null,
    id_token_alg: idTokenAlg,
  };
}

const strings = (json: string): string[] => JSON.parse(json) as string[];

function toInfo(row: OidcClientRow): ClientInfo {
  return {
    clientId: row.client_id,
    name: row.name,
    key: row.key,
    kind: row.kind,
    firstParty: row.first_party === 1,
    redirectUris: strings(row.redirect_uris),
    postLogoutRedirectUris: strings(row.post_logout_redirect_uris),
    backChannelLogoutUri: row.backchannel_logout_uri,
    grantTypes: strings(row.grant_types),
    tokenEndpointAuthMethod: row.kind === 'public' ? 'none' : 'client_secret_basic',
    scopes: row.scope ? row.scope.split(' ') : [],
    idTokenAlg: row.id_token_alg,
    createdAt: new Date(row.created_at),
    secretCreatedAt: row.secret_created_at ? new Date(row.secret_created_at) : null,
  };
}

async function audit(ctx: ClientContext, type: 'oidc.client-added' | 'oidc.client-removed' | 'oidc.client-secret-rotated', actor: Actor, clientId: string, name: string): Promise<void> {
  await ctx.store.audit.append({ type, at: ctx.clock(), actor, subjectUserId: null, ip: null, details: { client_id: clientId, name } });
}

/** Registers a client. The secret (confidential and service clients) is returned here and never again. */
export async function addClient(ctx: ClientContext, input: ClientInput, actor: Actor): Promise<{ client: ClientInfo; secret: string | null }> {
  const described = describeNewClient(input);
  const clientId = secureRandomBytes(CLIENT_ID_BYTES).toString('hex');
  const now = ctx.clock().toISOString();
  const secret = described.kind === 'public' ? null : randomToken(SECRET_BYTES);
  const row: OidcClientRow = {
    ...described,
    client_id: clientId,
    secret_sealed: secret === null ? null : sealText(ctx.keys.keyEncryption, secret, sealingContext(clientId)),
    secret_created_at: secret === null ? null : now,
    created_at: now,
  };
  // A key given with --key is the operator's: taken, it is refused. One made from the name is made unique
  // (-2, -3…), as migration 0012 did for the clients registered before keys, so that two clients may share
  // a name; `add` prints the key it chose.
  if (input.key === undefined) row.key = uniqueClientKey(row.key, new Set(await repository(ctx).keysLike(row.key)));
  const keyTaken = async () => {
    const other = await repository(ctx).findByKey(row.key);
    return other ? new ClientInputError('--key', `the key ${row.key} is taken by client ${other.name} (${other.client_id}); give this one another with --key`) : null;
  };
  const taken = await keyTaken();
  if (taken) throw taken;
  try {
    await repository(ctx).insert(row);
  } catch (error) {
    // Another `client add` with the same key in between: the unique index refused this one.
    throw (await keyTaken()) ?? error;
  }
  await audit(ctx, 'oidc.client-added', actor, clientId, row.name);
  return { client: toInfo(row), secret };
}

export async function listClients(ctx: ClientContext): Promise<ClientInfo[]> {
  return (await repository(ctx).list()).map(toInfo);
}

export async function showClient(ctx: ClientContext, clientId: string): Promise<ClientInfo> {
  const row = await repository(ctx).find(clientId);
  if (!row) throw new UnknownClientError(clientId);
  return toInfo(row);
}

/**
 * Removes a client: oidc-provider reads clients through the adapter on every request (it caches a
 * client only by the hash of what the adapter returned), so the next token request with it fails.
 * Tokens it holds already stay valid until they expire or are revoked.
 */
export async function removeClient(ctx: ClientContext, clientId: string, actor: Actor): Promise<ClientInfo> {
  const found = await repository(ctx).find(clientId);
  if (found && (await policyInForceNames(ctx, found.key))) throw new ClientInPolicyError(clientId, found.key);
  const row = found;
  if (!row || !(await repository(ctx).remove(clientId))) throw new UnknownClientError(clientId);
  await audit(ctx, 'oidc.client-removed', actor, clientId, row.name);
  return toInfo(row);
}

/** Whether the policy version in force has a requirement targeting `client:KEY` (read afresh, not cached). */
async function policyInForceNames(ctx: ClientContext, key: string): Promise<boolean> {
  const latest = await ctx.store.policy.latest();
  if (!latest) return false;
  const compiled = compilePolicy(readPolicyText(latest.document));
  return compiled.ok && namedApplications(compiled.policy).includes(key);
}

/** A new secret for a confidential or service client; the old one stops working at once. */
export async function rotateClientSecret(ctx: ClientContext, clientId: string, actor: Actor): Promise<{ client: ClientInfo; secret: string }> {
  const row = await repository(ctx).find(clientId);
  if (!row) throw new UnknownClientError(clientId);
  if (row.kind === 'public') throw new NoClientSecretError(clientId);
  const secret = randomToken(SECRET_BYTES);
  const now = ctx.clock().toISOString();
  if (!(await repository(ctx).replaceSecret(clientId, sealText(ctx.keys.keyEncryption, secret, sealingContext(clientId)), now))) throw new UnknownClientError(clientId);
  await audit(ctx, 'oidc.client-secret-rotated', actor, clientId, row.name);
  return { client: toInfo({ ...row, secret_created_at: now }), secret };
}

/** The client metadata oidc-provider validates and serves (OpenID Connect Dynamic Client Registration 1.0 §2 names). */
export function providerMetadata(row: OidcClientRow, secret: string | null): AdapterPayload {
  const info = toInfo(row);
  return {
    client_id: info.clientId,
    client_name: info.name,
    ...(secret === null ? {} : { client_secret: secret }),
    token_endpoint_auth_method: info.tokenEndpointAuthMethod,
    grant_types: info.grantTypes,
    response_types: info.kind === 'service' ? [] : ['code'],
    redirect_uris: info.redirectUris,
    // Not RFC 7591's `scope`: oidc-provider allows there only its own (OpenID) scopes. Its resource server info
    // reads this one (src/server/oidc/provider.ts) and gives a service token only these scopes.
    ...(info.kind === 'service' ? { service_scope: info.scopes.join(' ') } : {}),
    ...(info.postLogoutRedirectUris.length ? { post_logout_redirect_uris: info.postLogoutRedirectUris } : {}),
    ...(info.backChannelLogoutUri ? { backchannel_logout_uri: info.backChannelLogoutUri } : {}),
    first_party: info.firstParty,
    // auth_time in every ID token (OpenID Connect Core 1.0 §2), not only when max_age is asked: applications
    // may judge the sign-in's age themselves.
    ...(info.kind === 'service' ? {} : { require_auth_time: true }),
    ...(info.kind === 'service' ? {} : { id_token_signed_response_alg: info.idTokenAlg as (typeof ID_TOKEN_ALGORITHMS)[number] }),
  };
}

/**
 * oidc-provider's `Client` model, served from `oidc_clients` (the adapter option is per model; every
 * other model stays in src/store/oidc-adapter.ts). Clients are registered with the CLI only (dynamic
 * registration is off), so oidc-provider never writes them.
 */
export function createClientAdapter(ctx: ClientContext): Adapter {
  const refuse = async (): Promise<never> => {
    throw new Error('OpenID Connect clients are registered with `portcullis client add`, not by the provider');
  };
  return {
    async find(id: string): Promise<AdapterPayload | undefined> {
      const row = await repository(ctx).find(id);
      if (!row) return undefined;
      const secret = row.secret_sealed === null ? null : openText(ctx.keys.keyEncryption, row.secret_sealed, sealingContext(row.client_id));
      return providerMetadata(row, secret);
    },
    upsert: refuse,
    destroy: refuse,
    consume: refuse,
    revokeByGrantId: refuse,
    findByUid: async () => undefined,
    findByUserCode: async () => undefined,
  };
}
