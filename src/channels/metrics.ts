/**
 * Delivery's Prometheus metrics, on the app's registry (src/app/metrics.ts):
 * - portcullis_messages_total{channel,provider,outcome}: outcome sent, retried (a retryable failure,
 *   scheduled again) or dead (given up);
 * - portcullis_outbox_pending{channel}: messages waiting or being sent, counted when scraped;
 * - portcullis_outbox_oldest_pending_seconds: how long the oldest of them has waited (alert on this:
 *   it grows when a provider is down or no dispatcher runs).
 * A registry holds one metric per name, so a second delivery on the same registry shares them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { channelKinds, type ChannelKind } from './types.js';

export type DeliveryOutcome = 'sent' | 'retried' | 'dead';

export interface DeliveryMetrics {
  messages: Counter<'channel' | 'provider' | 'outcome'>;
}

export interface QueueState {
  pending: Record<ChannelKind, number>;
  oldestCreatedAt: Date | null;
}

export function createDeliveryMetrics(
  registry: Registry,
  options: { providers: Record<ChannelKind, string>; queueState: () => Promise<QueueState>; clock: () => Date },
): DeliveryMetrics {
  const existing = registry.getSingleMetric('portcullis_messages_total');
  if (existing) return { messages: existing as Counter<'channel' | 'provider' | 'outcome'> };

  const messages = new Counter({
    name: 'portcullis_messages_total',
    help: 'Messages by channel, provider and outcome (sent, retried, dead)',
    labelNames: ['channel', 'provider', 'outcome'] as const,
    registers: [registry],
  });
  // Zero series for the configured providers, so rates and alerts work before the first message.
  for (const channel of channelKinds) {
    for (const outcome of ['sent', 'retried', 'dead'] as const) messages.inc({ channel, provider: options.providers[channel], outcome }, 0);
  }

  // Both gauges are collected together on a scrape; they share one query while it is in flight.
  let inflight: Promise<QueueState> | null = null;
  const queueState = (): Promise<QueueState> => {
    inflight ??= options.queueState().finally(() => {
      inflight = null;
    });
    return inflight;
  };
  new Gauge({
    name: 'portcullis_outbox_pending',
    help: 'Messages in the outbox waiting to be sent or being sent, by channel',
    labelNames: ['channel'] as const,
    registers: [registry],
    async collect() {
      const state = await queueState();
      for (const channel of channelKinds) this.set({ channel }, state.pending[channel]);
    },
  });
  new Gauge({
    name: 'portcullis_outbox_oldest_pending_seconds',
    help: 'Age of the oldest message waiting to be sent (0 when none)',
    registers: [registry],
    async collect() {
      const oldest = (await queueState()).oldestCreatedAt;
      this.set(oldest ? Math.max(0, (options.clock().getTime() - oldest.getTime()) / 1000) : 0);
    },
  });
  return { messages };
}
