/**
 * UUID version 7 (RFC 9562 §5.7): a 48-bit Unix-millisecond timestamp, then random bits. Ids made later
 * sort later as text, so "newest first" is an index order, and rows made in the same millisecond keep
 * their order: within one process the 12 `rand_a` bits are a counter (RFC 9562 §6.2, method 1), started
 * at a random value below 2^11 each millisecond and carried into the timestamp if it ever overflows.
 */
import { secureRandomBytes } from './tokens.js';

let lastMs = -1;
let counter = 0;

/** `nowMs` is the caller's clock; a clock that goes backwards still yields increasing ids. */
export function uuidv7(nowMs: number = Date.now()): string {
  const random = secureRandomBytes(10);
  let ms = Math.max(0, Math.floor(nowMs));
  if (ms <= lastMs) {
    ms = lastMs;
    counter += 1;
    if (counter > 0xfff) {
      ms += 1;
      counter = 0;
    }
  } else {
    counter = ((random[0]! << 8) | random[1]!) & 0x7ff;
  }
  lastMs = ms;

  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (random[2]! & 0x3f); // RFC 9562 §4.1: variant 10
  random.copy(bytes, 9, 3, 10);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
