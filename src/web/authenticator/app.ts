/**
 * The Portcullis Authenticator, a web app at /authenticator/ (DESIGN.md, "Push protocol"): it pairs
 * with an account from a Security info page, shows sign-in requests with their context and asks for the
 * number on the sign-in page (Approve, Deny, "No, it's not me"), manages its devices, and keeps a code
 * vault for the user's other accounts. The device API is spoken only through the client SDK
 * (src/authenticator/); this file is the shell: routing, the page frame, focus, and the background work
 * (the service worker, Web Push, and the request sync).
 */
import type { ViewContext, PageOptions, ServerConfig } from './context.js';
import type { Outcome } from './format.js';
import type { Challenge } from '../../authenticator/index.js';
import { currentSubscription, pushStateWithout, pushSupported, requestNotificationPermission, type PushState } from './push.js';
import { parseRoute, routeHash, type Route } from './route.js';
import { AuthenticatorStore, type StoredAccount } from './storage.js';
import { ChallengeSync, clientFor, type ConnectionState, type PendingRequest } from './sync.js';
import { append, backLink, notificationBanner, type Child } from './ui.js';
import { renderAddCode, renderCodes, renderDeleteCode, renderExport, renderImport } from './views/codes.js';
import { renderDevices, renderRemoveDevice } from './views/devices.js';
import { refreshHomeRequests, renderChallenge, renderHome, renderPair, renderReport, renderResult } from './views/requests.js';

const APP_NAME = 'Portcullis Authenticator';
const SERVICE_WORKER = '/authenticator/sw.js';
const SCOPE = '/authenticator/';

class App implements ViewContext {
  accounts: StoredAccount[] = [];
  requests: PendingRequest[] = [];
  connection: ConnectionState = 'connecting';
  pushState: PushState | null = null;
  outcome: { outcome: Outcome; purpose: Challenge['purpose'] } | null = null;
  readonly sync: ChallengeSync;
  private route: Route = { view: 'home' };
  private token = 0;
  private flashes: string[] = [];
  private registration: ServiceWorkerRegistration | null = null;
  private firstRender = true;
  /** Stored messages taken for the home view: shown on every render of it until the user moves on. */
  private notices: string[] = [];

  constructor(
    readonly store: AuthenticatorStore,
    readonly config: ServerConfig,
    private readonly elements: { view: HTMLElement; before: HTMLElement; status: HTMLElement },
  ) {
    this.sync = new ChallengeSync(store, {
      onChange: (requests) => this.requestsChanged(requests),
      onRemoved: (account) => void this.deviceRemoved(account),
      onConnection: (state) => {
        this.connection = state;
        if (this.route.view === 'home') refreshHomeRequests(this);
      },
    });
  }

  now(): Date {
    return new Date();
  }

  isCurrent(token: number): boolean {
    return token === this.token;
  }

  go(hash: string): void {
    if (location.hash === hash || (hash === '#' && location.hash === '')) this.render();
    else location.hash = hash; // hashchange renders
  }

  replace(hash: string): void {
    history.replaceState(null, '', `${location.pathname}${location.search}${hash === '#' ? '' : hash}`);
    this.render();
  }

  page(token: number, options: PageOptions, ...children: Child[]): void {
    if (!this.isCurrent(token)) return;
    document.title = `${options.errors ? 'Error: ' : ''}${options.title} – ${APP_NAME}`;
    this.elements.before.replaceChildren();
    if (options.back) this.elements.before.append(backLink(options.back));
    const flashes = options.loading ? [] : this.flashes.splice(0).map((text) => notificationBanner([text], { success: true }));
    this.elements.view.replaceChildren();
    append(this.elements.view, [...flashes, ...children]);
    // Focus follows the view, as a page load would place it, so screen readers announce the new view:
    // a problem first (the error summary), else the heading. Not on the first load: the browser starts there.
    if (this.firstRender || options.loading) return;
    const target = this.elements.view.querySelector<HTMLElement>('.nhsuk-error-summary') ?? this.elements.view.querySelector<HTMLElement>('h1');
    target?.focus();
  }

