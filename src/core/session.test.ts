import { describe, expect, it } from 'vitest';
import { assessSession, sessionExpiry } from './session.js';

const settings = { idleSeconds: 3600, absoluteSeconds: 86_400 };
const created = new Date('2026-11-28T08:00:00Z');
const at = (seconds: number) => new Date(created.getTime() + seconds * 1000);
const session = (lastSeenSeconds: number) => ({ createdAt: created, lastSeenAt: at(lastSeenSeconds), methods: [], restricted: null });

describe('assessSession (OWASP ASVS 5 V7.3)', () => {
  it.each([
    ['just created', session(0), 0, { valid: true, touch: false }],
    ['used 59 s ago: no write', session(0), 59, { valid: true, touch: false }],
    ['used 60 s ago: touch', session(0), 60, { valid: true, touch: true }],
    ['idle for 59 min 59 s', session(0), 3599, { valid: true, touch: true }],
    ['idle for an hour', session(0), 3600, { valid: false, reason: 'idle-timeout' }],
    ['busy but 24 hours old', session(86_399), 86_400, { valid: false, reason: 'absolute-timeout' }],
    ['23 h 59 min old and busy', session(86_000), 86_340, { valid: true, touch: true }],
  ] as const)('%s', (_name, snapshot, nowSeconds, expected) => {
    expect(assessSession(snapshot, at(nowSeconds), settings)).toEqual(expected);
  });

  it('expires rows at the earlier of the two timeouts', () => {
    expect(sessionExpiry({ createdAt: created, lastSeenAt: created }, settings)).toEqual(at(3600));
    expect(sessionExpiry({ createdAt: created, lastSeenAt: at(85_000) }, settings)).toEqual(at(86_400));
  });
});
