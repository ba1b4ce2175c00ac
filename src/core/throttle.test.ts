import { describe, expect, it } from 'vitest';
import { accountCounterLifetimeSeconds, assessSignInThrottle, ipWindow, lockoutAfterFailure, type ThrottleSettings } from './throttle.js';

const settings: ThrottleSettings = { lockoutThreshold: 10, lockoutSeconds: 60, lockoutMaxSeconds: 3600, ipFailureLimit: 5, ipWindowSeconds: 900 };
const now = new Date('2026-11-28T10:00:30Z');

describe('lockoutAfterFailure (NIST SP 800-63B §5.2.2)', () => {
  it.each([
    [1, null],
    [9, null],
    [10, 60],
    [11, null],
    [19, null],
    [20, 120],
    [30, 240],
    [70, 3600], // 60 × 2^6 = 3840, capped at the maximum
    [100, 3600],
  ])('after %i consecutive failures locks for %s seconds', (failures, seconds) => {
    const lockout = lockoutAfterFailure(failures, now, settings);
    if (seconds === null) expect(lockout).toBeNull();
    else {
      expect(lockout?.seconds).toBe(seconds);
      expect(lockout?.lockedUntil.getTime()).toBe(now.getTime() + seconds * 1000);
      expect(lockout?.lockoutNumber).toBe(failures / 10);
    }
  });

  it('does not overflow for absurd counts', () => {
    expect(lockoutAfterFailure(10 * 5000, now, settings)?.seconds).toBe(3600);
  });

  it('never locks on zero or negative counts', () => {
    expect(lockoutAfterFailure(0, now, settings)).toBeNull();
    expect(lockoutAfterFailure(-10, now, settings)).toBeNull();
  });
});

describe('assessSignInThrottle', () => {
  it.each([
    ['no counters', null, null, { allowed: true }],
    ['failures below the limit', { count: 9, lockedUntil: null }, { count: 4, lockedUntil: null }, { allowed: true }],
    ['a lockout that has lifted', { count: 10, lockedUntil: new Date(now.getTime() - 1) }, null, { allowed: true }],
    [
      'a live lockout',
      { count: 10, lockedUntil: new Date(now.getTime() + 45_500) },
      null,
      { allowed: false, reason: 'throttled-account', retryAfterSeconds: 46 },
    ],
    ['the client address at its limit', null, { count: 5, lockedUntil: null }, { allowed: false, reason: 'throttled-ip', retryAfterSeconds: 870 }],
  ] as const)('%s', (_name, account, ip, expected) => {
    expect(assessSignInThrottle(account, ip, now, settings)).toEqual(expected);
  });

  it('reports the account lockout before the address limit', () => {
    const result = assessSignInThrottle({ count: 10, lockedUntil: new Date(now.getTime() + 10_000) }, { count: 99, lockedUntil: null }, now, settings);
    expect(result).toMatchObject({ allowed: false, reason: 'throttled-account' });
  });
});

describe('ipWindow', () => {
  it('aligns windows to the epoch so every node agrees', () => {
    const { start, end } = ipWindow(now, settings);
    expect(start.toISOString()).toBe('2026-11-28T10:00:00.000Z');
    expect(end.toISOString()).toBe('2026-11-28T10:15:00.000Z');
    expect(ipWindow(new Date('2026-11-28T10:14:59.999Z'), settings).start).toEqual(start);
    expect(ipWindow(new Date('2026-11-28T10:15:00.000Z'), settings).start).toEqual(end);
  });
});

describe('accountCounterLifetimeSeconds', () => {
  it('outlives the longest lockout, and at least a day', () => {
    expect(accountCounterLifetimeSeconds({ lockoutMaxSeconds: 3600 })).toBe(86_400);
    expect(accountCounterLifetimeSeconds({ lockoutMaxSeconds: 86_400 })).toBe(172_800);
  });
});
