/**
 * Everything around the hash, alone: the CPU a complete password sign-in over HTTP costs when argon2id
 * is replaced by a stub that answers at once. The server (buildApp on a fresh database, the demo users)
 * and the load generator (LeanConnection, two connections) share this one process, so the figure is
 * both sides together — the same work bench/sign-in's ratio charges against the hash, without argon2's
 * threads, their noise, and their evictions of the caches. A bare node:http server answering the same
 * three requests is measured alongside for scale. It prints figures and never fails on a time.
 *
 *   npm run bench:sign-in-overhead -- [--sign-ins 3000] [--rounds 5] [--database sqlite|postgres]
 *
 * On PostgreSQL it makes a fresh database on the server TEST_POSTGRES_URL names (by default
 * 127.0.0.1:5432), as the tests do, and drops it at the end.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { DEMO_PASSWORD, DEMO_PHONES, DEMO_USERS, ensureDemo } from '../src/app/demo.js';
import type { PasswordHasher } from '../src/crypto/password-hasher.js';
import { buildApp } from '../src/server/app.js';
import { createTestContext } from '../test/helpers/context.js';
import { createBareSignInServer, FormBrowser, freePort, LeanConnection, percentile } from './lib.js';

const { values: args } = parseArgs({
  options: {
    'sign-ins': { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '5' },
    database: { type: 'string', default: 'sqlite' },
  },
});
const signIns = Number(args['sign-ins']);
const rounds = Number(args.rounds);
if (!Number.isInteger(signIns) || signIns < 1 || !Number.isInteger(rounds) || rounds < 1) throw new Error('--sign-ins and --rounds must be whole numbers ≥ 1');
if (args.database !== 'sqlite' && args.database !== 'postgres') throw new Error('--database must be sqlite or postgres');
const dialect = args.database;

/** argon2id replaced: the right password is recognised at once, so only what surrounds the hash is left. */
const instantHasher: PasswordHasher = {
  parameters: { memoryKib: 19_456, iterations: 2, parallelism: 1 },
  hash: async () => '$argon2id$v=19$m=19456,t=2,p=1$c3R1Yg$c3R1Yg',
  verify: async (_phc, password) => password === DEMO_PASSWORD,
  needsRehash: () => false,
  verifyDummy: async () => undefined,
  load: () => ({ running: 0, waiting: 0, concurrency: 1 }),
};

/** `count` password sign-ins over two keep-alive connections; CPU of this process per sign-in, in ms. */
async function measure(connectTo: string, origin: string, emails: string[], count: number, expectLocation: (location: string) => boolean): Promise<number> {
  const connections = [new LeanConnection(new URL(connectTo)), new LeanConnection(new URL(connectTo))];
  let started = 0;
  const before = process.cpuUsage();
  await Promise.all(
    connections.map(async (connection) => {
      while (started < count) {
        const browser = new FormBrowser(origin, connection);
        const email = emails[started++ % emails.length]!;
        await browser.send('GET', '/sign-in');
        const afterEmail = await browser.send('POST', '/sign-in', { email });
        const afterPassword = await browser.send('POST', '/sign-in/password', { password: DEMO_PASSWORD });
        if (afterEmail.status !== 303 || afterPassword.status !== 303 || !expectLocation(afterPassword.location ?? '')) {
          throw new Error(`a sign-in for ${email} ended with ${afterEmail.status}, ${afterPassword.status} ${afterPassword.location ?? ''}`);
        }
      }
    }),
  );
  const used = process.cpuUsage(before);
  for (const connection of connections) connection.close();
  return (used.user + used.system) / 1000 / count;
}

/** The bare server (bench/lib.ts), in this process and with no hash: the right password is any. */
async function startBare(pageBytes: number): Promise<{ port: number; close(): void }> {
  const server = createBareSignInServer(pageBytes, async () => true);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, close: () => server.close() };
}

const port = await freePort();
const origin = `http://localhost:${port}`;
const ctx = await createTestContext(dialect, { LOG_LEVEL: 'silent', PUBLIC_URL: origin, SIGN_IN_IP_FAILURE_LIMIT: '1000000' }, { hasher: instantHasher });
try {
  await ensureDemo(ctx);
  const app = await buildApp(ctx);
  await app.listen({ port, host: '127.0.0.1' });
  const connectTo = `http://127.0.0.1:${port}`;
  // The demo users without a text-message phone: their sign-in ends after the password.
  const emails = DEMO_USERS.filter((u) => !DEMO_PHONES[u.email]).map((u) => u.email);
  const landed = (location: string) => location === '/account' || location.startsWith('/security-info/get-started');
  const pageBytes = Buffer.byteLength((await new FormBrowser(origin).send('GET', '/sign-in')).body);
  const bare = await startBare(pageBytes);
  const bareOrigin = `http://127.0.0.1:${bare.port}`;
  // Warm-up, as long as a round: JIT, templates, prepared statements.
  await measure(connectTo, origin, emails, signIns, landed);
  await measure(bareOrigin, bareOrigin, emails, signIns, (l) => l === '/account');
  const ours: number[] = [];
  const bares: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    process.stderr.write(`round ${round} of ${rounds}: ${signIns} sign-ins on each …\n`);
    ours.push(await measure(connectTo, origin, emails, signIns, landed));
    bares.push(await measure(bareOrigin, bareOrigin, emails, signIns, (l) => l === '/account'));
  }
  bare.close();
  await app.close();
  const row = (xs: number[]) => `median ${percentile(xs, 50).toFixed(3)} ms   lowest ${Math.min(...xs).toFixed(3)} ms   (${xs.map((x) => x.toFixed(3)).join(', ')})`;
  process.stdout.write(
    `\nbench/sign-in-overhead  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${os.loadavg()[0]!.toFixed(2)}, ${rounds} rounds of ${signIns} password sign-ins, ${dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, argon2id stubbed)\n` +
      `CPU per sign-in, Portcullis + load generator:   ${row(ours)}\n` +
      `CPU per sign-in, bare node:http + load generator: ${row(bares)}\n`,
  );
} finally {
  await ctx.destroy();
}
