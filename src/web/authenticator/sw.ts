/**
 * The Portcullis Authenticator's service worker (W3C Service Workers), scope /authenticator/:
 *
 * - `push` (W3C Push API §"push event"): the message, decrypted by the browser (RFC 8291), is
 *   `{"challengeId":"…"}` and nothing else. It shows a notification — every push must (userVisibleOnly)
 *   — and tells open windows of the app to look for the request at once.
 * - `notificationclick`: focuses an open window of the app on the request, or opens one.
 * - offline start: the app shell is cached at install; the app's files are fetched from the network
 *   first (so an update shows at once) and from the cache when offline — so the code vault, which needs
 *   no server, works with no connection. The device API is never cached.
 *
 * The project's TypeScript configuration has the DOM library, not the worker one (the two clash in one
 * program), so the few worker types used here are declared by hand.
 */

declare const __PORTCULLIS_BUILD_ID__: string;

interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface PushMessageData {
  text(): string;
}
interface PushEvent extends ExtendableEvent {
  readonly data: PushMessageData | null;
}
interface WorkerNotification {
  readonly data: unknown;
  readonly tag: string;
  close(): void;
}
interface NotificationEvent extends ExtendableEvent {
  readonly notification: WorkerNotification;
  readonly action: string;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response> | Response): void;
}
interface WindowClient {
  readonly url: string;
  readonly focused: boolean;
  focus(): Promise<WindowClient>;
  navigate(url: string): Promise<WindowClient | null>;
  postMessage(message: unknown): void;
}
interface Clients {
  matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<WindowClient[]>;
  openWindow(url: string): Promise<WindowClient | null>;
  claim(): Promise<void>;
}
interface WorkerRegistration {
  readonly scope: string;
  showNotification(title: string, options: { body: string; tag: string; data: unknown; icon: string; badge: string; requireInteraction: boolean; renotify: boolean }): Promise<void>;
}
interface WorkerScope {
  readonly registration: WorkerRegistration;
  readonly clients: Clients;
  readonly location: Location;
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'push', listener: (event: PushEvent) => void): void;
  addEventListener(type: 'notificationclick', listener: (event: NotificationEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
}

const worker = self as unknown as WorkerScope;
const CACHE = `portcullis-authenticator-${__PORTCULLIS_BUILD_ID__}`;
const APP = '/authenticator/';
/** What the app needs to start with no connection. */
const SHELL = [
  APP,
  '/authenticator/app.js',
  '/authenticator/manifest.webmanifest',
  '/authenticator/config.json',
  '/assets/portcullis.css',
  '/assets/portcullis-logo.svg',
  '/assets/images/favicon.svg',
  '/assets/images/nhsuk-icon-192.png',
];
const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** The challenge id in a push message, or null for anything else (the payload is only ever this). */
function challengeIdOf(data: PushMessageData | null): string | null {
  if (!data) return null;
  try {
    const parsed = JSON.parse(data.text()) as { challengeId?: unknown };
    return typeof parsed.challengeId === 'string' && ID.test(parsed.challengeId) ? parsed.challengeId : null;
  } catch {
    return null;
  }
}

async function appWindows(): Promise<WindowClient[]> {
  const scope = worker.registration.scope;
  return (await worker.clients.matchAll({ type: 'window', includeUncontrolled: true })).filter((client) => client.url.startsWith(scope));
}

worker.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `no-cache`: revalidate with the server, so the cache starts from this build's files.
      await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-cache' })));
      await worker.skipWaiting();
    })(),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name.startsWith('portcullis-authenticator-') && name !== CACHE) await caches.delete(name);
      await worker.clients.claim();
    })(),
  );
});

worker.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== worker.location.origin) return;
  // The shell's files only (the page itself under any fragment or query); never the device API.
  const path = request.mode === 'navigate' && url.pathname === APP ? APP : url.pathname;
  if (!SHELL.includes(path)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request.mode === 'navigate' ? new Request(APP, { cache: 'no-cache', credentials: 'same-origin' }) : request);
        if (response.ok) await cache.put(path, response.clone());
        return response;
      } catch (error) {
        const cached = await cache.match(path);
        if (cached) return cached;
        throw error;
      }
    })(),
  );
});

worker.addEventListener('push', (event) => {
  const challengeId = challengeIdOf(event.data);
  event.waitUntil(
    (async () => {
      for (const client of await appWindows()) client.postMessage({ type: 'challenge', challengeId });
      // One notification per request (the tag), re-announced if the same request is pushed again.
      await worker.registration.showNotification('Sign-in request – open to approve', {
        body: 'Open the Portcullis Authenticator and type the number shown on the sign-in page.',
        tag: challengeId ? `challenge-${challengeId}` : 'challenge',
        data: { challengeId },
        icon: '/assets/images/nhsuk-icon-192.png',
        badge: '/assets/images/nhsuk-icon-192.png',
        requireInteraction: true,
        renotify: true,
      });
    })(),
  );
});

worker.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data as { challengeId?: unknown } | null;
  const challengeId = typeof data?.challengeId === 'string' && ID.test(data.challengeId) ? data.challengeId : null;
  const target = new URL(challengeId ? `${APP}#challenge=${challengeId}` : APP, worker.location.origin).href;
  event.waitUntil(
    (async () => {
      const [open] = await appWindows();
      if (open) {
        // The open window moves to the request itself (a fragment change: no reload, no lost state).
        open.postMessage({ type: 'open', challengeId });
        await open.focus();
        return;
      }
      await worker.clients.openWindow(target);
    })(),
  );
});

// A module, so that the worker types declared above stay local to this file.
export {};
