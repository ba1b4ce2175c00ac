/**
 * Memory and start (issue #18 point 4): how long `portcullis serve --demo` takes from process start to
 * `/readyz` answering 200, on the demo database (made by a first start, then each start reopens it), and
 * how much memory the server holds once idle — with, in the same run, the same figures for a bare
 * `node:http` server, which is what Node.js itself costs. Then what the server's memory is made of
 * (process.memoryUsage() and V8's heap spaces, read from inside the process). It prints figures and
 * never fails on a time.
 *
 *   npm run bench:start -- [--starts 5] [--idle-seconds 15]
 *
 * Goals (docs/performance.md): a cold start ≤ 1 s; idle RSS ≤ 100 MB.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, percentile, sleep } from './lib.js';

const median = (xs: number[]) => percentile(xs, 50);

const GOALS = { startMs: 1000, idleRssMb: 100 };
const { values: args } = parseArgs({ options: { starts: { type: 'string', default: '5' }, 'idle-seconds': { type: 'string', default: '15' } } });
const starts = Number(args.starts);
const idleMs = Number(args['idle-seconds']) * 1000;
const ROOT = path.resolve(import.meta.dirname, '..');

const rssMb = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
};

async function untilReady(url: string, child: ChildProcess, limitMs = 60_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before it was ready`);
    try {
      if ((await fetch(url)).status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error(`not ready after ${limitMs} ms`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** One start: spawn → /readyz 200 (ms), then RSS after the idle wait (MB). */
async function oneStart(command: string[], env: NodeJS.ProcessEnv, readyUrl: string, idle: number): Promise<{ ms: number; rss: number; child: ChildProcess }> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, command, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await untilReady(readyUrl, child);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${stderr}`);
  }
  const ms = performance.now() - spawnedAt;
  await sleep(idle);
  return { ms, rss: await rssMb(child.pid!), child };
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-start-'));
try {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORTCULLIS_DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: origin,
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    PORTCULLIS_SECRET: randomBytes(32).toString('base64url'),
  };
  process.stderr.write('building the bundle (node bin/portcullis.js build) …\n');
  await new Promise<void>((resolve, reject) => {
    const build = spawn(process.execPath, [path.join(ROOT, 'bin', 'portcullis.js'), 'build'], { stdio: 'ignore' });
    build.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`build exited ${code}`))));
  });
  // `portcullis serve --demo` from the bundle, as bin/portcullis.js runs it when it is fresh (here always:
  // a source edited during the run would otherwise send later starts through tsx). The CLI runs its main
  // only when started by the name `portcullis`: a link of that name to the bundle.
  const entry = path.join(dataDir, 'portcullis');
  await symlink(path.join(ROOT, 'dist', 'cli', 'main.mjs'), entry);
  const serve = [entry, 'serve', '--demo'];
  // The first start makes the demo database (migrations, demo users, keys): not a cold start's work.
  process.stderr.write('making the demo database …\n');
  const first = await oneStart(serve, env, `${origin}/readyz`, 0);
  await stop(first.child);

  // A bare node:http server answering /readyz: Node.js's own start and memory, in the same run.
  const bareScript = path.join(dataDir, 'bare.mjs');
  await writeFile(bareScript, `import http from 'node:http';\nhttp.createServer((req, res) => { res.end('ok'); }).listen(${port}, '127.0.0.1');\n`);

  const portcullis = { ms: [] as number[], rss: [] as number[] };
  const bare = { ms: [] as number[], rss: [] as number[] };
  for (let i = 1; i <= starts; i++) {
    process.stderr.write(`start ${i} of ${starts} (${idleMs / 1000} s idle each) …\n`);
    const b = await oneStart([bareScript], env, `${origin}/readyz`, idleMs);
    await stop(b.child);
    bare.ms.push(b.ms);
    bare.rss.push(b.rss);
    const p = await oneStart(serve, env, `${origin}/readyz`, idleMs);
    await stop(p.child);
    portcullis.ms.push(p.ms);
    portcullis.rss.push(p.rss);
  }

  // What the memory is made of: read from inside the process (a preloaded reporter answers SIGUSR2).
  const reportFile = path.join(dataDir, 'memory.json');
  const reporter = path.join(dataDir, 'reporter.mjs');
  await writeFile(
    reporter,
    `import v8 from 'node:v8';\nimport { writeFileSync } from 'node:fs';\nprocess.on('SIGUSR2', () => {\n  writeFileSync(${JSON.stringify(reportFile)}, JSON.stringify({ usage: process.memoryUsage(), spaces: v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, used: s.space_used_size })), modules: Object.keys(globalThis.process.moduleLoadList ?? {}).length }));\n});\n`,
  );
  const inspected = await oneStart(serve, { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --import ${reporter}`.trim() }, `${origin}/readyz`, idleMs);
  inspected.child.kill('SIGUSR2');
  await sleep(500);
  const inside = JSON.parse(await readFile(reportFile, 'utf8')) as { usage: NodeJS.MemoryUsage; spaces: Array<{ name: string; used: number }> };
  const smaps = await readFile(`/proc/${inspected.child.pid}/smaps_rollup`, 'utf8').catch(() => '');
  await stop(inspected.child);

  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}`;
  process.stdout.write(`\nbench/start  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${os.loadavg()[0]!.toFixed(2)}; ${starts} starts each, ${idleMs / 1000} s idle before reading RSS; SQLite demo database)\n`);
  process.stdout.write(`cold start, process start → /readyz 200:   portcullis serve --demo ${fmt(portcullis.ms)} ms   (goal ≤ ${GOALS.startMs} ms: ${median(portcullis.ms) <= GOALS.startMs ? 'MET' : 'NOT MET'});   bare node:http ${fmt(bare.ms)} ms\n`);
  process.stdout.write(`idle RSS:                                   portcullis serve --demo ${fmt(portcullis.rss)} MB   (goal ≤ ${GOALS.idleRssMb} MB: ${median(portcullis.rss) <= GOALS.idleRssMb ? 'MET' : 'NOT MET'});   bare node:http ${fmt(bare.rss)} MB\n`);
  const u = inside.usage;
  process.stdout.write(`what it is made of (one idle server): RSS ${mb(u.rss)} MB = V8 heap ${mb(u.heapTotal)} MB (used ${mb(u.heapUsed)}) + outside the heap: external ${mb(u.external)} MB (of which ArrayBuffers ${mb(u.arrayBuffers)}), and code, stacks and the runtime itself\n`);
  process.stdout.write(`  V8 heap spaces used: ${inside.spaces.filter((s) => s.used > 256 * 1024).map((s) => `${s.name} ${mb(s.used)}`).join(', ')} MB\n`);
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(smaps)?.[1] ?? NaN) / 1024;
  if (smaps) process.stdout.write(`  RSS by kind (smaps_rollup): anonymous ${field('Anonymous').toFixed(1)} MB, file-backed ${(field('Rss') - field('Anonymous')).toFixed(1)} MB (the node binary and shared libraries, shared with other processes)\n`);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
