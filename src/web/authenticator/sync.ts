/**
 * Keeping the list of waiting sign-in requests up to date while the app is open, for every paired
 * account, by three routes (docs/device-api.md, "Delivery of a challenge"):
 *
 * 1. the device's event stream (`GET /device/v1/events`, read by the SDK's `watchChallenges`, which
 *    reconnects with backoff) — a request shows within a moment;
 * 2. polling (`GET /device/v1/challenges`) every few seconds while the stream is down, and now and
 *    then while it is up — a safety net for proxies that buffer streams, and how a removed device
 *    learns it was removed;
 * 3. a Web Push message, which the service worker passes on (`lookUp`).
 *
 * A `device-unknown` answer means the device was removed (from Security info, or by an administrator):
 * the account and its key are forgotten and the user is told.
 */
import { AuthenticatorClient, isAuthenticatorError, isPermanentError, watchChallenges, type Challenge } from '../../authenticator/index.js';
import type { AuthenticatorStore, StoredAccount } from './storage.js';

/** Polling while the account's event stream is down (a few seconds, as the issue asks). */
export const POLL_WITHOUT_STREAM_MS = 4_000;
/** Polling while the stream is up: only a safety net. */
export const POLL_WITH_STREAM_MS = 20_000;

export interface PendingRequest {
  account: StoredAccount;
  challenge: Challenge;
}

export type ConnectionState = 'connecting' | 'live' | 'polling' | 'offline';

export interface SyncEvents {
  /** The waiting requests changed (newest first). */
  onChange(requests: PendingRequest[]): void;
  /** The server no longer knows this device: it has been forgotten here. */
  onRemoved(account: StoredAccount): void;
  /** How requests are reaching the app now. */
  onConnection(state: ConnectionState): void;
}

interface Watched {
  account: StoredAccount;
  client: AuthenticatorClient;
  abort: AbortController;
  streamOpen: boolean;
  pending: Challenge[];
  lastPoll: number;
}

export function clientFor(store: AuthenticatorStore, account: StoredAccount): AuthenticatorClient {
  return new AuthenticatorClient({ origin: account.origin, deviceId: account.deviceId, keyStore: store.keyStore(account.deviceId), clockOffsetMs: account.clockOffsetMs });
}

export class ChallengeSync {
  private readonly watched = new Map<string, Watched>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastConnection: ConnectionState | null = null;
  private polling = false;

  constructor(
    private readonly store: AuthenticatorStore,
    private readonly events: SyncEvents,
  ) {}

  /** Watches exactly these accounts (starting new ones, stopping forgotten ones). */
  setAccounts(accounts: readonly StoredAccount[]): void {
    for (const [deviceId, watched] of this.watched) {
      if (!accounts.some((a) => a.deviceId === deviceId)) {
        watched.abort.abort();
        this.watched.delete(deviceId);
      }
    }
    for (const account of accounts) {
      const existing = this.watched.get(account.deviceId);
      if (existing) {
        existing.account = account;
        continue;
      }
      const watched: Watched = { account, client: clientFor(this.store, account), abort: new AbortController(), streamOpen: false, pending: [], lastPoll: 0 };
      this.watched.set(account.deviceId, watched);
      void this.watch(watched);
    }
    if (!this.timer) this.timer = setInterval(() => void this.pollDue(), 1_000);
    this.emit();
    void this.refresh();
  }

  client(deviceId: string): AuthenticatorClient | null {
    return this.watched.get(deviceId)?.client ?? null;
  }

  requests(): PendingRequest[] {
    const all: PendingRequest[] = [];
    for (const watched of this.watched.values()) for (const challenge of watched.pending) all.push({ account: watched.account, challenge });
    return all.sort((a, b) => b.challenge.createdAt.localeCompare(a.challenge.createdAt));
  }

  /** Asks every account's server now (on start, when the app comes back into view, after a decision). */
  async refresh(): Promise<void> {
    await Promise.all([...this.watched.values()].map((watched) => this.poll(watched)));
  }

