/**
 * What a password verify costs at each of OWASP's argon2id settings (Password Storage Cheat Sheet:
 * m=47104 t=1, m=19456 t=2 — Portcullis's default —, m=12288 t=3, m=9216 t=4, m=7168 t=5, all p=1), through
 * the server's own hasher (src/crypto/password-hasher.ts, @node-rs/argon2 on libuv's threads): verifies
 * per second with one at a time per CPU, and the CPU time of one. A password sign-in is one verify plus
 * 1.5–3 ms of everything else (docs/performance.md#npm-run-benchsign-in), so this is the ceiling of
 * sign-ins per vCPU at each setting that docs/sizing.md starts from. It prints figures and never fails.
 *
 *   npm run bench:hash-cost -- [--seconds 3]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createPasswordHasher } from '../src/crypto/password-hasher.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(args.seconds);
const cpus = os.availableParallelism();

const SETTINGS = [
  { memoryKib: 47_104, iterations: 1 },
  { memoryKib: 19_456, iterations: 2 },
  { memoryKib: 12_288, iterations: 3 },
  { memoryKib: 9_216, iterations: 4 },
  { memoryKib: 7_168, iterations: 5 },
];

process.stdout.write(`bench/hash-cost  (node ${process.version}, ${cpus} CPUs, load ${os.loadavg()[0]!.toFixed(2)}; argon2id p=1 through the server's hasher, ${cpus} at a time, ${seconds} s each)\n`);
process.stdout.write(`${'setting'.padEnd(26)}${'verifies/s'.padStart(12)}${'per CPU'.padStart(10)}${'CPU ms each'.padStart(14)}${'p50 ms'.padStart(9)}\n`);
for (const setting of SETTINGS) {
  const hasher = await createPasswordHasher({ ...setting, parallelism: 1, concurrency: cpus });
  const phc = await hasher.hash('lantern-harbour-correct');
  for (let i = 0; i < cpus * 2; i++) await hasher.verify(phc, 'lantern-harbour-correct');
  const latencies: number[] = [];
  const cpuAt = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: cpus }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        if (!(await hasher.verify(phc, 'lantern-harbour-correct'))) throw new Error('verify failed');
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAt);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  latencies.sort((a, b) => a - b);
  const rate = latencies.length / elapsed;
  const label = `m=${setting.memoryKib},t=${setting.iterations}${setting.memoryKib === 19_456 ? ' (default)' : ''}`;
  process.stdout.write(
    `${label.padEnd(26)}${rate.toFixed(1).padStart(12)}${(latencies.length / (cpuMs / 1000)).toFixed(1).padStart(10)}${(cpuMs / latencies.length).toFixed(2).padStart(14)}${latencies[Math.floor(latencies.length / 2)]!.toFixed(1).padStart(9)}\n`,
  );
}
