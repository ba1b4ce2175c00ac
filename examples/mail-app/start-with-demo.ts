/**
 * `npm run start:mail-app`: the Portcullis demo (as `npm start` runs it) on :8080 and the sample application on
 * :8400, in one command. Waits for Portcullis's /readyz, reads the mail app's client from the file the demo wrote in
 * its data directory (docs/oidc.md#the-sample-application), prints both URLs, and stops both on Ctrl-C.
 *
 * PORT, PORTCULLIS_DATA_DIR and the rest of Portcullis's configuration are passed through; MAIL_APP_PORT moves the
 * mail app (the demo registers it for http://localhost:8400, so sign-in works only there).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MAIL_APP_CLIENT_FILE, type MailAppClientFile } from '../../src/app/demo-mail-app.js';
import { startMailApp, type MailApp } from './mail-app.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const port = Number(process.env.PORT ?? 8080);
const mailPort = Number(process.env.MAIL_APP_PORT ?? 8400);
const portcullisUrl = (process.env.PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
// Resolved as Portcullis resolves it (src/config/load.ts): against the working directory, ./data by default.
const dataDir = path.resolve(process.env.PORTCULLIS_DATA_DIR ?? './data');

const portcullis = spawn(process.execPath, [path.join(root, 'bin', 'portcullis.js'), 'serve', '--demo'], {
  // What `npm start` sets, unless already set.
  env: { DEVELOPMENT_PAGES: 'true', PHONE_ALLOW_DRAMA_RANGE: 'true', ...process.env },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise<number>((resolve) => portcullis.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
let mailApp: MailApp | null = null;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await mailApp?.close();
  if (portcullis.exitCode === null && portcullis.signalCode === null) portcullis.kill('SIGTERM');
  const portcullisCode = await exited;
  process.exit(code || portcullisCode);
}

async function waitUntilReady(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (portcullis.exitCode !== null) throw new Error(`Portcullis exited (${portcullis.exitCode}) before it was ready`);
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) throw new Error(`${url} was not ready within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));
void exited.then((code) => {
  if (!stopping) {
    process.stderr.write(`Portcullis stopped (exit ${code}); stopping the mail app.\n`);
    void stop(code || 1);
  }
});

try {
  await waitUntilReady(`${portcullisUrl}/readyz`, 90_000);
  // Written by the demo before Portcullis listens; the secret stays in this process (never printed).
  const client = JSON.parse(await readFile(path.join(dataDir, MAIL_APP_CLIENT_FILE), 'utf8')) as MailAppClientFile;
  mailApp = await startMailApp({ issuer: client.issuer, clientId: client.client_id, clientSecret: client.client_secret, port: mailPort, publicUrl: `http://localhost:${mailPort}` });
  await waitUntilReady(`${mailApp.url}/readyz`, 10_000);
  process.stdout.write(
    [
      '',
      `  Portcullis: ${portcullisUrl}/  (the demo's accounts are listed above)`,
      `  Mail:       ${mailApp.url}/  (a sample application: "Sign in with Portcullis", then "Sensitive settings")`,
      '',
      '  Press Ctrl-C to stop both.',
      '',
    ].join('\n') + '\n',
  );
} catch (error) {
  process.stderr.write(`start:mail-app: ${(error as Error).message}\n`);
  await stop(1);
}
