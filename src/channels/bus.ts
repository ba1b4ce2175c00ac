/**
 * The Bus carries short-lived events between nodes: a push decision made on one node reaches the
 * sign-in page waiting on another, and a new challenge reaches an authenticator's event stream wherever
 * it is connected. In-process by default (one node); Redis pub/sub when REDIS_URL is set. Events are
 * hints to look again, never the only record: the state is in the database, so a lost event costs a
 * moment (the page and the app also poll), not a decision.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type BusHandler = (message: string) => void;

export interface Bus {
  publish(topic: string, message: string): Promise<void>;
  /** Returns a function that unsubscribes. */
  subscribe(topic: string, handler: BusHandler): () => void;
  close(): Promise<void>;
}

export function createInProcessBus(): Bus {
  const emitter = new EventEmitter();
  // Thousands of waiting sign-in pages may listen at once; each has its own topic.
  emitter.setMaxListeners(0);
  return {
    async publish(topic, message) {
      emitter.emit(topic, message);
    },
    subscribe(topic, handler) {
      emitter.on(topic, handler);
      return () => emitter.off(topic, handler);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

const PREFIX = 'portcullis:bus:';

/**
 * Redis pub/sub: one subscriber connection per node, one Redis subscription per topic with local
 * listeners, so a node holding many waiting pages keeps its Redis subscriptions to what it waits for.
 */
export function createRedisBus(redis: Redis, logger: Logger): Bus {
  const subscriber = redis.duplicate({ lazyConnect: true });
  /*
   * Subscriptions are sent only once the subscriber connection is ready. While a connection is still
   * in its handshake, ioredis lets a SUBSCRIBE through (it may be sent while a server is loading); the
   * connection is then in subscriber mode before its ready check (INFO), which therefore fails, and
   * ioredis reconnects, dropping the subscriptions in flight: a node that had just started, or just
   * reconnected, lost some of a burst of them, and those phones never heard of their sign-ins (found by
   * bench/cluster.ts; test/integration/redis-bus.test.ts).
   */
  let waiting: Promise<void> | null = null;
  const ready = (): Promise<void> =>
    subscriber.status === 'ready'
      ? Promise.resolve()
      : (waiting ??= new Promise<void>((resolve) =>
          subscriber.once('ready', () => {
            waiting = null;
            resolve();
          }),
        ));
  subscriber.connect().catch(() => {
    // Said by the 'error' listener below; ioredis keeps trying.
  });
  const local = createInProcessBus();
  const counts = new Map<string, number>();
  subscriber.on('message', (channel: string, message: string) => {
    if (channel.startsWith(PREFIX)) void local.publish(channel.slice(PREFIX.length), message);
  });
  subscriber.on('error', (error: Error) => logger.warn({ err: error.message }, 'Redis bus subscriber error'));
  return {
    async publish(topic, message) {
      await redis.publish(PREFIX + topic, message);
    },
    subscribe(topic, handler) {
      const unsubscribeLocal = local.subscribe(topic, handler);
      const count = (counts.get(topic) ?? 0) + 1;
      counts.set(topic, count);
      if (count === 1) {
        ready()
          .then(() => (counts.has(topic) ? subscriber.subscribe(PREFIX + topic) : undefined))
          .catch((error: Error) => logger.warn({ err: error.message, topic }, 'Redis subscribe failed'));
      }
      let done = false;
      return () => {
        if (done) return;
        done = true;
        unsubscribeLocal();
        const left = (counts.get(topic) ?? 1) - 1;
        if (left <= 0) {
          counts.delete(topic);
          ready()
            .then(() => (counts.has(topic) ? undefined : subscriber.unsubscribe(PREFIX + topic)))
            .catch(() => {});
        } else counts.set(topic, left);
      };
    },
    async close() {
      await local.close();
      subscriber.disconnect();
    },
  };
}

/** Resolves when `topic` gets a message, or after `ms`; the subscription ends either way. */
export function waitForMessage(bus: Bus, topic: string, ms: number): Promise<string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(null);
    }, ms);
    const stop = bus.subscribe(topic, (message) => {
      clearTimeout(timer);
      stop();
      resolve(message);
    });
  });
}
