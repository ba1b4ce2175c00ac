/**
 * The sample application beside the demo (issue #13 point 7; docs/oidc.md#the-sample-application): the demo registers
 * the mail app's client once, hands its secret over in a 0600 file of its data directory and never prints it; and
 * `npm run start:mail-app`'s script starts Portcullis and the mail app, both ready, and stops both on SIGINT.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemo } from '../../src/app/demo.js';
import { MAIL_APP_KEY, mailAppClientFile, type MailAppClientFile } from '../../src/app/demo-mail-app.js';
import { createClientAdapter, listClients } from '../../src/app/oidc/clients.js';
import { freePort } from '../helpers/browser.js';
import { createTestContext, type TestContext } from '../helpers/context.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const readClientFile = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as MailAppClientFile;

describe('the demo registers the mail app', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('sqlite');
  });
  afterAll(async () => ctx?.destroy());

  it('once, as a first-party confidential client, its secret only in a 0600 file; again, it keeps both; without the file, it rotates the secret', async () => {
    const first = await ensureDemo(ctx);
    expect(first.mailApp.outcome).toBe('registered');
    const file = mailAppClientFile(ctx.config.dataDir);
    expect(first.mailApp.file).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const handed = readClientFile(file);
    const [client] = (await listClients(ctx)).filter((c) => c.key === MAIL_APP_KEY);
    expect(client).toMatchObject({
      clientId: handed.client_id,
      name: 'Mail',
      kind: 'confidential',
      firstParty: true,
      tokenEndpointAuthMethod: 'client_secret_basic',
      redirectUris: ['http://localhost:8400/callback'],
      postLogoutRedirectUris: ['http://localhost:8400/'],
      backChannelLogoutUri: 'http://localhost:8400/backchannel-logout',
    });
    expect(handed.issuer).toBe(`${ctx.config.publicUrl.origin}/oidc`);
    // The secret in the file is the one oidc-provider compares presented secrets with.
    expect((await createClientAdapter(ctx).find(handed.client_id))!.client_secret).toBe(handed.client_secret);

    // Idempotent: the same client, the same secret, one client with the key.
    const second = await ensureDemo(ctx);
    expect(second.mailApp).toMatchObject({ outcome: 'kept', clientId: handed.client_id });
    expect(readClientFile(file)).toEqual(handed);
    expect((await listClients(ctx)).filter((c) => c.key === MAIL_APP_KEY)).toHaveLength(1);

    // The file lost: a sealed secret is never read back out, so a new one is issued and written.
    rmSync(file);
    const third = await ensureDemo(ctx);
    expect(third.mailApp).toMatchObject({ outcome: 'secret-rotated', clientId: handed.client_id });
    const rotated = readClientFile(file);
    expect(rotated.client_secret).not.toBe(handed.client_secret);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await createClientAdapter(ctx).find(handed.client_id))!.client_secret).toBe(rotated.client_secret);
  });
});

describe('npm run start:mail-app', () => {
  it('starts the demo and the mail app, both ready, never prints the secret, and stops both on SIGINT', async () => {
    const script = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts['start:mail-app'] as string;
    expect(script).toBe('tsx examples/mail-app/start-with-demo.ts');
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pc-mail-app-'));
    const [port, mailPort] = [await freePort(), await freePort()];
    // As the npm script runs it (tsx), on free ports, a fresh data directory and no metrics listener.
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/mail-app/start-with-demo.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), PORTCULLIS_DATA_DIR: dataDir, PORT: String(port), MAIL_APP_PORT: String(mailPort), METRICS_PORT: '0' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const until = Date.now() + 60_000;
      while (!output.includes('Press Ctrl-C to stop both.')) {
        if (child.exitCode !== null || Date.now() > until) throw new Error(`the script did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(output).toContain(`Portcullis: http://localhost:${port}/`);
      expect(output).toContain(`Mail:       http://localhost:${mailPort}/`);
      expect((await fetch(`http://localhost:${port}/readyz`)).status).toBe(200);
      expect((await fetch(`http://localhost:${mailPort}/readyz`)).status).toBe(200);
      // The mail app is the demo's client: "Sign in" goes to Portcullis with its client_id, PKCE and nonce.
      const client = readClientFile(mailAppClientFile(dataDir));
      const login = await fetch(`http://localhost:${mailPort}/login`, { redirect: 'manual' });
      expect(login.status).toBe(303);
      const authorize = new URL(login.headers.get('location')!);
      expect(`${authorize.origin}${authorize.pathname}`).toBe(`http://localhost:${port}/oidc/auth`);
      expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ client_id: client.client_id, response_type: 'code', code_challenge_method: 'S256', scope: 'openid email profile' });
      expect(authorize.searchParams.get('nonce')).toBeTruthy();
      expect(authorize.searchParams.get('state')).toBeTruthy();
      expect(login.headers.get('set-cookie')).toMatch(/^mail_session=[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/);
      // oidc-provider takes the demo's registration: with the registered redirect URI (port 8400), the request goes on
      // to the sign-in interaction, not to an error page.
      authorize.searchParams.set('redirect_uri', 'http://localhost:8400/callback');
      const started = await fetch(authorize, { redirect: 'manual' });
      expect(started.status).toBe(303);
      expect(started.headers.get('location')).toMatch(/\/oidc-interaction\/[\w-]+$/);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      // Neither server ever wrote the secret out.
      expect(output).not.toContain(client.client_secret);
      await expect(fetch(`http://localhost:${port}/readyz`)).rejects.toThrow();
      await expect(fetch(`http://localhost:${mailPort}/readyz`)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
