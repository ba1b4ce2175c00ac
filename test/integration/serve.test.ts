/**
 * `portcullis serve --demo` as a real process: it warns loudly about a generated secret, serves the
 * demo, serves /metrics only on its own listener (127.0.0.1 by default, with a bearer token when one is
 * set), and on SIGTERM finishes the request in flight, closes the database and exits cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/browser.js';
import { BIN, runCli } from '../helpers/cli.js';
import { waitForOk } from '../helpers/server-process.js';

/** This machine's addresses other than loopback (IPv4), where a listener on 127.0.0.1 must not answer. */
function otherAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .flatMap((info) => (info && info.family === 'IPv4' && !info.internal ? [info.address] : []));
}

describe('portcullis serve', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('serves the demo, then shuts down gracefully on SIGTERM', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pc-serve-'));
    const port = await freePort();
    const metricsPort = await freePort();
    // METRICS_HOST is left to its default: the listener must be on 127.0.0.1 only.
    child = spawn(process.execPath, [BIN, 'serve', '--demo'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORTCULLIS_DATA_DIR: dataDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        METRICS_PORT: String(metricsPort),
        PUBLIC_URL: `http://localhost:${port}`,
        LOG_LEVEL: 'info',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

    await waitForOk(`http://127.0.0.1:${port}/healthz`);
    expect(stderr).toContain('WARNING: PORTCULLIS_SECRET is not set');
    expect(stderr).toContain('ada.admin@example.org');
    expect(stderr).toContain('correct-harbour-lantern');
    expect(existsSync(path.join(dataDir, 'secret'))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const signIn = await fetch(`http://127.0.0.1:${port}/sign-in`);
    expect(await signIn.text()).toContain('Email address');

    // Issue #12: the public port has no /metrics; the metrics listener has, on 127.0.0.1 and nowhere else.
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toContain('portcullis_sign_ins_total{outcome="failure",reason="credentials-incorrect"} 0');
    expect(text).not.toMatch(/reason="(unknown-account|password-incorrect|no-password-set)"/);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(404);
    for (const address of otherAddresses()) await expect(fetch(`http://${address}:${metricsPort}/metrics`)).rejects.toThrow();

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

  it('asks for METRICS_TOKEN as a bearer token, stops at a metrics port already taken, and warns when metrics are bound beyond this machine without one (issue #12)', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const token = 'metrics-token-of-at-least-32-characters';
    const base = { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://localhost:${port}`, PORTCULLIS_SECRET: Buffer.alloc(32, 3).toString('base64url') };
    const withToken = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...base, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-serve-')), METRICS_PORT: String(metricsPort), METRICS_TOKEN: token },
    });
    child = withToken;
    let output = '';
    withToken.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    withToken.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => withToken.on('exit', (code) => resolve(code)));
    await waitForOk(`http://127.0.0.1:${port}/healthz`);
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await none.text()).not.toContain('portcullis_');
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Basic ${token}` } })).status).toBe(401);
    const right = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain('portcullis_sign_ins_total');
    // A second node on this machine with the same metrics port stops at start-up, naming the option.
    const clashPort = await freePort();
    const clash = await runCli(['serve'], {
      ...base,
      PORT: String(clashPort),
      PUBLIC_URL: `http://localhost:${clashPort}`,
      PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-serve-')),
      METRICS_PORT: String(metricsPort),
    });
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(`Configuration option METRICS_PORT could not be listened on at 127.0.0.1:${metricsPort}`);
    withToken.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Bound to 127.0.0.1 (the default) with a token: no warning, and the token is never written out.
    expect(output).not.toContain('WARNING: METRICS_HOST');
    expect(output).not.toContain(token);

    // Bound to every address without a token: start-up says so, loudly.
    const open = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...base, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-serve-')), METRICS_PORT: String(metricsPort), METRICS_HOST: '0.0.0.0' },
    });
    child = open;
    let warned = '';
    open.stderr!.on('data', (d: Buffer) => (warned += d.toString()));
    const openExited = new Promise<number | null>((resolve) => open.on('exit', (code) => resolve(code)));
    await waitForOk(`http://127.0.0.1:${port}/healthz`);
    expect(warned).toContain('WARNING: METRICS_HOST=0.0.0.0 without METRICS_TOKEN');
    expect((await fetch(url)).status).toBe(200);
    open.kill('SIGTERM');
    expect(await openExited).toBe(0);
  });
});
