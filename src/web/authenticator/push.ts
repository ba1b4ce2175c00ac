/**
 * Web Push in the browser (W3C Push API): subscribe with the server's VAPID public key (RFC 8292 §3.2:
 * the `applicationServerKey`), so that only this server can send to the subscription, and hand the
 * subscription to the server. A push carries only `{"challengeId":"…"}`, encrypted for this browser
 * (RFC 8291), through the browser vendor's push service (RFC 8030).
 *
 * Subscribing fails wherever there is no vendor push service — headless browsers, some privacy
 * settings, iOS outside a home-screen app — and may hang while the browser tries to reach one, so every
 * step has a time limit; the app then relies on its event stream and polling.
 */
// Not exported from the SDK's entry yet (asked for); the module itself is browser-safe.
import { decodeBase64url } from '../../authenticator/base64url.js';
import type { PushSubscriptionJson } from '../../authenticator/index.js';

export type PushState =
  /** This browser has no Push API or notifications (or the page is not a secure context). */
  | 'unsupported'
  /** The user said no to notifications; only the browser's settings can change that. */
  | 'denied'
  /** Not asked yet. */
  | 'off'
  /** Subscribed: requests arrive as notifications. */
  | 'on'
  /** Allowed, but the browser could not subscribe (no push service). */
  | 'failed';

const PERMISSION_TIMEOUT_MS = 15_000;
const SUBSCRIBE_TIMEOUT_MS = 10_000;

function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export function pushSupported(): boolean {
  return window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

/** Asks for permission to show notifications; call it from a click (browsers require a user gesture). */
export function requestNotificationPermission(): Promise<NotificationPermission> {
  if (!pushSupported()) return Promise.resolve('denied');
  if (Notification.permission !== 'default') return Promise.resolve(Notification.permission);
  return withTimeout(Notification.requestPermission(), PERMISSION_TIMEOUT_MS, 'default' as NotificationPermission).catch(() => 'default' as NotificationPermission);
}

export function subscriptionJson(subscription: PushSubscription): PushSubscriptionJson | null {
  const json = subscription.toJSON();
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) return null;
  return { endpoint: json.endpoint, expirationTime: json.expirationTime ?? null, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
}

/**
 * This browser's push subscription for the server's key: the existing one, or a new one when
 * notifications are allowed. Null (and never a rejection) when there is none to be had.
 */
export async function currentSubscription(registration: ServiceWorkerRegistration, vapidPublicKey: string): Promise<PushSubscriptionJson | null> {
  if (!pushSupported() || Notification.permission !== 'granted') return null;
  try {
    const key = decodeBase64url(vapidPublicKey);
    const existing = await withTimeout(registration.pushManager.getSubscription(), SUBSCRIBE_TIMEOUT_MS, null);
    if (existing) {
      // A subscription made for another key (the server's secret was changed) cannot receive its pushes.
      const existingKey = existing.options.applicationServerKey;
      if (existingKey && sameBytes(new Uint8Array(existingKey), key)) return subscriptionJson(existing);
      await existing.unsubscribe();
    }
    // userVisibleOnly: every push shows a notification (browsers require it; W3C Push API §3.2).
    const subscription = await withTimeout(registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }), SUBSCRIBE_TIMEOUT_MS, null);
    return subscription ? subscriptionJson(subscription) : null;
  } catch {
    return null;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export function pushStateWithout(subscribed: boolean): PushState {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  if (Notification.permission === 'default') return 'off';
  return subscribed ? 'on' : 'failed';
}
