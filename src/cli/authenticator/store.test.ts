import { mkdtempSync, readdirSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exportPrivateJwk, generateDeviceKey } from '../../authenticator/index.js';
import { checkStorePermissions, defaultStorePath, emptyStore, readStore, StoreError, updateStore, writeStore, type StoreData } from './store.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'pc-store-'));
const mode = (file: string) => statSync(file).mode & 0o777;
let savedUmask: number | undefined;

afterEach(() => {
  if (savedUmask !== undefined) process.umask(savedUmask);
  savedUmask = undefined;
});

async function sampleStore(): Promise<StoreData> {
  const pair = await generateDeviceKey({ extractable: true });
  return {
    ...emptyStore(),
    accounts: [{ origin: 'https://id.example.org', deviceId: 'd1', email: 'alice@example.org', organisation: 'Trust', serverName: 'Portcullis', deviceName: 'Laptop', pairedAt: '2025-01-01T00:00:00.000Z', privateKey: await exportPrivateJwk(pair.privateKey) }],
    codes: [{ id: 'c1', issuer: 'Example', label: 'alice', secret: 'JBSWY3DPEHPK3PXP', algorithm: 'SHA1', digits: 6, period: 30, addedAt: '2025-01-01T00:00:00.000Z' }],
  };
}

describe('the store file', () => {
  it('is created 0600 in a new 0700 folder, whatever the umask', async () => {
    savedUmask = process.umask(0o000);
    const file = path.join(tmp(), 'deep', 'portcullis', 'authenticator.json');
    await writeStore(file, emptyStore());
    expect(mode(file)).toBe(0o600);
    expect(mode(path.dirname(file))).toBe(0o700);
  });

  it('round-trips accounts with their private keys, and codes', async () => {
    const file = path.join(tmp(), 'store.json');
    const data = await sampleStore();
    await writeStore(file, data);
    expect(await readStore(file)).toEqual(data);
  });

  it('reads a missing file as an empty store, without creating it', async () => {
    const file = path.join(tmp(), 'none.json');
    expect(await readStore(file)).toEqual(emptyStore());
    expect(() => statSync(file)).toThrow();
  });

  it('replaces the file atomically and leaves no temporary file', async () => {
    const dir = tmp();
    const file = path.join(dir, 'store.json');
    await writeStore(file, emptyStore());
    const before = statSync(file).ino;
    await updateStore(file, (data) => void data.codes.push({ id: 'c', issuer: '', label: 'x', secret: 'JBSWY3DPEHPK3PXP', algorithm: 'SHA1', digits: 6, period: 30, addedAt: 'now' }));
    expect(statSync(file).ino).not.toBe(before);
    expect(readdirSync(dir)).toEqual(['store.json']);
    expect((await readStore(file)).codes).toHaveLength(1);
    expect(mode(file)).toBe(0o600);
  });

  it.each([0o644, 0o640, 0o604, 0o660, 0o666, 0o610])('refuses a store with mode %s, saying how to fix it', async (loose) => {
    const file = path.join(tmp(), 'store.json');
    await writeStore(file, emptyStore());
    chmodSync(file, loose);
    await expect(readStore(file)).rejects.toThrow(new StoreError(`Permissions ${loose.toString(8).padStart(4, '0')} for the authenticator store ${file} are too open: it holds private keys, so only you may read it. Run: chmod 600 '${file}'`));
  });

  it.each([0o600, 0o400])('accepts mode %s', async (tight) => {
    const file = path.join(tmp(), 'store.json');
    await writeStore(file, emptyStore());
    chmodSync(file, tight);
    await expect(readStore(file)).resolves.toEqual(emptyStore());
  });

  it('refuses a file owned by someone else, and checks nothing on Windows', () => {
    expect(() => checkStorePermissions('/s', { mode: 0o600, uid: 1001 }, 'linux', 1000)).toThrow(/belongs to another user/);
    expect(() => checkStorePermissions('/s', { mode: 0o666, uid: 1001 }, 'win32', 1000)).not.toThrow();
  });

  it.each([
    ['not JSON', '{', /is not valid JSON/],
    ['another file', '{"hello":1}', /is not a Portcullis authenticator store/],
    ['a newer version', '{"format":"portcullis-authenticator","version":2,"accounts":[],"codes":[]}', /is version 2; this portcullis reads version 1/],
    ['an account without a key', '{"format":"portcullis-authenticator","version":1,"accounts":[{"origin":"x","deviceId":"d","email":"e","pairedAt":"t"}],"codes":[]}', /damaged \(account 1\)/],
    ['a code with a bad secret', '{"format":"portcullis-authenticator","version":1,"accounts":[],"codes":[{"id":"c","addedAt":"t","label":"x","secret":"1"}]}', /damaged \(code 1\)/],
  ])('refuses %s clearly', async (_name, text, message) => {
    const file = path.join(tmp(), 'store.json');
    writeFileSync(file, text, { mode: 0o600 });
    await expect(readStore(file)).rejects.toThrow(message);
  });

  it('refuses a folder in place of the file', async () => {
    const file = path.join(tmp(), 'store.json');
    mkdirSync(file, { mode: 0o700 });
    await expect(readStore(file)).rejects.toThrow(StoreError);
  });

  it.each([
    [{ PORTCULLIS_AUTHENTICATOR_STORE: '/x/store.json' }, '/x/store.json'],
    [{ XDG_CONFIG_HOME: '/cfg' }, '/cfg/portcullis/authenticator.json'],
    [{ XDG_CONFIG_HOME: 'relative' }, '/home/u/.config/portcullis/authenticator.json'],
    [{}, '/home/u/.config/portcullis/authenticator.json'],
  ])('defaults to the right place for %o', (env, expected) => {
    expect(defaultStorePath(env, '/home/u')).toBe(expected);
  });
});
