/**
 * A software WebAuthn authenticator for tests and benchmarks: an ES256 (P-256) key pair per credential,
 * and the assertion an authenticator and browser would send back for a challenge (WebAuthn L3 §6.3.3,
 * §5.2.2). What the DevTools virtual authenticator does in Chromium, without a browser.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

/** A COSE_Key (RFC 9053 §7.1.1) for an ES256 public key: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}. */
export function coseEs256PublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  if (x.length !== 32 || y.length !== 32) throw new Error('a P-256 coordinate is not 32 bytes');
  // CBOR by hand: a map of 5; 1→2, 3→-7 (0x26), -1 (0x20)→1, -2 (0x21)→bstr(32), -3 (0x22)→bstr(32).
  return Buffer.concat([Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]), x, Buffer.from([0x22, 0x58, 0x20]), y]);
}

export interface SoftwareCredential {
  /** The credential id, base64url. */
  id: string;
  privateKey: KeyObject;
  /** The COSE public key, base64url (as a stored credential holds it). */
  publicKey: string;
  /** The last counter the authenticator signed; each assertion uses the next one unless told. */
  counter: number;
}

export function newSoftwareCredential(id: string): SoftwareCredential {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { id, privateKey, publicKey: coseEs256PublicKey(publicKey).toString('base64url'), counter: 0 };
}

/** What the authenticator and browser send back for `challenge`, all base64url; `counter` overrides the next one. */
export function assertionFor(credential: SoftwareCredential, challenge: string, origin: string, options: { userHandle?: string; counter?: number } = {}): unknown {
  const rpIdHash = sha256(new URL(origin).hostname);
  const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin, crossOrigin: false }), 'utf8');
  const counter = options.counter ?? credential.counter + 1;
  credential.counter = Math.max(credential.counter, counter);
  const authenticatorData = Buffer.alloc(37);
  rpIdHash.copy(authenticatorData, 0);
  authenticatorData[32] = 0x05; // UP | UV; not backup-eligible, no attested data, no extensions
  authenticatorData.writeUInt32BE(counter, 33);
  // ECDSA over authenticatorData ‖ SHA-256(clientDataJSON); node gives the DER form WebAuthn expects.
  const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), credential.privateKey);
  return {
    id: credential.id,
    rawId: credential.id,
    type: 'public-key',
    response: {
      clientDataJSON: clientDataJSON.toString('base64url'),
      authenticatorData: authenticatorData.toString('base64url'),
      signature: signature.toString('base64url'),
      ...(options.userHandle ? { userHandle: options.userHandle } : {}),
    },
    clientExtensionResults: {},
  };
}