  /**
   * Finds a request by id (from a notification or a push message): in the lists already held, else by
   * asking each account's server for it (`GET /device/v1/challenges/{id}`). `fresh` asks the server even
   * for a request already listed (a push says something happened to it: its status is read again).
   */
  async lookUp(id: string, options: { fresh?: boolean } = {}): Promise<PendingRequest | null> {
    const known = this.requests().find((r) => r.challenge.id === id);
    if (known && !options.fresh) return known;
    // The account already known to hold it is asked first.
    const order = [...this.watched.values()].sort((a, b) => Number(b.account.deviceId === known?.account.deviceId) - Number(a.account.deviceId === known?.account.deviceId));
    for (const watched of order) {
      try {
        const challenge = await watched.client.challenge(id);
        const listed = watched.pending.some((c) => c.id === id);
        if (challenge.status === 'pending' && !listed) watched.pending = [challenge, ...watched.pending];
        if (challenge.status !== 'pending' && listed) watched.pending = watched.pending.filter((c) => c.id !== id);
        if (challenge.status === 'pending' ? !listed : listed) this.emit();
        return { account: watched.account, challenge };
      } catch (error) {
        if (await this.handlePermanent(watched, error)) continue;
        // challenge-not-found: it belongs to another account on this phone, or is gone.
      }
    }
    return null;
  }

  /** A decision was made here: drop the request from the list at once. */
  forget(id: string): void {
    for (const watched of this.watched.values()) watched.pending = watched.pending.filter((c) => c.id !== id);
    this.emit();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const watched of this.watched.values()) watched.abort.abort();
    this.watched.clear();
  }

  private async watch(watched: Watched): Promise<void> {
    try {
      for await (const event of watchChallenges(watched.client, {
        signal: watched.abort.signal,
        onOpen: () => {
          watched.streamOpen = true;
          this.emitConnection();
        },
        onRetry: () => {
          watched.streamOpen = false;
          this.emitConnection();
        },
      })) {
        void event;
        await this.poll(watched);
      }
    } catch (error) {
      watched.streamOpen = false;
      await this.handlePermanent(watched, error);
    }
  }

  private async pollDue(): Promise<void> {
    if (this.polling || document.visibilityState === 'hidden') return;
    this.polling = true;
    try {
      const now = Date.now();
      await Promise.all(
        [...this.watched.values()]
          .filter((w) => now - w.lastPoll >= (w.streamOpen ? POLL_WITH_STREAM_MS : POLL_WITHOUT_STREAM_MS))
          .map((w) => this.poll(w)),
      );
    } finally {
      this.polling = false;
    }
  }

  private async poll(watched: Watched): Promise<void> {
    if (watched.abort.signal.aborted) return;
    watched.lastPoll = Date.now();
    try {
      const pending = await watched.client.pendingChallenges();
      if (watched.abort.signal.aborted) return;
      const before = watched.pending.map((c) => `${c.id}:${c.status}`).join();
      watched.pending = pending.filter((c) => c.status === 'pending');
      if (watched.pending.map((c) => `${c.id}:${c.status}`).join() !== before) this.emit();
      this.emitConnection(true);
      await this.rememberClockOffset(watched);
    } catch (error) {
      if (await this.handlePermanent(watched, error)) return;
      if (isAuthenticatorError(error) && error.code === 'network-error') this.emitConnection(false);
    }
  }

  private async rememberClockOffset(watched: Watched): Promise<void> {
    const offset = watched.client.clockOffsetMs;
    if (offset === watched.account.clockOffsetMs) return;
    watched.account = { ...watched.account, clockOffsetMs: offset };
    await this.store.saveAccount(watched.account);
  }

  /** For `device-unknown` and the like: forget the account. True when the error was permanent. */
  private async handlePermanent(watched: Watched, error: unknown): Promise<boolean> {
    if (!isPermanentError(error)) return false;
    const code = isAuthenticatorError(error) ? error.code : '';
    // Only an answer that the device is gone removes it; a key that will not load is reported, not deleted.
    if (code !== 'device-unknown') return true;
    if (!this.watched.has(watched.account.deviceId)) return true;
    watched.abort.abort();
    this.watched.delete(watched.account.deviceId);
    await this.store.forgetAccount(watched.account.deviceId);
    this.emit();
    this.events.onRemoved(watched.account);
    return true;
  }

  private emit(): void {
    this.events.onChange(this.requests());
  }

  private emitConnection(reachable?: boolean): void {
    const all = [...this.watched.values()];
    let state: ConnectionState;
    if (all.length === 0) return;
    if (reachable === false && !navigator.onLine) state = 'offline';
    else if (all.every((w) => w.streamOpen)) state = 'live';
    else if (reachable === false) state = 'offline';
    else state = 'polling';
    if (state === this.lastConnection) return;
    this.lastConnection = state;
    this.events.onConnection(state);
  }
}
