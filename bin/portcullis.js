#!/usr/bin/env node
// The `portcullis` command: the compiled bundle (dist/cli, built by `npm ci`) when it is newer than every
// source file, otherwise the TypeScript sources through tsx.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = `${root}dist/cli/built`;

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'web') newest = Math.max(newest, newestSource(full));
    } else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  try {
    return statSync(stamp).mtimeMs >= newestSource(`${root}src`);
  } catch {
    return false;
  }
}

if (process.env.PORTCULLIS_FROM_SOURCE !== '1' && bundleIsFresh()) {
  await import(new URL('../dist/cli/main.mjs', import.meta.url).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
