/**
 * The CLI authenticator's store file: the accounts this computer has paired (with each one's private
 * signing key) and the code vault's secrets. Like an SSH private key it is readable by its owner only:
 * written 0600 in a 0700 folder, replaced atomically (write a temporary file, then rename), and refused
 * when anyone else could read it.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkOtpAccount, isPrivateJwk, type PrivateJwk, type VaultEntry } from '../../authenticator/index.js';

export const STORE_FORMAT = 'portcullis-authenticator';
export const STORE_VERSION = 1;

export interface StoredAccount {
  /** The server's origin, from the pairing link: where requests go. */
  origin: string;
  deviceId: string;
  email: string;
  organisation: string;
  /** What the server calls itself (its ORGANISATION_NAME). */
  serverName: string;
  /** The name given at pairing, as Security info shows it. */
  deviceName: string;
  pairedAt: string;
  /** The device's ECDSA P-256 private key (RFC 7517 JWK). */
  privateKey: PrivateJwk;
}

export interface StoreData {
  format: typeof STORE_FORMAT;
  version: typeof STORE_VERSION;
  accounts: StoredAccount[];
  codes: VaultEntry[];
}

/** A store file that cannot or must not be used; the message says what to do. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export function emptyStore(): StoreData {
  return { format: STORE_FORMAT, version: STORE_VERSION, accounts: [], codes: [] };
}

/**
 * `PORTCULLIS_AUTHENTICATOR_STORE`, else `$XDG_CONFIG_HOME/portcullis/authenticator.json`, else
 * `~/.config/portcullis/authenticator.json` (the XDG Base Directory default).
 */
export function defaultStorePath(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  if (env.PORTCULLIS_AUTHENTICATOR_STORE) return path.resolve(env.PORTCULLIS_AUTHENTICATOR_STORE);
  const configHome = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(home, '.config');
  return path.join(configHome, 'portcullis', 'authenticator.json');
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * Refuses a store file that another user could read or change, as ssh refuses a private key with
 * "permissions are too open". Windows has no such mode bits, so nothing is checked there.
 */
export function checkStorePermissions(file: string, stats: Pick<Stats, 'mode' | 'uid'>, platform: NodeJS.Platform = process.platform, uid: number | undefined = process.getuid?.()): void {
  if (platform === 'win32') return;
  if (uid !== undefined && stats.uid !== uid) {
    throw new StoreError(`The authenticator store ${file} belongs to another user. Use your own (--store FILE).`);
  }
  if ((stats.mode & 0o077) !== 0) {
    throw new StoreError(
      `Permissions ${octal(stats.mode)} for the authenticator store ${file} are too open: it holds private keys, so only you may read it. Run: chmod 600 '${file}'`,
    );
  }
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function parseAccount(value: unknown, index: number, file: string): StoredAccount {
  const a = value as Partial<Record<keyof StoredAccount, unknown>> | null;
  if (
    typeof a !== 'object' ||
    a === null ||
    !isString(a.origin) ||
    !isString(a.deviceId) ||
    !isString(a.email) ||
    !isString(a.pairedAt) ||
    !isPrivateJwk(a.privateKey)
  ) {
    throw new StoreError(`The authenticator store ${file} is damaged (account ${index + 1}).`);
  }
  return {
    origin: a.origin,
    deviceId: a.deviceId,
    email: a.email,
    organisation: isString(a.organisation) ? a.organisation : '',
    serverName: isString(a.serverName) ? a.serverName : '',
    deviceName: isString(a.deviceName) ? a.deviceName : '',
    pairedAt: a.pairedAt,
    privateKey: a.privateKey,
  };
}

function parseCode(value: unknown, index: number, file: string): VaultEntry {
  const c = value as Partial<Record<keyof VaultEntry, unknown>> | null;
  if (typeof c !== 'object' || c === null || !isString(c.id) || !isString(c.addedAt)) throw new StoreError(`The authenticator store ${file} is damaged (code ${index + 1}).`);
  try {
    return { id: c.id, addedAt: c.addedAt, ...checkOtpAccount(c) };
  } catch {
    throw new StoreError(`The authenticator store ${file} is damaged (code ${index + 1}).`);
  }
}

/** Reads the store; a file that does not exist yet is an empty store (nothing is created until a write). */
export async function readStore(file: string): Promise<StoreData> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return emptyStore();
    if (code === 'EACCES') throw new StoreError(`Cannot read the authenticator store ${file}: permission denied.`);
    if (code === 'EISDIR') throw new StoreError(`The authenticator store ${file} is a folder, not a file.`);
    throw error;
  }
  let text: string;
  try {
    // The checks are on the file actually opened, so it cannot be swapped between check and read.
    const stats = await handle.stat();
    if (!stats.isFile()) throw new StoreError(`The authenticator store ${file} is not a regular file.`);
    checkStorePermissions(file, stats);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StoreError(`The authenticator store ${file} is not valid JSON. Fix or move it.`);
  }
  const data = value as Partial<StoreData> | null;
  if (typeof data !== 'object' || data === null || data.format !== STORE_FORMAT) throw new StoreError(`${file} is not a Portcullis authenticator store.`);
  if (data.version !== STORE_VERSION) throw new StoreError(`The authenticator store ${file} is version ${String(data.version)}; this portcullis reads version ${STORE_VERSION}. Upgrade portcullis.`);
  if (!Array.isArray(data.accounts) || !Array.isArray(data.codes)) throw new StoreError(`The authenticator store ${file} is damaged.`);
  return {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    accounts: data.accounts.map((a, i) => parseAccount(a, i, file)),
    codes: data.codes.map((c, i) => parseCode(c, i, file)),
  };
}

/**
 * Writes the store: its folder is made 0700 if missing; the data goes to a new 0600 file beside the
 * store (O_EXCL, so nothing else can have it open), is flushed, then renamed over the store, so a
 * reader sees the old file or the new one, never half of one.
 */
export async function writeStore(file: string, data: StoreData): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    // The process umask cannot widen 0600, but set it exactly in case the umask is unusual.
    if (process.platform !== 'win32') await handle.chmod(0o600);
    await handle.writeFile(`${JSON.stringify(data, null, 2)}\n`, 'utf8');
    await handle.sync();
    await handle.close();
    await fs.rename(temporary, file);
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.rm(temporary, { force: true });
    throw error;
  }
}

/** Reads, changes and writes the store; the change returns what the caller wants back. */
export async function updateStore<T>(file: string, change: (data: StoreData) => T | Promise<T>): Promise<T> {
  const data = await readStore(file);
  const result = await change(data);
  await writeStore(file, data);
  return result;
}
