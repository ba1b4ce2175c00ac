import { describe, expect, it } from 'vitest';
import { uuidv7 } from './uuid7.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidv7 (RFC 9562 §5.7)', () => {
  it('has version 7, the RFC variant, and the timestamp in its first 48 bits', () => {
    const at = Date.UTC(2030, 2, 1, 9, 0, 0, 123);
    const id = uuidv7(at);
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sorts in the order made, within one millisecond and when the clock goes back', () => {
    const at = Date.UTC(2031, 0, 1);
    const ids = [...Array.from({ length: 5000 }, () => uuidv7(at)), uuidv7(at - 60_000), uuidv7(at + 1)];
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(UUID_V7);
  });
});
