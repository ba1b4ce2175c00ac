/**
 * The Redis bus (src/channels/bus.ts) on a real Redis: a node that has just started, which many
 * authenticators reconnect to at once, subscribes to every topic asked for (found by bench/cluster.ts:
 * a burst of subscriptions while the subscriber connection was still connecting lost some of them, and
 * those phones never heard of their sign-in requests).
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBus, type Bus } from '../../src/channels/bus.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

describe('the Redis bus', () => {
  let publisher: Redis;
  const buses: Bus[] = [];
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });

  beforeAll(async () => {
    publisher = new Redis(REDIS_URL, { lazyConnect: true });
    await publisher.connect();
  });

  afterAll(async () => {
    for (const bus of buses) await bus.close();
    publisher.disconnect();
  });

  it('subscribes to every topic of a burst asked for the moment it is made, and delivers to each', async () => {
    // As a node's context makes it: on a connection that connects lazily.
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redis.connect();
    const bus = createRedisBus(redis, logger);
    buses.push(bus, { publish: async () => {}, subscribe: () => () => {}, close: async () => redis.disconnect() });
    const topics = Array.from({ length: 300 }, (_, i) => `burst-test-${process.pid}-${i}`);
    const received = new Set<string>();
    // One after another, as requests arrive: some while the subscriber connection is still connecting.
    for (const topic of topics) {
      bus.subscribe(topic, (message) => received.add(message));
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Every topic is subscribed in Redis (there is no other subscriber to these names).
    const channels = topics.map((t) => `portcullis:bus:${t}`);
    await expect.poll(async () => {
      const counts = (await publisher.pubsub('NUMSUB', ...channels)) as Array<string | number>;
      return counts.filter((_, i) => i % 2 === 1).filter((n) => Number(n) === 1).length;
    }, { timeout: 5000 }).toBe(topics.length);
    for (const topic of topics) await publisher.publish(`portcullis:bus:${topic}`, topic);
    await expect.poll(() => received.size, { timeout: 5000 }).toBe(topics.length);
    expect(warnings.filter((w) => w.includes('subscribe failed'))).toEqual([]);
  });
});
