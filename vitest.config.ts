import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the CPUs: one on a 2-core machine, where most test files wait on
    // a database, a child process or a browser rather than on the CPU. Two at least: 9 minutes instead of 14.
    maxWorkers: Math.max(2, availableParallelism()),
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
