/**
 * The audit log's chain (docs/operations.md#the-audit-log): each sealed entry's MAC covers the MAC of the
 * entry before it, its own position and every column of its audit event, under a key derived from
 * PORTCULLIS_SECRET (`audit-chain`). Someone who can write to the database but does not hold the secret
 * cannot compute a MAC for an edited, moved or inserted entry.
 *
 * The encoding is unambiguous: a domain tag, then each field as a presence byte (0 for null, 1 for a
 * value) followed, for a value, by its UTF-8 length as a 4-byte big-endian integer and its bytes. No
 * two different field lists encode alike, whatever characters the fields hold.
 */
import { createHmac } from 'node:crypto';

/** The columns of an `audit_events` row, as either database returns them (PostgreSQL gives bigint ids as text). */
export interface ChainedEvent {
  id: string | number;
  at: string;
  type: string;
  actor_type: string;
  actor_id: string | null;
  subject_user_id: string | null;
  ip: string | null;
  details: string;
}

/** What the first entry's `prev_mac` holds: there is no entry before it. */
export const GENESIS_MAC = '0'.repeat(64);

const DOMAIN = 'portcullis/audit-chain/v1';

const NULL_FIELD = Buffer.from([0]);

function fields(prevMac: string, seq: number, event: ChainedEvent): Array<string | null> {
  return [DOMAIN, prevMac, String(seq), String(event.id), event.at, event.type, event.actor_type, event.actor_id, event.subject_user_id, event.ip, event.details];
}

/** Feeds the encoding to `sink` a piece at a time (the sealer and verify hash hundreds of thousands). */
function encode(values: Array<string | null>, sink: (piece: Buffer | string) => void): void {
  for (const value of values) {
    if (value === null) {
      sink(NULL_FIELD);
      continue;
    }
    const header = Buffer.allocUnsafe(5);
    header[0] = 1;
    header.writeUInt32BE(Buffer.byteLength(value, 'utf8'), 1);
    sink(header);
    sink(value);
  }
}

/** The bytes a chain entry's MAC is computed over. */
export function encodeChainEntry(prevMac: string, seq: number, event: ChainedEvent): Buffer {
  const pieces: Buffer[] = [];
  encode(fields(prevMac, seq, event), (piece) => pieces.push(typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece));
  return Buffer.concat(pieces);
}

/** HMAC-SHA256 of the entry's encoding, as 64 lower-case hex digits. */
export function chainMac(key: Uint8Array, prevMac: string, seq: number, event: ChainedEvent): string {
  const hmac = createHmac('sha256', key);
  encode(fields(prevMac, seq, event), (piece) => hmac.update(piece));
  return hmac.digest('hex');
}
