/**
 * Web Push (RFC 8030) for push challenges: VAPID-signed (RFC 8292), the payload encrypted with
 * aes128gcm (RFC 8291) by the `web-push` library, carrying only `{"challengeId":"…"}`. Sent at once,
 * not through the outbox: a sign-in request is worth nothing after its 60 seconds, and the app also
 * learns of it from its event stream or by polling.
 *
 * The VAPID key pair is derived from PORTCULLIS_SECRET, so every node signs with the same key and no
 * extra secret needs configuring.
 */
import { createECDH, createHmac } from 'node:crypto';
import type webpushModule from 'web-push';

/** Loaded at the first push sent, not at start. */
let webpush: typeof webpushModule | undefined;

export interface VapidKeys {
  /** Uncompressed P-256 public key, base64url (what PushManager.subscribe takes as applicationServerKey). */
  publicKey: string;
  privateKey: string;
}

export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** A P-256 private key from a seed; in the unlikely case a value is not a valid scalar, the next is tried. */
export function deriveVapidKeys(seed: Uint8Array): VapidKeys {
  for (let counter = 0; ; counter += 1) {
    const candidate = createHmac('sha256', seed).update(`vapid-p256/${counter}`).digest();
    try {
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(candidate);
      return { publicKey: ecdh.getPublicKey().toString('base64url'), privateKey: candidate.toString('base64url') };
    } catch {
      // not a scalar in [1, n−1]; try the next
    }
  }
}

/**
 * Whether an endpoint belongs to a push service we will send to. The server POSTs to whatever endpoint
 * a device gives, so an open list would let a device make the server call internal hosts (SSRF, OWASP
 * ASVS 5 V1.3.6): only the configured push services' hosts (`*.` for subdomains) over https, and
 * localhost for development and tests. (The web-push library always speaks TLS.)
 */
export function isAllowedPushEndpoint(endpoint: string, allowedHosts: readonly string[], allowLocal: boolean): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (allowLocal && (url.hostname === 'localhost' || url.hostname === '127.0.0.1') && (url.protocol === 'http:' || url.protocol === 'https:')) return true;
  if (url.protocol !== 'https:' || url.username || url.password) return false;
  const host = url.hostname.toLowerCase();
  return allowedHosts.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern));
}

export function isPushSubscription(value: unknown, allowedHosts: readonly string[], allowLocal: boolean): value is PushSubscriptionJson {
  const v = value as PushSubscriptionJson | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.endpoint === 'string' &&
    v.endpoint.length <= 2048 &&
    isAllowedPushEndpoint(v.endpoint, allowedHosts, allowLocal) &&
    typeof v.keys?.p256dh === 'string' &&
    typeof v.keys?.auth === 'string' &&
    /^[A-Za-z0-9_-]{80,100}$/.test(v.keys.p256dh) &&
    /^[A-Za-z0-9_-]{16,32}$/.test(v.keys.auth)
  );
}

export type WebPushResult = 'sent' | 'gone' | 'failed';

export async function sendChallengePush(
  subscription: PushSubscriptionJson,
  challengeId: string,
  options: { vapid: VapidKeys; subject: string; ttlSeconds: number; timeoutMs?: number },
): Promise<{ result: WebPushResult; status?: number }> {
  try {
    webpush ??= (await import('web-push')).default;
    const response = await webpush.sendNotification(subscription, JSON.stringify({ challengeId }), {
      vapidDetails: { subject: options.subject, publicKey: options.vapid.publicKey, privateKey: options.vapid.privateKey },
      TTL: options.ttlSeconds,
      urgency: 'high',
      contentEncoding: 'aes128gcm',
      timeout: options.timeoutMs ?? 5000,
    });
    return { result: 'sent', status: response.statusCode };
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    // RFC 8030 §7.3: 404 and 410 mean the subscription is gone; forget it.
    if (status === 404 || status === 410) return { result: 'gone', status };
    return { result: 'failed', ...(status ? { status } : {}) };
  }
}
