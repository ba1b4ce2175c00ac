/**
 * argon2id password hashing with @node-rs/argon2 (native, off the event loop) at the configured
 * parameters (OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1). Hashes are PHC strings that
 * carry their parameters, so a hash made under older settings is recognised and upgraded at the next
 * successful sign-in.
 *
 * At most `concurrency` hashes run at once (by default one per CPU), the rest wait their turn in order.
 * argon2id is built to use all of a core and its memory: running more at once than there are cores only
 * makes them take turns on the cores, evicting each other's 19 MiB from the caches, and holds more
 * memory (19 MiB each) when a flood of sign-ins arrives. It also leaves libuv's other threads free for
 * the file system and DNS while every core is hashing.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import pLimit from 'p-limit';
import { normalisePassword } from '../core/password-rules.js';

export interface Argon2Parameters {
  memoryKib: number;
  iterations: number;
  parallelism: number;
}

export interface HashingOptions extends Argon2Parameters {
  /** How many hashes may run at once; the default is the number of CPUs. */
  concurrency?: number | null;
}

export interface PasswordHasher {
  readonly parameters: Argon2Parameters;
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a malformed hash; never throws for either. */
  verify(phc: string, password: string): Promise<boolean>;
  needsRehash(phc: string): boolean;
  /**
   * Verifies against a hash of a random password made at the same parameters: used when there is no
   * account or no password, so an unknown address costs the same as a known one.
   */
  verifyDummy(password: string): Promise<void>;
  /** Hashes running now, and waiting for a turn. */
  load(): { running: number; waiting: number; concurrency: number };
}

// @node-rs/argon2 declares Algorithm as an ambient const enum, which cannot be read at run time here.
const ARGON2ID = 2 as Algorithm.Argon2id;

const PHC_PATTERN = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/;

export function readArgon2Parameters(phc: string): Argon2Parameters | null {
  const match = PHC_PATTERN.exec(phc);
  if (!match) return null;
  return { memoryKib: Number(match[1]), iterations: Number(match[2]), parallelism: Number(match[3]) };
}

export async function createPasswordHasher(settings: HashingOptions): Promise<PasswordHasher> {
  const { concurrency, ...parameters } = settings;
  const limit = pLimit(concurrency ?? availableParallelism());
  const options = {
    algorithm: ARGON2ID,
    memoryCost: parameters.memoryKib,
    timeCost: parameters.iterations,
    parallelism: parameters.parallelism,
  };
  const dummy = await hash(randomBytes(32).toString('base64url'), options);
  const hasher: PasswordHasher = {
    parameters,
    hash: (password) => limit(() => hash(normalisePassword(password), options)),
    async verify(phc, password) {
      try {
        return await limit(() => verify(phc, normalisePassword(password)));
      } catch {
        return false;
      }
    },
    needsRehash(phc) {
      const current = readArgon2Parameters(phc);
      return (
        current === null ||
        current.memoryKib !== parameters.memoryKib ||
        current.iterations !== parameters.iterations ||
        current.parallelism !== parameters.parallelism
      );
    },
    async verifyDummy(password) {
      await hasher.verify(dummy, password);
    },
    load: () => ({ running: limit.activeCount, waiting: limit.pendingCount, concurrency: limit.concurrency }),
  };
  return hasher;
}
