/**
 * The CLI authenticator's verbs, called directly with a test's output, clock and `fetch` (the device
 * API stand-in of test/helpers/fake-device-api.ts). The real binary against the real server is in
 * test/integration/authenticator-cli.test.ts.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FakeDeviceApi } from '../../../test/helpers/fake-device-api.js';
import { CliExit } from '../runtime.js';
import {
  approveCommand,
  codesAddCommand,
  codesExportCommand,
  codesImportCommand,
  codesListCommand,
  codesRemoveCommand,
  denyCommand,
  devicesCommand,
  forgetCommand,
  pairCommand,
  pendingCommand,
  removeCommand,
  watchCommand,
  type CliIo,
} from './commands.js';
import { readStore } from './store.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 10); // 10 s into a 30-second step: 20 s left

function setup(api = new FakeDeviceApi()) {
  const store = path.join(mkdtempSync(path.join(os.tmpdir(), 'pc-cli-auth-')), 'authenticator.json');
  const out: string[] = [];
  const err: string[] = [];
  let stdin = '';
  const io: CliIo = { out: (l) => void out.push(l), err: (l) => void err.push(l), now: () => api.clock(), fetch: api.fetch, readStdin: async () => stdin };
  return {
    api,
    store,
    out,
    err,
    io,
    options: { store },
    setStdin: (text: string) => void (stdin = text),
    take: () => out.splice(0).join('\n'),
  };
}

async function exitOf(promise: Promise<unknown>): Promise<CliExit> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CliExit);
    return error as CliExit;
  }
  throw new Error('expected the verb to stop');
}

async function pairedSetup() {
  const t = setup();
  await pairCommand(t.api.pairingUrl(), { ...t.options, name: 'Build box' }, t.io);
  return t;
}

describe('authenticator pair', () => {
  it('pairs, keeps the account and its key in a 0600 store, and says how to approve the test request', async () => {
    const t = setup();
    await pairCommand(t.api.pairingUrl(), { ...t.options, name: 'Build box' }, t.io);
    expect(t.take()).toBe(
      [
        'Paired this computer as “Build box” with alice@example.org (Test Trust) at https://id.example.org.',
        'To finish, approve the test request with the number shown on the Security info page:',
        '  portcullis authenticator approve challenge-1 --number NUMBER',
        '(`portcullis authenticator pending` lists it.)',
      ].join('\n'),
    );
    expect(statSync(t.store).mode & 0o777).toBe(0o600);
    const data = await readStore(t.store);
    expect(data.accounts).toEqual([
      expect.objectContaining({ origin: 'https://id.example.org', deviceId: 'device-1', email: 'alice@example.org', deviceName: 'Build box', privateKey: expect.objectContaining({ kty: 'EC', crv: 'P-256', d: expect.any(String) }) }),
    ]);
    // The key in the store is the one the server holds.
    expect(data.accounts[0]!.privateKey.x).toBe(t.api.devices.get('device-1')!.jwk.x);
  });

  it('names the device after the host by default', async () => {
    const t = setup();
    await pairCommand(t.api.pairingUrl(), t.options, t.io);
    expect(t.api.devices.get('device-1')!.name).toBe(os.hostname().slice(0, 60));
  });

  it.each([
    ['a link without #pair=', 'https://id.example.org/authenticator/', 2, /not a Portcullis pairing link/],
    ['http to another host', 'http://id.example.org/authenticator/#pair=AAAAAAAAAAAAAAAAAAAAAA', 2, /must start with https/],
    ['a used code', 'https://id.example.org/authenticator/#pair=AAAAAAAAAAAAAAAAAAAAAA', 1, /\(activation-code-invalid\)/],
  ])('refuses %s', async (_name, link, code, message) => {
    const t = setup();
    const exit = await exitOf(pairCommand(link, t.options, t.io));
    expect(exit.exitCode).toBe(code);
    expect(exit.message).toMatch(message);
  });

  it('refuses a loose store before spending the one-time code', async () => {
    const t = setup();
    writeFileSync(t.store, '{}', { mode: 0o644 });
    const code = t.api.addActivationCode();
    const exit = await exitOf(pairCommand(t.api.pairingUrl(code), t.options, t.io));
    expect(exit).toMatchObject({ exitCode: 1, message: expect.stringContaining('are too open') });
    expect(t.api.activationCodes.has(code)).toBe(true);
  });
});

describe('authenticator pending, approve, deny', () => {
  it('lists the test request with its context and expiry, and approves it with the number', async () => {
    const t = await pairedSetup();
    t.take();
    await pendingCommand(t.options, t.io);
    const lines = t.take().split('\n');
    expect(lines[0]).toMatch(/^ID\s+ACCOUNT\s+FOR\s+FROM\s+LOCATION\s+EXPIRES IN\s+DIGITS$/);
    expect(lines[1]).toMatch(/^challenge-1\s+alice@example\.org\s+Set-up check \(test request\)\s+198\.51\.100\.7\s+unknown\s+60 s\s+2$/);
    await approveCommand('challenge-1', { ...t.options, number: '17' }, t.io);
    expect(t.take()).toBe('Approved the test request: this computer is now an authenticator for alice@example.org.');
    await pendingCommand(t.options, t.io);
    expect(t.take()).toBe('No sign-in requests are waiting.');
  });

  it('prints the documented JSON', async () => {
    const t = await pairedSetup();
    t.take();
    t.api.startChallenge('device-1', { location: 'Leeds, GB' });
    await pendingCommand({ ...t.options, json: true }, t.io);
    expect(JSON.parse(t.take())).toEqual({
      challenges: [
        { id: 'challenge-2', origin: 'https://id.example.org', account: 'alice@example.org', purpose: 'sign-in', status: 'pending', app: 'Portcullis sign-in', ip: '198.51.100.7', location: 'Leeds, GB', createdAt: expect.any(String), expiresAt: expect.any(String), expiresInSeconds: 60, numberLength: 2 },
        expect.objectContaining({ id: 'challenge-1', purpose: 'test' }),
      ],
    });
  });

  it('waits for a request with --wait', async () => {
    const t = await pairedSetup();
    await approveCommand('challenge-1', { ...t.options, number: '17' }, t.io);
    t.take();
    setTimeout(() => t.api.startChallenge('device-1'), 300);
    await pendingCommand({ ...t.options, json: true, wait: '10' }, t.io);
    expect((JSON.parse(t.take()) as { challenges: unknown[] }).challenges).toHaveLength(1);
    expect((await exitOf(pendingCommand({ ...t.options, wait: 'soon' }, t.io))).exitCode).toBe(2);
  });

  it('checks the number’s length before sending, so a typo does not end the request', async () => {
    const t = await pairedSetup();
    const exit = await exitOf(approveCommand('challenge-1', { ...t.options, number: '170' }, t.io));
    expect(exit).toMatchObject({ exitCode: 2, message: 'The number on the sign-in page has 2 digits; you entered 3. Nothing was sent.' });
    expect((await exitOf(approveCommand('challenge-1', { ...t.options, number: 'x' }, t.io))).exitCode).toBe(2);
    expect(t.api.challenges[0]!.status).toBe('pending');
  });

  it('reports a wrong number, an answered request and an unknown one as refusals', async () => {
    const t = await pairedSetup();
    expect(await exitOf(approveCommand('challenge-1', { ...t.options, number: '18' }, t.io))).toMatchObject({ exitCode: 1, message: '(wrong-number)' });
    expect(await exitOf(approveCommand('challenge-1', { ...t.options, number: '17' }, t.io))).toMatchObject({ exitCode: 1, message: 'This sign-in request ended: a wrong number was entered.' });
    expect(await exitOf(denyCommand('nope', t.options, t.io))).toMatchObject({ exitCode: 1, message: '(challenge-not-found)' });
  });

  it('denies, and reports with --report', async () => {
    const t = await pairedSetup();
    t.take();
    const one = t.api.startChallenge('device-1', { location: 'Leeds, GB' });
    await denyCommand(one.id, t.options, t.io);
    expect(t.take()).toBe('Denied: Portcullis sign-in for alice@example.org from 198.51.100.7, Leeds, GB.');
    expect(one.status).toBe('denied');
    const two = t.api.startChallenge('device-1');
    await denyCommand(two.id, { ...t.options, report: true }, t.io);
    expect(t.take()).toMatch(/^Reported as not you: Portcullis sign-in for alice@example.org from 198.51.100.7. The sign-in was refused/);
    expect(two.status).toBe('reported');
  });

  it('finds which of several accounts a request belongs to', async () => {
    const t = await pairedSetup();
    const other = new FakeDeviceApi('https://login.other.example');
    // One fetch that reaches either server.
    t.io.fetch = (url, init) => (url.startsWith(other.origin) ? other.fetch(url, init) : t.api.fetch(url, init));
    await pairCommand(other.pairingUrl(), { ...t.options, name: 'Build box' }, t.io);
    const challenge = other.startChallenge('device-1', { number: '55' });
    expect(challenge.id).toBe('challenge-2'); // unknown to the first server
    t.take();
    await approveCommand(challenge.id, { ...t.options, number: '55' }, t.io);
    expect(t.take()).toBe('Approved: Portcullis sign-in for alice@example.org from 198.51.100.7.');
    expect(challenge.status).toBe('approved');
    expect(await exitOf(approveCommand('challenge-9', { ...t.options, number: '55' }, t.io))).toMatchObject({ exitCode: 1, message: 'No account on this computer has a sign-in request challenge-9.' });
    expect((await exitOf(pendingCommand({ ...t.options, account: 'nobody@example.org' }, t.io))).exitCode).toBe(2);
  });

  it('says how to pair when there is no account', async () => {
    const t = setup();
    expect(await exitOf(pendingCommand(t.options, t.io))).toMatchObject({ exitCode: 1, message: expect.stringContaining('portcullis authenticator pair <link>') });
  });
});

describe('authenticator devices and remove', () => {
  it('lists the devices, marking this computer', async () => {
    const t = await pairedSetup();
    t.take();
    await devicesCommand(t.options, t.io);
    const lines = t.take().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ADDED \(UTC\)\s+LAST USED \(UTC\)$/);
    expect(lines[1]).toMatch(/^Build box\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+never\s+← this computer$/);
    await devicesCommand({ ...t.options, json: true }, t.io);
    expect(JSON.parse(t.take())).toEqual({ devices: [{ origin: 'https://id.example.org', account: 'alice@example.org', id: 'device-1', name: 'Build box', createdAt: expect.any(String), lastUsedAt: null, current: true }] });
  });

  it('removes this computer from the account and forgets it', async () => {
    const t = await pairedSetup();
    t.take();
    await removeCommand(t.options, t.io);
    expect(t.take()).toBe('Removed this computer from alice@example.org at https://id.example.org; it can no longer approve sign-ins.');
    expect(t.api.devices.size).toBe(0);
    expect((await readStore(t.store)).accounts).toEqual([]);
  });

  it('says why the server will not remove this computer, keeps it, and offers to forget it here only (issue #12)', async () => {
    const t = await pairedSetup();
    t.take();
    t.api.lastCompliant.add('device-1');
    const exit = await exitOf(removeCommand(t.options, t.io));
    expect(exit.exitCode).toBe(1);
    expect(exit.message).toBe(
      [
        'You cannot remove this computer from alice@example.org. It is your only sign-in method that meets “Those with elevated rights must use push notifications” (from 30 November 2023). Add another one that does first.',
        'Nothing has been changed. To stop using this computer for alice@example.org but keep it on your account, run:',
        '  portcullis authenticator forget --account alice@example.org',
      ].join('\n'),
    );
    expect(t.api.devices.has('device-1')).toBe(true);
    expect((await readStore(t.store)).accounts).toHaveLength(1);
  });

  it('forgets an account on this computer only: its key leaves the store, the server is not asked (issue #12)', async () => {
    const t = await pairedSetup();
    t.take();
    const asked = t.api.requests.length;
    await forgetCommand(t.options, t.io);
    expect(t.take()).toBe(
      [
        'Forgot alice@example.org at https://id.example.org on this computer, and deleted its key. Nothing was changed on your account.',
        'This computer is still listed on Security info, but it can no longer approve sign-ins. Delete it there once you have another way to sign in.',
      ].join('\n'),
    );
    expect((await readStore(t.store)).accounts).toEqual([]);
    expect(t.api.requests).toHaveLength(asked);
    expect(t.api.devices.has('device-1')).toBe(true);
  });

  it('asks which account to forget when there are several', async () => {
    const t = await pairedSetup();
    await pairCommand(t.api.pairingUrl(), { ...t.options, name: 'Second' }, t.io);
    expect(await exitOf(forgetCommand(t.options, t.io))).toMatchObject({ exitCode: 2, message: expect.stringContaining('Say which account to forget with --account') });
    expect((await readStore(t.store)).accounts).toHaveLength(2);
  });

  it('forgets an account the server no longer knows (device-unknown), as the contract asks', async () => {
    const t = await pairedSetup();
    t.api.devices.clear();
    expect(await exitOf(devicesCommand(t.options, t.io))).toMatchObject({ exitCode: 1 });
    expect(t.err.join('\n')).toContain('the server no longer knows this computer');
    expect((await readStore(t.store)).accounts).toEqual([]);
  });
});

describe('authenticator watch', () => {
  it('prints requests as they arrive, each once, and stops cleanly when told to', async () => {
    const t = await pairedSetup();
    t.take();
    const controller = new AbortController();
    const watching = watchCommand({ ...t.options, json: true }, { ...t.io, signal: controller.signal });
    await expect.poll(() => t.out.length).toBe(1); // the test request, announced on connecting
    t.api.startChallenge('device-1', { app: 'Mail sign-in' });
    await expect.poll(() => t.out.length).toBe(2);
    controller.abort();
    await watching;
    const lines = t.out.map((l) => JSON.parse(l) as { id: string; app: string; purpose: string });
    expect(lines.map((l) => [l.id, l.purpose, l.app])).toEqual([
      ['challenge-1', 'test', 'Set-up check'],
      ['challenge-2', 'sign-in', 'Mail sign-in'],
    ]);
    expect(t.err).toEqual(['Watching for sign-in requests to alice@example.org. Press Ctrl-C to stop.', 'Connected to https://id.example.org for alice@example.org.']);
  });

  it('prints a readable line with the commands to answer', async () => {
    const t = await pairedSetup();
    t.take();
    const controller = new AbortController();
    const watching = watchCommand(t.options, { ...t.io, signal: controller.signal });
    await expect.poll(() => t.out.length).toBe(3);
    controller.abort();
    await watching;
    expect(t.take()).toBe(
      [
        'Test request: Set-up check for alice@example.org from 198.51.100.7 (expires in 60 s, 2 digits)',
        '  approve: portcullis authenticator approve challenge-1 --number NUMBER',
        '  deny:    portcullis authenticator deny challenge-1 [--report]',
      ].join('\n'),
    );
  });
});

describe('authenticator codes', () => {
  const URI = 'otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example';

  it('adds an account and prints its codes with the seconds left', async () => {
    const t = setup();
    t.api.clock = () => NOW;
    await codesListCommand(t.options, t.io);
    expect(t.take()).toMatch(/^The code vault is empty/);
    await codesAddCommand(URI, t.options, t.io);
    expect(t.take()).toMatch(/^Added Example \(alice@example.com\)\. Its code now: \d{3} \d{3} \(20 s left\)\.$/);
    t.setStdin('otpauth://totp/bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8\n');
    await codesAddCommand('-', t.options, t.io);
    t.take();
    await codesListCommand(t.options, t.io);
    const lines = t.take().split('\n');
    expect(lines[0]).toMatch(/^ISSUER\s+ACCOUNT\s+CODE\s+LEFT$/);
    expect(lines[1]).toMatch(/^Example\s+alice@example\.com\s+\d{3} \d{3}\s+20 s$/);
    expect(lines[2]).toMatch(/^-\s+bob\s+\d{4} \d{4}\s+20 s$/);
    await codesListCommand({ ...t.options, json: true }, t.io);
    const json = JSON.parse(t.take()) as { codes: Array<{ issuer: string; account: string; code: string; secondsRemaining: number; period: number; digits: number }> };
    expect(json.codes.map((c) => [c.issuer, c.account, c.code.length, c.secondsRemaining])).toEqual([
      ['Example', 'alice@example.com', 6, 20],
      ['', 'bob', 8, 20],
    ]);
    expect(statSync(t.store).mode & 0o777).toBe(0o600);
  });

  it('refuses a bad link (usage) and a duplicate (refusal)', async () => {
    const t = setup();
    expect((await exitOf(codesAddCommand('otpauth://totp/x?secret=1', t.options, t.io))).exitCode).toBe(2);
    await codesAddCommand(URI, t.options, t.io);
    expect(await exitOf(codesAddCommand(URI, t.options, t.io))).toMatchObject({ exitCode: 1, message: 'Example (alice@example.com) is already in the code vault.' });
  });

  it('removes a code by name', async () => {
    const t = setup();
    await codesAddCommand(URI, t.options, t.io);
    expect((await exitOf(codesRemoveCommand('nobody', t.options, t.io))).exitCode).toBe(1);
    await codesRemoveCommand('Example (alice@example.com)', t.options, t.io);
    expect((await readStore(t.store)).codes).toEqual([]);
  });

  it('exports encrypted with a passphrase from standard input, and imports into another store', async () => {
    const t = setup();
    await codesAddCommand(URI, t.options, t.io);
    const file = path.join(path.dirname(t.store), 'codes.json');
    t.setStdin('a long enough passphrase\n');
    await codesExportCommand(file, t.options, t.io);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain('JBSWY3DPEHPK3PXP');
    expect((await exitOf(codesExportCommand(file, t.options, t.io))).message).toMatch(/already exists/);

    const other = setup();
    other.setStdin('the wrong passphrase\n');
    expect(await exitOf(codesImportCommand(file, other.options, other.io))).toMatchObject({ exitCode: 1, message: 'The passphrase is not right for this export.' });
    other.setStdin('a long enough passphrase\n');
    await codesImportCommand(file, other.options, other.io);
    await codesImportCommand(file, other.options, other.io);
    expect(other.out).toEqual(['Imported 1 code.', 'Imported 0 codes; 1 already in the vault.']);
    expect((await readStore(other.store)).codes.map((c) => c.secret)).toEqual(['JBSWY3DPEHPK3PXP']);
  });
});
