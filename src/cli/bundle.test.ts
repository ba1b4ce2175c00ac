/**
 * The compiled CLI's swap (issue #17: `dist/cli.old-*` folders piled up after every build): building
 * twice leaves the live bundle and no retired one, keeps a concurrent build's folder, clears an
 * abandoned one; and the premise that makes deleting at once safe — a running command resolves its
 * later imports by path, so never reads a retired folder — still holds for this Node.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCliBundle } from './bundle.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-bundle-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('buildCliBundle', () => {
  it('leaves no retired bundle after building twice, keeps a concurrent build and clears an abandoned one', async () => {
    const dist = tempDir();
    const bundleDir = path.join(dist, 'cli');
    await buildCliBundle({ bundleDir });
    expect(existsSync(path.join(bundleDir, 'main.mjs'))).toBe(true);
    const firstStamp = readFileSync(path.join(bundleDir, 'built'), 'utf8');

    // Left by builds before this fix (any age), another build in progress now, and one that died.
    mkdirSync(path.join(dist, 'cli.old-1234-1796225494528'));
    const concurrent = path.join(dist, `cli.building-99999-${Date.now()}`);
    mkdirSync(concurrent);
    const abandoned = path.join(dist, 'cli.building-4321-1796225494528');
    mkdirSync(abandoned);
    const elevenMinutesAgo = new Date(Date.now() - 11 * 60_000);
    utimesSync(abandoned, elevenMinutesAgo, elevenMinutesAgo);

    await buildCliBundle({ bundleDir });
    expect(readFileSync(path.join(bundleDir, 'built'), 'utf8')).not.toBe(firstStamp);
    expect(readdirSync(dist).sort()).toEqual(['cli', path.basename(concurrent)]);
  });
});

describe('what makes deleting a retired bundle at once safe', () => {
  it('a running module that imports a chunk after the swap reads it from the new folder, not the renamed one', async () => {
    const dir = tempDir();
    const live = path.join(dir, 'cli');
    mkdirSync(live);
    // Waits until told, then loads a chunk lazily, as a CLI verb does.
    writeFileSync(
      path.join(live, 'main.mjs'),
      "process.stdin.once('data', async () => { const { who } = await import('./chunk.mjs'); process.stdout.write(who); process.exit(0); });\nprocess.stdout.write('ready ');\n",
    );
    writeFileSync(path.join(live, 'chunk.mjs'), "export const who = 'old';\n");
    const child = spawn(process.execPath, [path.join(live, 'main.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.startsWith('ready ')) resolve();
      });
    });

    const retired = path.join(dir, 'cli.old-1');
    renameSync(live, retired);
    mkdirSync(live);
    writeFileSync(path.join(live, 'chunk.mjs'), "export const who = 'new';\n");
    rmSync(retired, { recursive: true });
    child.stdin.write('go\n');

    expect(await exited).toBe(0);
    expect(output).toBe('ready new');
  });
});
