/**
 * When to try a failed message again: exponential backoff (2 s, 4 s, 8 s … up to 5 minutes) with
 * jitter, so messages that failed together (a provider outage) are not all retried in the same second
 * by every node. Jitter spreads each wait over ±20 %; `random` is injected so tests can pin it.
 */

export const RETRY_BASE_SECONDS = 2;
export const RETRY_MAX_SECONDS = 300;
const JITTER = 0.2;

/** The wait after the `attempt`-th failed attempt (1 for the first), in milliseconds. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.min(exponent, 30));
  const factor = 1 - JITTER + 2 * JITTER * random();
  return Math.round(base * factor * 1000);
}
