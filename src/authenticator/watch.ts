/**
 * Keeping the device's event stream open: reconnect with exponential backoff and jitter (so that many
 * devices do not all return at once after a server restart), reset once a stream opens, and stop for
 * errors that waiting will not cure (the device was removed, its key is not accepted).
 */
import { AuthenticatorError } from './errors.js';
import type { AuthenticatorClient, DeviceEvent } from './client.js';

export interface BackoffOptions {
  /** The first wait, in milliseconds (default 1 s). */
  initialDelayMs?: number;
  /** The longest wait (default 60 s). */
  maxDelayMs?: number;
}

/**
 * The wait before reconnection attempt `attempt` (0 for the first): "equal jitter" — half of an
 * exponentially growing, capped delay, plus a random part of the other half — so there is always some
 * wait, and devices spread out.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialDelayMs ?? 1_000;
  const max = options.maxDelayMs ?? 60_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Errors after which reconnecting cannot help; the caller must act (forget the account, pair again).
 * `device-pending` is not one: it lasts until the test request is approved, so waiting cures it.
 */
export function isPermanentError(error: unknown): boolean {
  if (!(error instanceof AuthenticatorError)) return false;
  if (error.code === 'device-unknown' || error.code === 'device-signature-invalid' || error.code === 'device-key-missing') return true;
  // Waiting cures these: the test request gets approved; an administrator enables the account again.
  if (error.code === 'device-pending' || error.code === 'device-account-disabled') return false;
  return error.status === 400 || error.status === 403 || error.status === 404 || error.status === 410;
}

export interface WatchOptions extends BackoffOptions {
  signal?: AbortSignal;
  /** A stream opened (again). */
  onOpen?: () => void;
  /** The stream failed or ended; the next attempt comes after `delayMs`. */
  onRetry?: (error: unknown, delayMs: number) => void;
  /** For tests: the jitter's randomness and the wait. */
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The device's events for as long as `signal` allows, reconnecting as needed. Each challenge id is
 * yielded once, though the server announces waiting challenges again on every reconnection.
 * Throws only a permanent error (see `isPermanentError`); returns when `signal` aborts.
 */
export async function* watchChallenges(client: AuthenticatorClient, options: WatchOptions = {}): AsyncGenerator<DeviceEvent, void, undefined> {
  const { signal } = options;
  const wait = options.sleep ?? sleep;
  const seen = new Set<string>();
  let attempt = 0;
  while (!signal?.aborted) {
    let failure: unknown;
    try {
      for await (const event of client.events(signal, {
        onOpen: () => {
          attempt = 0;
          options.onOpen?.();
        },
      })) {
        if (seen.has(event.id)) continue;
        seen.add(event.id);
        // Remember a bounded number of ids: enough for any real burst of challenges.
        if (seen.size > 1000) seen.delete(seen.values().next().value!);
        yield event;
      }
      failure = AuthenticatorError.client('network-error', `(${client.origin} closed the event stream)`);
    } catch (error) {
      if (isPermanentError(error)) throw error;
      failure = error;
    }
    if (signal?.aborted) return;
    // Never sooner than the server asked (Retry-After with rate-limited).
    const delay = Math.max(backoffDelay(attempt++, options, options.random), failure instanceof AuthenticatorError ? (failure.retryAfterMs ?? 0) : 0);
    options.onRetry?.(failure, delay);
    await wait(delay, signal);
  }
}
