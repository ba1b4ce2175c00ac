/**
 * `portcullis serve --demo` as a real process: it warns loudly about a generated secret, serves the
 * demo, and on SIGTERM finishes the request in flight, closes the database and exits cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/browser.js';
import { BIN } from '../helpers/cli.js';


async function waitFor(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

describe('portcullis serve', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('serves the demo, then shuts down gracefully on SIGTERM', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pc-serve-'));
    const port = await freePort();
    child = spawn(process.execPath, [BIN, 'serve', '--demo'], {
      env: { PATH: process.env.PATH ?? '', PORTCULLIS_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://localhost:${port}`, LOG_LEVEL: 'info' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

    await waitFor(`http://127.0.0.1:${port}/healthz`);
    expect(stderr).toContain('WARNING: PORTCULLIS_SECRET is not set');
    expect(stderr).toContain('ada.admin@example.org');
    expect(stderr).toContain('correct-harbour-lantern');
    expect(existsSync(path.join(dataDir, 'secret'))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const signIn = await fetch(`http://127.0.0.1:${port}/sign-in`);
    expect(await signIn.text()).toContain('Email address');

    // A request in flight: headers and half the body sent, then SIGTERM, then the rest.
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const body = 'email=ada.admin%40example.org&_csrf=x';
    socket.write(`POST /sign-in HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.write(body.slice(0, 10));
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    socket.write(body.slice(10));
    await closed;
    expect(response).toMatch(/^HTTP\/1\.1 403/); // answered in full (the forged CSRF token is refused)
    expect(response).toContain('This page has expired');

    expect(await exited).toBe(0);
    expect(stdout + stderr).toContain('shut down cleanly');
    // The database was closed: SQLite checkpointed and removed its write-ahead log.
    expect(existsSync(path.join(dataDir, 'portcullis.db'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'portcullis.db-wal'))).toBe(false);
  });
});
