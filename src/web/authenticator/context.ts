/**
 * What the views of the Portcullis Authenticator may use from the running app (src/web/authenticator/app.ts).
 */
import type { Challenge } from '../../authenticator/index.js';
import type { Outcome } from './format.js';
import type { PushState } from './push.js';
import type { AuthenticatorStore, StoredAccount } from './storage.js';
import type { ChallengeSync, ConnectionState, PendingRequest } from './sync.js';
import type { Child } from './ui.js';

/** `GET /authenticator/config.json`. */
export interface ServerConfig {
  name: string;
  origin: string;
  vapidPublicKey: string;
}

export interface PageOptions {
  /** The page's title (after "Error: " when `errors`), also the tab's title. */
  title: string;
  /** The back link's target, if the view has one. */
  back?: string;
  errors?: boolean;
  /** A placeholder while the view loads: waiting messages and focus are left for the view itself. */
  loading?: boolean;
}

export interface ViewContext {
  readonly store: AuthenticatorStore;
  readonly sync: ChallengeSync;
  readonly config: ServerConfig;
  readonly accounts: readonly StoredAccount[];
  readonly requests: readonly PendingRequest[];
  readonly connection: ConnectionState;
  /** null while it is being found out. */
  readonly pushState: PushState | null;
  /** The phone's clock. */
  now(): Date;
  /** Whether the render started with `token` is still the one on screen (views may finish late). */
  isCurrent(token: number): boolean;
  /** Opens a view (a new history entry). */
  go(hash: string): void;
  /** Opens a view in place of this one (no history entry: after a decision, or to drop a pairing code). */
  replace(hash: string): void;
  /** Fills the page: back link, any waiting success messages, then the view's content; moves focus to it. */
  page(token: number, options: PageOptions, ...children: Child[]): void;
  /** A success message for the next view. */
  flash(text: string): void;
  /** Says something to screen readers without moving focus (a polite live region). */
  announce(text: string): void;
  /** The outcome of the last decision, for the result view. */
  outcome: { outcome: Outcome; purpose: Challenge['purpose'] } | null;
  /** Reads the accounts again (after pairing or removal) and watches the new set. */
  reloadAccounts(): Promise<void>;
  /** Asks for notifications (from a click) and subscribes every account. */
  turnOnNotifications(): Promise<void>;
  /** Subscribes to push, if allowed, and tells each account's server (quietly; never throws). */
  refreshPush(): Promise<void>;
  /** The server has forgotten this device: tell the user (the sync has already deleted it). */
  deviceRemoved(account: StoredAccount): Promise<void>;
  /** Messages for the home view (a device removed while the app was shut), until the user moves on. */
  takeNotices(): Promise<string[]>;
}
