import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainMac, encodeChainEntry, GENESIS_MAC, type ChainedEvent } from './audit-chain-mac.js';

const key = new Uint8Array(32).fill(9);
const event: ChainedEvent = {
  id: 1,
  at: '2026-01-01T00:00:00.000Z',
  type: 'sign-in.succeeded',
  actor_type: 'user',
  actor_id: 'u1',
  subject_user_id: 'u1',
  ip: '192.0.2.1',
  details: '{"method":"totp"}',
};

describe('the audit chain MAC', () => {
  it('is HMAC-SHA256 over length-prefixed fields, with a presence byte for null', () => {
    const bytes = encodeChainEntry(GENESIS_MAC, 1, { ...event, ip: null });
    // The domain tag comes first: presence 1, length 25, "portcullis/audit-chain/v1".
    expect(bytes.subarray(0, 5)).toEqual(Buffer.from([1, 0, 0, 0, 25]));
    expect(bytes.subarray(5, 30).toString()).toBe('portcullis/audit-chain/v1');
    // The ip (second to last field) is null: one 0 byte, then details.
    const details = Buffer.from(event.details);
    const tail = Buffer.concat([Buffer.from([0, 1, 0, 0, 0, details.length]), details]);
    expect(bytes.subarray(bytes.length - tail.length)).toEqual(tail);
    expect(chainMac(key, GENESIS_MAC, 1, event)).toBe(createHmac('sha256', key).update(encodeChainEntry(GENESIS_MAC, 1, event)).digest('hex'));
    expect(chainMac(key, GENESIS_MAC, 1, event)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads a bigint id given as text (PostgreSQL) as the same number', () => {
    expect(chainMac(key, GENESIS_MAC, 1, { ...event, id: '1' })).toBe(chainMac(key, GENESIS_MAC, 1, event));
  });

  // Each change an attacker could make must change the MAC: a field moved across a boundary, null made
  // empty, a different position or predecessor, another key.
  const variants: Array<[string, () => string]> = [
    ['a character moved from one field to the next', () => chainMac(key, GENESIS_MAC, 1, { ...event, actor_type: 'use', actor_id: 'ru1' })],
    ['null made the empty string', () => chainMac(key, GENESIS_MAC, 1, { ...event, ip: '' })],
    ['a field emptied into its neighbour', () => chainMac(key, GENESIS_MAC, 1, { ...event, actor_id: 'u1u1', subject_user_id: '' })],
    ['another event id', () => chainMac(key, GENESIS_MAC, 1, { ...event, id: 2 })],
    ['another time', () => chainMac(key, GENESIS_MAC, 1, { ...event, at: '2026-01-01T00:00:00.001Z' })],
    ['edited details', () => chainMac(key, GENESIS_MAC, 1, { ...event, details: '{"method":"sms"}' })],
    ['another position', () => chainMac(key, GENESIS_MAC, 2, event)],
    ['another predecessor', () => chainMac(key, 'f'.repeat(64), 1, event)],
    ['another key', () => chainMac(new Uint8Array(32).fill(8), GENESIS_MAC, 1, event)],
  ];
  it.each(variants)('changes with %s', (_, variant) => {
    const original = chainMac(key, GENESIS_MAC, 1, event);
    expect(variant()).not.toBe(original);
  });
});