  flash(text: string): void {
    this.flashes.push(text);
  }

  announce(text: string): void {
    // Emptied first, so the same words said twice are announced twice.
    this.elements.status.textContent = '';
    setTimeout(() => {
      this.elements.status.textContent = text;
    }, 50);
  }

  async reloadAccounts(): Promise<void> {
    this.accounts = await this.store.accounts();
    this.sync.setAccounts(this.accounts);
  }

  async turnOnNotifications(): Promise<void> {
    await requestNotificationPermission();
    await this.refreshPush();
    if (this.route.view === 'home') this.render();
  }

  async refreshPush(): Promise<void> {
    let subscribed = false;
    try {
      const registration = this.registration ?? (await this.serviceWorkerReady());
      const subscription = registration && this.config.vapidPublicKey ? await currentSubscription(registration, this.config.vapidPublicKey) : null;
      subscribed = subscription !== null;
      if (subscription) {
        for (const account of this.accounts) {
          if (account.pushEndpoint === subscription.endpoint) continue;
          try {
            await clientFor(this.store, account).setPushSubscription(subscription);
            await this.store.saveAccount({ ...account, pushEndpoint: subscription.endpoint });
          } catch {
            // The server refused it (not a known push service) or could not be reached: the event
            // stream and polling still bring requests while the app is open.
          }
        }
        this.accounts = await this.store.accounts();
      }
    } finally {
      const state = pushStateWithout(subscribed);
      const changed = state !== this.pushState;
      this.pushState = state;
      if (changed && this.route.view === 'home') this.render();
    }
  }

  async deviceRemoved(account: StoredAccount): Promise<void> {
    const text = `This phone was removed from ${account.email}, so it will no longer get sign-in requests for that account. Its key has been deleted from this phone.`;
    await this.store.addNotice(text, this.now());
    this.accounts = await this.store.accounts();
    this.announce(text);
    if (this.route.view === 'home') this.render();
  }

  async takeNotices(): Promise<string[]> {
    const stored = await this.store.notices();
    if (stored.length) await this.store.clearNotices();
    this.notices.push(...stored.map((n) => n.text).filter((text) => !this.notices.includes(text)));
    return [...this.notices];
  }

  private requestsChanged(requests: PendingRequest[]): void {
    const before = new Set(this.requests.map((r) => r.challenge.id));
    this.requests = requests;
    const fresh = requests.filter((r) => !before.has(r.challenge.id));
    if (fresh.length) this.announce(fresh.length === 1 ? `New sign-in request for ${fresh[0]!.challenge.account.email}` : `${fresh.length} new sign-in requests`);
    if (this.route.view === 'home') refreshHomeRequests(this);
  }

