/**
 * Keys derived from the root secret with HKDF-SHA256 (RFC 5869), one per purpose, so that no key
 * serves two purposes and a new purpose never needs a new secret.
 */
import { hkdfSync } from 'node:crypto';

export type KeyPurpose = 'key-encryption' | 'csrf' | 'lookup-hash' | 'code-hash' | 'vapid' | 'oidc-cookies' | 'captcha' | 'audit-chain';

export interface DerivedKeys {
  /** AES-256-GCM key-encryption key for secrets at rest (TOTP seeds). */
  keyEncryption: Uint8Array;
  /** HMAC key binding CSRF tokens to their cookie. */
  csrf: Uint8Array;
  /** HMAC key for hashing identifiers used as lookup keys (throttle keys), so they are not guessable hashes. */
  lookupHash: Uint8Array;
  /** HMAC key for one-time codes at rest: a 6-digit code's plain hash could be found by trying all million. */
  codeHash: Uint8Array;
  /** Seed of the VAPID key pair (RFC 8292) that signs Web Push requests; every node derives the same one. */
  vapidSeed: Uint8Array;
  /** Signs the OpenID Connect provider's cookies (oidc-provider's `cookies.keys`, Keygrip HMAC); every node derives the same one. */
  oidcCookies: Uint8Array;
  /** Signs the help centre's ALTCHA proof-of-work challenges (src/app/help/captcha.ts); every node derives the same one. */
  captcha: Uint8Array;
  /** HMAC key of the audit log's chain (src/app/audit-chain.ts): without the secret, an edited log cannot be re-chained. */
  auditChain: Uint8Array;
}

function derive(secret: Uint8Array, purpose: KeyPurpose): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, new TextEncoder().encode('portcullis'), `portcullis/${purpose}/v1`, 32));
}

export function deriveKeys(secret: Uint8Array): DerivedKeys {
  return {
    keyEncryption: derive(secret, 'key-encryption'),
    csrf: derive(secret, 'csrf'),
    lookupHash: derive(secret, 'lookup-hash'),
    codeHash: derive(secret, 'code-hash'),
    vapidSeed: derive(secret, 'vapid'),
    oidcCookies: derive(secret, 'oidc-cookies'),
    captcha: derive(secret, 'captcha'),
    auditChain: derive(secret, 'audit-chain'),
  };
}
