/**
 * `portcullis authenticator …`: the CLI authenticator, on the same SDK as the PWA (src/authenticator).
 * It runs on a user's own computer and needs no server configuration or database; all it keeps is its
 * store file (store.ts). Each verb throws CliExit with one clear line: 1 when something was refused,
 * 2 for a usage mistake (docs/operations.md).
 */
import os from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import {
  AuthenticatorClient,
  AuthenticatorError,
  MemoryKeyStore,
  codeFor,
  exportPrivateJwk,
  exportVault,
  importPrivateJwk,
  importVault,
  isRemovalRefused,
  mergeIntoVault,
  parseOtpauthUri,
  parsePairingUrl,
  watchChallenges,
  type Challenge,
  type DeviceKeyStore,
  type DeviceInfo,
  type FetchFunction,
  type KnownChallengeStatus,
  type VaultEntry,
} from '../../authenticator/index.js';
import { CliExit } from '../runtime.js';
import { defaultStorePath, readStore, StoreError, updateStore, type StoreData, type StoredAccount } from './store.js';

/** Where a verb writes, and its clock: the terminal and the real clock, or a test's. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  now(): number;
  fetch?: FetchFunction;
  /** Ctrl-C for `watch`; a test's signal otherwise. */
  signal?: AbortSignal;
  /** For `codes export`/`import` when standard input is not a terminal. */
  readStdin?: () => Promise<string>;
}

export const terminalIo: CliIo = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  now: () => Date.now(),
};

export interface StoreOption {
  store?: string;
}

export interface AccountOption extends StoreOption {
  account?: string;
}

const PAIR_HINT = 'Pair one with `portcullis authenticator pair <link>`: the link is on Security info → Add sign-in method → Authenticator app.';

function storePath(options: StoreOption): string {
  return options.store ?? defaultStorePath();
}

async function load(options: StoreOption): Promise<{ file: string; data: StoreData }> {
  const file = storePath(options);
  try {
    return { file, data: await readStore(file) };
  } catch (error) {
    throw refused(error);
  }
}

/** Turns the SDK's and the store's errors into one line and an exit code. */
function refused(error: unknown): unknown {
  if (error instanceof StoreError) return new CliExit(1, error.message);
  if (error instanceof AuthenticatorError) return new CliExit(error.status === null && USAGE_CODES.has(error.code) ? 2 : 1, error.message);
  return error;
}

/** The SDK's codes that mean the command line itself was wrong. */
const USAGE_CODES = new Set<string>(['pairing-url-invalid', 'pairing-url-insecure', 'device-name-invalid', 'number-invalid', 'otpauth-invalid']);

function describeAccount(account: StoredAccount): string {
  return `${account.email} at ${account.origin}`;
}

/** The accounts a verb acts on: the one named by --account (email or device id), or all of them. */
function selectAccounts(data: StoreData, options: AccountOption): StoredAccount[] {
  if (data.accounts.length === 0) throw new CliExit(1, `This computer has no authenticator accounts yet. ${PAIR_HINT}`);
  if (!options.account) return data.accounts;
  const wanted = options.account.toLowerCase();
  const found = data.accounts.filter((a) => a.email.toLowerCase() === wanted || a.deviceId === options.account);
  if (found.length === 0) throw new CliExit(2, `No account ${options.account} in ${storePath(options)}. Accounts: ${data.accounts.map((a) => a.email).join(', ')}`);
  return found;
}

function keyStoreFor(account: StoredAccount): DeviceKeyStore {
  let pair: Promise<CryptoKeyPair> | undefined;
  return {
    load: () => (pair ??= importPrivateJwk(account.privateKey)),
    save: async () => {
      throw new Error('the store file keeps a paired account’s key');
    },
  };
}

function clientFor(account: StoredAccount, io: CliIo): AuthenticatorClient {
  return new AuthenticatorClient({ origin: account.origin, deviceId: account.deviceId, keyStore: keyStoreFor(account), fetch: io.fetch, clock: io.now });
}

