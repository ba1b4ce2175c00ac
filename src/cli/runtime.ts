/**
 * What a CLI verb runs with. Each verb declares what it needs: the server's configuration and
 * database ('server'), or nothing ('none': it runs on anyone's computer, like the CLI authenticator).
 */
import os from 'node:os';
import type { Actor } from '../core/audit.js';
import { isPortcullisError } from '../core/errors.js';
import { ConfigError } from '../config/config-error.js';
import { loadConfig, type Config } from '../config/load.js';
import type { AppContext } from '../app/context.js';

export type VerbNeeds = 'server' | 'none';

export const NEEDS_TEXT: Record<VerbNeeds, string> = {
  server: '\nNeeds: the server configuration (environment or PORTCULLIS_CONFIG) and its database.',
  none: '\nNeeds: no server configuration or database.',
};

export function cliActor(): Actor {
  let name = 'unknown';
  try {
    name = os.userInfo().username;
  } catch {
    // Some containers have no passwd entry for the user.
  }
  return { kind: 'cli', name };
}

export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reports an error the way a person at a terminal wants it: one clear line, and an exit code. */
export function reportError(error: unknown): number {
  if (error instanceof CliExit) {
    if (error.message) process.stderr.write(`${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  if (isPortcullisError(error)) {
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  process.stderr.write(`Unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}

export function loadServerConfig(): Config {
  return loadConfig();
}

/** Runs a verb that needs the database: config, context (migrated), the work, then a clean close. */
export async function withContext<T>(work: (ctx: AppContext) => Promise<T>): Promise<T> {
  const config = loadServerConfig();
  const { createAppContext, createLogger } = await import('../app/context.js');
  // CLI verbs log only warnings and worse to stderr, so their stdout stays clean for scripts.
  const logger = createLogger({ logLevel: config.logLevel === 'silent' ? 'silent' : 'warn' }, process.stderr);
  const ctx = await createAppContext(config, { logger });
  try {
    return await work(ctx);
  } finally {
    await ctx.close();
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