  private async serviceWorkerReady(): Promise<ServiceWorkerRegistration | null> {
    if (!('serviceWorker' in navigator)) return null;
    const ready = await Promise.race([navigator.serviceWorker.ready, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))]);
    this.registration = ready;
    return ready;
  }

  /** Registers the service worker (offline start, Web Push); the app works without it. */
  async startServiceWorker(): Promise<void> {
    if (!('serviceWorker' in navigator)) return;
    navigator.serviceWorker.addEventListener('message', (event: MessageEvent<{ type?: unknown; challengeId?: unknown }>) => {
      const { type, challengeId } = event.data ?? {};
      if (typeof challengeId !== 'string') return;
      // A push arrived: fetch that request now rather than wait for the next poll.
      if (type === 'challenge') void this.sync.lookUp(challengeId, { fresh: true });
      // The user tapped the notification while this window was open.
      if (type === 'open') this.go(routeHash({ view: 'challenge', id: challengeId }));
    });
    try {
      this.registration = await navigator.serviceWorker.register(SERVICE_WORKER, { scope: SCOPE, updateViaCache: 'none' });
    } catch {
      this.registration = null;
    }
  }

  render(): void {
    this.token += 1;
    const token = this.token;
    const route = parseRoute(location.hash) ?? { view: 'home' };
    // Messages for the home view have been seen once the user leaves it.
    if (route.view !== 'home') this.notices = [];
    this.route = route;
    const done = (result: void | Promise<void>) => {
      void Promise.resolve(result).finally(() => {
        if (this.isCurrent(token)) this.firstRender = false;
      });
    };
    switch (route.view) {
      case 'home':
        return done(renderHome(this, token));
      case 'pair':
        return done(renderPair(this, token));
      case 'challenge':
        return done(renderChallenge(this, token, route.id));
      case 'report':
        return done(renderReport(this, token, route.id));
      case 'result':
        return done(renderResult(this, token));
      case 'devices':
        return done(renderDevices(this, token, route.deviceId));
      case 'remove-device':
        return done(renderRemoveDevice(this, token, route.deviceId));
      case 'codes':
        return done(renderCodes(this, token));
      case 'add-code':
        return done(renderAddCode(this, token));
      case 'delete-code':
        return done(renderDeleteCode(this, token, route.id));
      case 'export':
        return done(renderExport(this, token));
      case 'import':
        return done(renderImport(this, token));
    }
  }
}

async function loadConfig(): Promise<ServerConfig> {
  const fallback: ServerConfig = { name: 'Portcullis', origin: location.origin, vapidPublicKey: '' };
  try {
    const response = await fetch('/authenticator/config.json', { credentials: 'omit' });
    if (!response.ok) return fallback;
    const body = (await response.json()) as Partial<ServerConfig>;
    return {
      name: typeof body.name === 'string' ? body.name : fallback.name,
      origin: typeof body.origin === 'string' ? body.origin : fallback.origin,
      vapidPublicKey: typeof body.vapidPublicKey === 'string' ? body.vapidPublicKey : '',
    };
  } catch {
    return fallback;
  }
}

/** Links to a place on the page (the skip link, an error summary's links) move focus there, not to a view. */
function handleInPageLinks(): void {
  document.addEventListener('click', (event) => {
    const anchor = (event.target as Element | null)?.closest?.('a[href^="#"]');
    if (!anchor) return;
    const hash = anchor.getAttribute('href') ?? '';
    if (parseRoute(hash) !== null) return;
    const target = document.getElementById(hash.slice(1));
    if (!target) return;
    event.preventDefault();
    if (!target.hasAttribute('tabindex') && !/^(INPUT|BUTTON|SELECT|TEXTAREA|A)$/.test(target.tagName)) target.setAttribute('tabindex', '-1');
    target.focus();
    target.scrollIntoView({ block: 'center' });
  });
}

async function start(): Promise<void> {
  // What the NHS.UK template's inline script does, here because the CSP allows no inline script.
  document.body.classList.add('js-enabled', 'nhsuk-frontend-supported');
  const view = document.getElementById('view');
  const before = document.getElementById('before-content');
  const status = document.getElementById('app-status');
  if (!view || !before || !status) return;
  handleInPageLinks();
  let store: AuthenticatorStore;
  try {
    store = await AuthenticatorStore.open();
  } catch {
    view.replaceChildren();
    append(view, [
      Object.assign(document.createElement('h1'), { className: 'nhsuk-heading-l', textContent: 'This app cannot start' }),
      Object.assign(document.createElement('p'), { textContent: 'This browser does not let the app keep its data. Turn off private browsing, or use another browser.' }),
    ]);
    return;
  }
  const app = new App(store, await loadConfig(), { view, before, status });
  await app.startServiceWorker();
  await app.reloadAccounts();
  window.addEventListener('hashchange', () => app.render());
  app.render();
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void app.sync.refresh();
  });
  window.addEventListener('online', () => void app.sync.refresh());
  app.pushState = pushSupported() ? null : 'unsupported';
  void app.refreshPush();
}

void start();
