/**
 * The demo's registration of the sample application (examples/mail-app, issue #13 point 7): a first-party
 * confidential client `mail-app` at http://localhost:8400. Its secret never reaches a log or the server's
 * output: it is handed to the mail app in a file of the demo's data directory (mode 0600), which only the demo
 * writes and the mail app only reads (docs/oidc.md#the-sample-application).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AppContext } from './context.js';
import { addClient, listClients, rotateClientSecret } from './oidc/clients.js';
import { issuerFor } from './oidc/issuer.js';

export const MAIL_APP_KEY = 'mail-app';
export const MAIL_APP_NAME = 'Mail';
export const MAIL_APP_URL = 'http://localhost:8400';
/** In the data directory (PORTCULLIS_DATA_DIR), beside the demo's SQLite database and generated secret. */
export const MAIL_APP_CLIENT_FILE = 'mail-app-client.json';

/** What the file holds (JSON). */
export interface MailAppClientFile {
  issuer: string;
  client_id: string;
  client_secret: string;
}

export const mailAppClientFile = (dataDir: string): string => path.join(dataDir, MAIL_APP_CLIENT_FILE);

async function readClientFile(file: string): Promise<MailAppClientFile | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as MailAppClientFile;
  } catch {
    return null;
  }
}

/** Written whole, then renamed into place: a reader never sees half a file, and the mode is 0600 from the start. */
async function writeClientFile(file: string, content: MailAppClientFile): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'w' });
  await rename(temporary, file);
}

export interface MailAppRegistration {
  clientId: string;
  /** What happened this time: registered, a new secret written (the file was missing or stale), or nothing. */
  outcome: 'registered' | 'secret-rotated' | 'kept';
  file: string;
}

/**
 * Registers the mail app once. Run again, it keeps the client and its secret; when the file is missing (or names
 * another client or issuer), the secret is rotated and the file written again, since a sealed secret is never
 * read back out for anyone but oidc-provider.
 */
export async function ensureMailAppClient(ctx: AppContext, url = MAIL_APP_URL): Promise<MailAppRegistration> {
  const actor = { kind: 'system' } as const;
  const file = mailAppClientFile(ctx.config.dataDir);
  const issuer = issuerFor(ctx.config.publicUrl);
  const existing = (await listClients(ctx)).find((client) => client.key === MAIL_APP_KEY);
  if (!existing) {
    const { client, secret } = await addClient(
      ctx,
      {
        name: MAIL_APP_NAME,
        key: MAIL_APP_KEY,
        redirectUris: [`${url}/callback`],
        postLogoutRedirectUris: [`${url}/`],
        backChannelLogoutUri: `${url}/backchannel-logout`,
        confidential: true,
        firstParty: true,
        service: false,
        scopes: [],
      },
      actor,
    );
    await writeClientFile(file, { issuer, client_id: client.clientId, client_secret: secret! });
    return { clientId: client.clientId, outcome: 'registered', file };
  }
  const held = await readClientFile(file);
  if (held && held.client_id === existing.clientId && held.issuer === issuer && held.client_secret) return { clientId: existing.clientId, outcome: 'kept', file };
  const { secret } = await rotateClientSecret(ctx, existing.clientId, actor);
  await writeClientFile(file, { issuer, client_id: existing.clientId, client_secret: secret });
  return { clientId: existing.clientId, outcome: 'secret-rotated', file };
}