/** Deletes an account, and with it its private key, from the store file (the server is not asked). */
function forgetHere(options: StoreOption, account: StoredAccount): Promise<void> {
  return updateStore(storePath(options), (store) => {
    store.accounts = store.accounts.filter((a) => !(a.deviceId === account.deviceId && a.origin === account.origin));
  });
}

/**
 * docs/device-api.md: `device-unknown` means the device was removed (or its account disabled), and the
 * app should forget the account. Its key is no use any more, so it leaves the store.
 */
async function forgetIfUnknown(error: unknown, account: StoredAccount, options: StoreOption, io: CliIo): Promise<void> {
  if (!(error instanceof AuthenticatorError) || error.code !== 'device-unknown') return;
  await forgetHere(options, account);
  io.err(`${describeAccount(account)}: the server no longer knows this computer (it was removed from Security info, or the account was turned off), so it has been forgotten here.`);
}

async function withAccount<T>(account: StoredAccount, options: StoreOption, io: CliIo, work: (client: AuthenticatorClient) => Promise<T>): Promise<T> {
  try {
    return await work(clientFor(account, io));
  } catch (error) {
    await forgetIfUnknown(error, account, options, io);
    throw refused(error);
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function secondsUntil(iso: string, now: number): number {
  return Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
}

// ── pair ────────────────────────────────────────────────────────────────────────────────────────────

export async function pairCommand(link: string, options: StoreOption & { name?: string }, io: CliIo = terminalIo): Promise<void> {
  const file = storePath(options);
  try {
    parsePairingUrl(link);
    // Read first: a store we may not use is refused before the one-time code is spent.
    await readStore(file);
  } catch (error) {
    throw refused(error);
  }
  const name = options.name ?? os.hostname().slice(0, 60);
  const keyStore = new MemoryKeyStore();
  let paired;
  try {
    // Extractable: the private key must be written to the store file.
    paired = await AuthenticatorClient.pair({ url: link, name, keyStore, extractable: true, fetch: io.fetch, clock: io.now });
  } catch (error) {
    throw refused(error);
  }
  const { client, result } = paired;
  const pair = (await keyStore.load())!;
  const account: StoredAccount = {
    origin: client.origin,
    deviceId: result.deviceId,
    email: result.account.email,
    organisation: result.account.organisation,
    serverName: result.server.name,
    deviceName: name.trim(),
    pairedAt: new Date(io.now()).toISOString(),
    privateKey: await exportPrivateJwk(pair.privateKey),
  };
  await updateStore(file, (data) => void data.accounts.push(account));
  const organisation = account.organisation ? ` (${account.organisation})` : '';
  io.out(`Paired this computer as “${account.deviceName}” with ${account.email}${organisation} at ${account.origin}.`);
  io.out('To finish, approve the test request with the number shown on the Security info page:');
  io.out(`  portcullis authenticator approve ${result.testChallengeId} --number NUMBER`);
  io.out('(`portcullis authenticator pending` lists it.)');
}

// ── pending ─────────────────────────────────────────────────────────────────────────────────────────

/** One line of `pending --json` and `watch --json`: a stable shape, documented in docs/authenticator.md. */
export interface ChallengeLine {
  id: string;
  origin: string;
  account: string;
  purpose: Challenge['purpose'];
  status: Challenge['status'];
  app: string;
  ip: string | null;
  location: string | null;
  createdAt: string;
  expiresAt: string;
  expiresInSeconds: number;
  numberLength: number;
}

function challengeLine(account: StoredAccount, challenge: Challenge, now: number): ChallengeLine {
  return {
    id: challenge.id,
    origin: account.origin,
    account: challenge.account.email,
    purpose: challenge.purpose,
    status: challenge.status,
    app: challenge.app,
    ip: challenge.ip,
    location: challenge.location,
    createdAt: challenge.createdAt,
    expiresAt: challenge.expiresAt,
    expiresInSeconds: secondsUntil(challenge.expiresAt, now),
    numberLength: challenge.numberLength,
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

async function pendingLines(accounts: StoredAccount[], options: StoreOption, io: CliIo): Promise<{ lines: ChallengeLine[]; failed: number }> {
  const lines: ChallengeLine[] = [];
  let failed = 0;
  for (const account of accounts) {
    try {
      const challenges = await withAccount(account, options, io, (client) => client.pendingChallenges());
      lines.push(...challenges.map((c) => challengeLine(account, c, io.now())));
    } catch (error) {
      if (!(error instanceof CliExit)) throw error;
      failed++;
      io.err(`${describeAccount(account)}: ${error.message}`);
    }
  }
  return { lines, failed };
}

export async function pendingCommand(options: AccountOption & { json?: boolean; wait?: string }, io: CliIo = terminalIo): Promise<void> {
  const waitSeconds = options.wait === undefined ? 0 : Number(options.wait);
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > 600) throw new CliExit(2, '--wait must be a whole number of seconds from 0 to 600');
  const { data } = await load(options);
  const accounts = selectAccounts(data, options);
  const deadline = io.now() + waitSeconds * 1000;
  let result = await pendingLines(accounts, options, io);
  // --wait: poll every 2 seconds until a request arrives (the contract's fallback when there is no push).
  while (result.lines.length === 0 && io.now() < deadline && !io.signal?.aborted) {
    await sleep(Math.min(2000, deadline - io.now()), io.signal);
    result = await pendingLines(accounts, options, io);
  }
  if (options.json) io.out(JSON.stringify({ challenges: result.lines }, null, 2));
  else if (result.lines.length === 0) {
    if (result.failed < accounts.length) io.out('No sign-in requests are waiting.');
  } else {
    io.out(
      table([
        ['ID', 'ACCOUNT', 'FOR', 'FROM', 'LOCATION', 'EXPIRES IN', 'DIGITS'],
        ...result.lines.map((l) => [l.id, l.account, l.purpose === 'test' ? `${l.app} (test request)` : l.app, l.ip ?? 'unknown', l.location ?? 'unknown', `${l.expiresInSeconds} s`, String(l.numberLength)]),
      ]),
    );
  }
  if (result.failed > 0) throw new CliExit(1, '');
}

// ── approve and deny ────────────────────────────────────────────────────────────────────────────────

/** The account holding the challenge: the only one, the one named, or the first that knows it. */
async function findChallenge(data: StoreData, id: string, options: AccountOption, io: CliIo): Promise<{ account: StoredAccount; challenge: Challenge }> {
  const accounts = selectAccounts(data, options);
  let lastError: unknown;
  for (const account of accounts) {
    try {
      return { account, challenge: await withAccount(account, options, io, (client) => client.challenge(id)) };
    } catch (error) {
      lastError = error;
      if (accounts.length === 1) throw error;
    }
  }
  throw lastError instanceof CliExit && accounts.length > 1 ? new CliExit(1, `No account on this computer has a sign-in request ${id}.`) : lastError;
}

function context(challenge: Challenge): string {
  const where = [challenge.ip, challenge.location].filter(Boolean).join(', ');
  return `${challenge.app} for ${challenge.account.email}${where ? ` from ${where}` : ''}`;
}

function checkStillPending(challenge: Challenge): void {
  if (challenge.status === 'pending') return;
  const states: Record<KnownChallengeStatus, string> = {
    pending: '',
    expired: 'This sign-in request has expired.',
    approved: 'This sign-in request has already been approved.',
    used: 'This sign-in request has already been approved.',
    denied: 'This sign-in request has already been denied.',
    reported: 'This sign-in request has already been reported.',
    'wrong-number': 'This sign-in request ended: a wrong number was entered.',
  };
  throw new CliExit(1, states[challenge.status as KnownChallengeStatus] ?? `This sign-in request is no longer waiting (${challenge.status}).`);
}

export async function approveCommand(id: string, options: AccountOption & { number: string }, io: CliIo = terminalIo): Promise<void> {
  const number = options.number.replace(/\s+/g, '');
  if (!/^\d{1,10}$/.test(number)) throw new CliExit(2, '--number must be the digits shown on the sign-in page');
  const { data } = await load(options);
  const { account, challenge } = await findChallenge(data, id, options, io);
  checkStillPending(challenge);
  // A wrong number ends the request on the server, so a number of the wrong length is caught here.
  if (number.length !== challenge.numberLength) {
    throw new CliExit(2, `The number on the sign-in page has ${challenge.numberLength} digit${challenge.numberLength === 1 ? '' : 's'}; you entered ${number.length}. Nothing was sent.`);
  }
  await withAccount(account, options, io, (client) => client.decide(id, { decision: 'approve', number }));
  if (challenge.purpose === 'test') io.out(`Approved the test request: this computer is now an authenticator for ${account.email}.`);
  else io.out(`Approved: ${context(challenge)}.`);
}

export async function denyCommand(id: string, options: AccountOption & { report?: boolean }, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  const { account, challenge } = await findChallenge(data, id, options, io);
  checkStillPending(challenge);
  const decision = options.report ? 'report' : 'deny';
  await withAccount(account, options, io, (client) => client.decide(id, { decision }));
  if (options.report) {
    io.out(`Reported as not you: ${context(challenge)}. The sign-in was refused and your organisation’s administrators have been told.`);
    io.out('Someone may know your password: change it (Security info → Change password) as soon as you can.');
  } else io.out(`Denied: ${context(challenge)}.`);
}

// ── devices ─────────────────────────────────────────────────────────────────────────────────────────

export async function devicesCommand(options: AccountOption & { json?: boolean }, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  const accounts = selectAccounts(data, options);
  const lists: Array<{ account: StoredAccount; devices: DeviceInfo[] }> = [];
  for (const account of accounts) lists.push({ account, devices: await withAccount(account, options, io, (client) => client.devices()) });
  if (options.json) {
    io.out(JSON.stringify({ devices: lists.flatMap(({ account, devices }) => devices.map((d) => ({ origin: account.origin, account: account.email, ...d }))) }, null, 2));
    return;
  }
  const day = (iso: string | null) => (iso ? iso.slice(0, 16).replace('T', ' ') : 'never');
  lists.forEach(({ account, devices }, index) => {
    if (index > 0) io.out('');
    if (accounts.length > 1) io.out(`${describeAccount(account)}:`);
    io.out(table([['NAME', 'ADDED (UTC)', 'LAST USED (UTC)', ''], ...devices.map((d) => [d.name, day(d.createdAt), day(d.lastUsedAt), d.current ? '← this computer' : ''])]));
  });
}

// ── remove ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * The server keeps a person's last method that meets the policy, as Security info does (409
 * `method-last-compliant`): say why, and offer what is in this computer's power — forgetting the
 * account here only.
 */
function removalRefused(account: StoredAccount, error: AuthenticatorError): CliExit {
  const reason = error.reason ?? 'It is your only sign-in method that meets your organisation’s rules. Add another one on Security info first.';
  return new CliExit(
    1,
    [
      `You cannot remove this computer from ${account.email}. ${reason}`,
      `Nothing has been changed. To stop using this computer for ${account.email} but keep it on your account, run:`,
      `  portcullis authenticator forget --account ${account.email}`,
    ].join('\n'),
  );
}

function onlyAccount(data: StoreData, options: AccountOption, verb: string): StoredAccount {
  const accounts = selectAccounts(data, options);
  if (accounts.length > 1) throw new CliExit(2, `Say which account to ${verb} with --account: ${accounts.map((a) => a.email).join(', ')}`);
  return accounts[0]!;
}

export async function removeCommand(options: AccountOption, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  const account = onlyAccount(data, options, 'remove');
  await withAccount(account, options, io, async (client) => {
    try {
      await client.remove();
    } catch (error) {
      throw isRemovalRefused(error) ? removalRefused(account, error) : error;
    }
  });
  await forgetHere(options, account);
  io.out(`Removed this computer from ${describeAccount(account)}; it can no longer approve sign-ins.`);
}

/**
 * Forgets an account on this computer only: its record and private key leave the store file, and the
 * server is not asked, so the device stays on the account until it is deleted on Security info (for
 * when the server will not let this computer remove itself).
 */
export async function forgetCommand(options: AccountOption, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  const account = onlyAccount(data, options, 'forget');
  await forgetHere(options, account);
  io.out(`Forgot ${describeAccount(account)} on this computer, and deleted its key. Nothing was changed on your account.`);
  io.out('This computer is still listed on Security info, but it can no longer approve sign-ins. Delete it there once you have another way to sign in.');
}

// ── watch ───────────────────────────────────────────────────────────────────────────────────────────

export async function watchCommand(options: AccountOption & { json?: boolean }, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  const accounts = selectAccounts(data, options);
  const signal = io.signal;
  io.err(`Watching for sign-in requests to ${accounts.map((a) => a.email).join(', ')}. Press Ctrl-C to stop.`);
  const failures: string[] = [];
  await Promise.all(
    accounts.map(async (account) => {
      const client = clientFor(account, io);
      try {
        for await (const event of watchChallenges(client, {
          signal,
          onOpen: () => io.err(`Connected to ${account.origin} for ${account.email}.`),
          onRetry: (error, delay) => io.err(`Lost the connection to ${account.origin} (${(error as Error).message}); trying again in ${Math.ceil(delay / 1000)} s.`),
        })) {
          let challenge: Challenge;
          try {
            challenge = await client.challenge(event.id);
          } catch (error) {
            if (signal?.aborted) return;
            io.err(`${describeAccount(account)}: could not read request ${event.id}: ${(error as Error).message}`);
            continue;
          }
          if (challenge.status !== 'pending') continue;
          if (options.json) {
            io.out(JSON.stringify(challengeLine(account, challenge, io.now())));
            continue;
          }
          const expires = secondsUntil(challenge.expiresAt, io.now());
          io.out(`${challenge.purpose === 'test' ? 'Test request' : 'Sign-in request'}: ${context(challenge)} (expires in ${expires} s, ${challenge.numberLength} digits)`);
          io.out(`  approve: portcullis authenticator approve ${challenge.id} --number NUMBER`);
          io.out(`  deny:    portcullis authenticator deny ${challenge.id} [--report]`);
        }
      } catch (error) {
        await forgetIfUnknown(error, account, options, io);
        failures.push(`${describeAccount(account)}: ${(error as Error).message}`);
      }
    }),
  );
  if (failures.length) throw new CliExit(1, failures.join('\n'));
}

// ── codes ───────────────────────────────────────────────────────────────────────────────────────────

function displayName(entry: { issuer: string; label: string }): string {
  return entry.issuer ? `${entry.issuer} (${entry.label})` : entry.label;
}

/** Groups of three, as most apps show them: "123 456", "1234 5678". */
function spaced(code: string): string {
  return code.length === 8 ? `${code.slice(0, 4)} ${code.slice(4)}` : code.replace(/(\d{3})(?=\d)/g, '$1 ');
}

async function readAllStdin(io: CliIo): Promise<string> {
  if (io.readStdin) return io.readStdin();
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function codesAddCommand(uri: string, options: StoreOption, io: CliIo = terminalIo): Promise<void> {
  // "-" reads the link from standard input, keeping the secret out of shell history and `ps`.
  const text = uri === '-' ? (await readAllStdin(io)).trim() : uri;
  let account;
  try {
    account = parseOtpauthUri(text);
  } catch (error) {
    throw refused(error);
  }
  const { file } = await load(options);
  const merged = await updateStore(file, (data) => {
    const result = mergeIntoVault(data.codes, [account], new Date(io.now()));
    data.codes = result.entries;
    return result;
  });
  if (merged.added.length === 0) throw new CliExit(1, `${displayName(account)} is already in the code vault.`);
  const current = codeFor(account, io.now());
  io.out(`Added ${displayName(account)}. Its code now: ${spaced(current.code)} (${current.secondsRemaining} s left).`);
}

function findCode(codes: VaultEntry[], which: string): VaultEntry {
  const wanted = which.toLowerCase();
  const matches = codes.filter((c) => c.id === which || displayName(c).toLowerCase() === wanted || c.label.toLowerCase() === wanted || `${c.issuer}:${c.label}`.toLowerCase() === wanted);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new CliExit(1, `No code called ${which}. \`portcullis authenticator codes\` lists them.`);
  throw new CliExit(2, `More than one code matches ${which}; use its id (\`portcullis authenticator codes --json\`).`);
}

export async function codesListCommand(options: StoreOption & { json?: boolean }, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  const now = io.now();
  if (options.json) {
    const codes = data.codes.map((c) => ({ id: c.id, issuer: c.issuer, account: c.label, ...codeFor(c, now), digits: c.digits }));
    io.out(JSON.stringify({ codes }, null, 2));
    return;
  }
  if (data.codes.length === 0) {
    io.out('The code vault is empty. Add an account with `portcullis authenticator codes add <otpauth-uri>` (`-` instead of the link reads it from standard input).');
    return;
  }
  io.out(
    table([
      ['ISSUER', 'ACCOUNT', 'CODE', 'LEFT'],
      ...data.codes.map((c) => {
        const current = codeFor(c, now);
        return [c.issuer || '-', c.label, spaced(current.code), `${current.secondsRemaining} s`];
      }),
    ]),
  );
}

export async function codesRemoveCommand(which: string, options: StoreOption, io: CliIo = terminalIo): Promise<void> {
  const { file, data } = await load(options);
  const entry = findCode(data.codes, which);
  await updateStore(file, (store) => {
    store.codes = store.codes.filter((c) => c.id !== entry.id);
  });
  io.out(`Removed ${displayName(entry)} from the code vault. Make sure you have another way to sign in to it.`);
}

async function passphraseFrom(io: CliIo): Promise<string> {
  // The first line of standard input, so that it never appears in shell history or `ps`.
  const line = (await readAllStdin(io)).split(/\r?\n/)[0] ?? '';
  if (!line) throw new CliExit(2, 'Give the passphrase on standard input, e.g. `portcullis authenticator codes export FILE < passphrase.txt`.');
  return line;
}

export async function codesExportCommand(target: string, options: StoreOption, io: CliIo = terminalIo): Promise<void> {
  const { data } = await load(options);
  if (data.codes.length === 0) throw new CliExit(1, 'The code vault is empty: there is nothing to export.');
  const passphrase = await passphraseFrom(io);
  let text: string;
  try {
    text = await exportVault(data.codes, passphrase, { now: new Date(io.now()) });
  } catch (error) {
    throw refused(error);
  }
  await writeFile(target, text, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    throw new CliExit(1, error.code === 'EEXIST' ? `${target} already exists; choose a new file name.` : `Cannot write ${target}: ${error.message}`);
  });
  io.out(`Exported ${data.codes.length} code${data.codes.length === 1 ? '' : 's'} to ${target}, encrypted with your passphrase.`);
}

export async function codesImportCommand(source: string, options: StoreOption, io: CliIo = terminalIo): Promise<void> {
  const { file } = await load(options);
  const text = await readFile(source, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new CliExit(1, error.code === 'ENOENT' ? `Cannot read ${source}: no such file.` : `Cannot read ${source}: ${error.message}`);
  });
  const passphrase = await passphraseFrom(io);
  let accounts;
  try {
    accounts = await importVault(text, passphrase);
  } catch (error) {
    throw refused(error);
  }
  const merged = await updateStore(file, (data) => {
    const result = mergeIntoVault(data.codes, accounts, new Date(io.now()));
    data.codes = result.entries;
    return result;
  });
  io.out(`Imported ${merged.added.length} code${merged.added.length === 1 ? '' : 's'}${merged.skipped.length ? `; ${merged.skipped.length} already in the vault` : ''}.`);
}
