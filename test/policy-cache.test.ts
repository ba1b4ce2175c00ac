/**
 * The policy in force is cached per node (src/app/policy.ts): dropped when `policy:applied` arrives on the Bus,
 * and a load that was reading while a new version was applied is not kept, so no node keeps enforcing the old
 * version for the cache's 30 seconds (docs/shared-state.md, "Where the bound shows").
 */
import { describe, expect, it } from 'vitest';
import type { AppContext } from '../src/app/context.js';
import { currentPolicy, POLICY_TOPIC } from '../src/app/policy.js';

const document = (version: number) => JSON.stringify({ version: 1, methods: { sms: { enabled: version === 1 } } });

/** Just what currentPolicy reads: the latest version, and the Bus. */
function stubContext(onRead: (read: number) => void) {
  const handlers: Array<() => void> = [];
  let version = 1;
  let reads = 0;
  const ctx = {
    bus: { subscribe: (topic: string, handler: () => void) => topic === POLICY_TOPIC && handlers.push(handler) },
    store: {
      policy: {
        latest: async () => {
          reads += 1;
          const row = { version, document: document(version) };
          onRead(reads);
          return row;
        },
      },
    },
  } as unknown as AppContext;
  return {
    ctx,
    apply: () => {
      version += 1;
      for (const handler of handlers) handler();
    },
    reads: () => reads,
  };
}

describe('the cached policy in force', () => {
  it('is read once, then served from the cache', async () => {
    const stub = stubContext(() => undefined);
    expect((await currentPolicy(stub.ctx)).version).toBe(1);
    expect((await currentPolicy(stub.ctx)).version).toBe(1);
    expect(stub.reads()).toBe(1);
  });

  it('is dropped when a new version is applied, on the Bus', async () => {
    const stub = stubContext(() => undefined);
    await currentPolicy(stub.ctx);
    stub.apply();
    expect((await currentPolicy(stub.ctx)).version).toBe(2);
    expect(stub.reads()).toBe(2);
  });

  it('does not keep what a load read while a new version was being applied', async () => {
    // The event arrives while the first load is reading (after it read version 1).
    let stub: ReturnType<typeof stubContext>;
    stub = stubContext((read) => {
      if (read === 1) stub.apply();
    });
    expect((await currentPolicy(stub.ctx)).version).toBe(1);
    // Not cached: the next request reads again, and gets the new version.
    expect((await currentPolicy(stub.ctx)).version).toBe(2);
    expect(stub.reads()).toBe(2);
  });
});
