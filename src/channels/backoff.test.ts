import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './backoff.js';

describe('retryDelayMs', () => {
  it.each([
    [1, 2_000],
    [2, 4_000],
    [3, 8_000],
    [4, 16_000],
    [8, 256_000],
    [9, 300_000], // capped at 5 minutes
    [50, 300_000],
  ])('after attempt %i waits %i ms without jitter', (attempt, expected) => {
    expect(retryDelayMs(attempt, () => 0.5)).toBe(expected);
  });

  it('spreads each wait over ±20 %', () => {
    expect(retryDelayMs(1, () => 0)).toBe(1_600);
    expect(retryDelayMs(1, () => 0.999_999)).toBe(2_400);
    expect(retryDelayMs(9, () => 0.999_999)).toBe(360_000);
  });
});
