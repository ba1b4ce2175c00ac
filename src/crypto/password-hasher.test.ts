import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createPasswordHasher } from './password-hasher.js';

// Small parameters keep the test quick; the limit does not depend on them.
const fast = { memoryKib: 1024, iterations: 1, parallelism: 1 };

/** Lets queued promise callbacks run, but not I/O completions (argon2 answers from libuv's threads). */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('password hasher', () => {
  it('runs at most `concurrency` hashes at once; the rest wait their turn and still answer correctly', async () => {
    const hasher = await createPasswordHasher({ ...fast, concurrency: 1 });
    const phc = await hasher.hash('correct horse battery staple');
    const answers = Promise.all([
      hasher.verify(phc, 'correct horse battery staple'),
      hasher.verify(phc, 'wrong horse battery staple'),
      hasher.verifyDummy('anything at all'),
    ]);
    await microtasks();
    expect(hasher.load()).toEqual({ running: 1, waiting: 2, concurrency: 1 });
    expect(await answers).toEqual([true, false, undefined]);
    expect(hasher.load()).toEqual({ running: 0, waiting: 0, concurrency: 1 });
  });

  it('runs one hash per CPU by default', async () => {
    const hasher = await createPasswordHasher({ ...fast, concurrency: null });
    const phc = await hasher.hash('correct horse battery staple');
    const cpus = availableParallelism();
    const answers = Promise.all(Array.from({ length: cpus + 2 }, () => hasher.verify(phc, 'correct horse battery staple')));
    await microtasks();
    expect(hasher.load()).toEqual({ running: cpus, waiting: 2, concurrency: cpus });
    expect((await answers).every(Boolean)).toBe(true);
  });

  it('answers false, without throwing, for a malformed hash', async () => {
    const hasher = await createPasswordHasher({ ...fast, concurrency: 2 });
    expect(await hasher.verify('$argon2id$v=19$m=1024,t=1,p=1$broken', 'password')).toBe(false);
    expect(hasher.load()).toEqual({ running: 0, waiting: 0, concurrency: 2 });
  });
});
