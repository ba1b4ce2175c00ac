/**
 * What the Portcullis Authenticator keeps on the phone, in IndexedDB (one database per origin):
 *
 * - `accounts`: one record per paired device (server origin, account, device name);
 * - `keys`: each device's ECDSA P-256 key pair as WebCrypto CryptoKey objects. The private key was made
 *   non-extractable (WebCrypto §"CryptoKey": [[extractable]] false), and IndexedDB stores CryptoKeys by
 *   structured clone (HTML §2.7), so page script can sign with it but can never read it out;
 * - `vault`: the code vault's accounts (TOTP secrets for other services);
 * - `notices`: messages kept until the user has seen them (a device removed while the app was shut).
 */
import type { DeviceKeyStore, VaultEntry } from '../../authenticator/index.js';

const DATABASE = 'portcullis-authenticator';
const VERSION = 1;

export interface StoredAccount {
  /** The device id the server gave at pairing (the JWS `kid`). */
  deviceId: string;
  /** The server's origin (always this page's origin: the CSP allows no other). */
  origin: string;
  email: string;
  organisation: string;
  serverName: string;
  /** This device's name as the account's Security info shows it. */
  deviceName: string;
  pairedAt: string;
  /** The server's clock minus this phone's, learnt from a `device-clock-skew` answer. */
  clockOffsetMs: number;
  /** The Web Push endpoint last given to the server, so it is sent again only when it changes. */
  pushEndpoint: string | null;
}

export interface Notice {
  id: string;
  text: string;
  at: string;
}

type StoreName = 'accounts' | 'keys' | 'vault' | 'notices';

function promised<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

function completed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error ?? new Error('IndexedDB transaction failed'));
    transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export class AuthenticatorStore {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(): Promise<AuthenticatorStore> {
    const request = indexedDB.open(DATABASE, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const [name, keyPath] of [
        ['accounts', 'deviceId'],
        ['keys', null],
        ['vault', 'id'],
        ['notices', 'id'],
      ] as const) {
        if (!db.objectStoreNames.contains(name)) db.createObjectStore(name, keyPath ? { keyPath } : undefined);
      }
    };
    const db = await promised(request);
    // Another tab opening a newer version asks this one to let go.
    db.onversionchange = () => db.close();
    return new AuthenticatorStore(db);
  }

  private async all<T>(store: StoreName): Promise<T[]> {
    const transaction = this.db.transaction(store, 'readonly');
    return (await promised(transaction.objectStore(store).getAll())) as T[];
  }

  private async write(stores: StoreName[], work: (transaction: IDBTransaction) => void): Promise<void> {
    const transaction = this.db.transaction(stores, 'readwrite');
    work(transaction);
    await completed(transaction);
  }

  async accounts(): Promise<StoredAccount[]> {
    const accounts = await this.all<StoredAccount>('accounts');
    return accounts.sort((a, b) => a.pairedAt.localeCompare(b.pairedAt));
  }

  /** Saves an account, and with it its key pair when given (one transaction: never one without the other). */
  async saveAccount(account: StoredAccount, keys?: CryptoKeyPair): Promise<void> {
    await this.write(['accounts', 'keys'], (transaction) => {
      transaction.objectStore('accounts').put(account);
      if (keys) transaction.objectStore('keys').put(keys, account.deviceId);
    });
  }

  async loadKeys(deviceId: string): Promise<CryptoKeyPair | null> {
    const transaction = this.db.transaction('keys', 'readonly');
    return ((await promised(transaction.objectStore('keys').get(deviceId))) as CryptoKeyPair | undefined) ?? null;
  }

  /** Forgets an account and deletes its key (once removed from the server, the key is of no use). */
  async forgetAccount(deviceId: string): Promise<void> {
    await this.write(['accounts', 'keys'], (transaction) => {
      transaction.objectStore('accounts').delete(deviceId);
      transaction.objectStore('keys').delete(deviceId);
    });
  }

  keyStore(deviceId: string): DeviceKeyStore {
    return {
      load: () => this.loadKeys(deviceId),
      save: (pair) => this.write(['keys'], (transaction) => transaction.objectStore('keys').put(pair, deviceId)),
    };
  }

  async vaultEntries(): Promise<VaultEntry[]> {
    const entries = await this.all<VaultEntry>('vault');
    return entries.sort((a, b) => a.addedAt.localeCompare(b.addedAt) || a.id.localeCompare(b.id));
  }

  async addVaultEntries(entries: readonly VaultEntry[]): Promise<void> {
    await this.write(['vault'], (transaction) => {
      for (const entry of entries) transaction.objectStore('vault').put(entry);
    });
  }

  async deleteVaultEntry(id: string): Promise<void> {
    await this.write(['vault'], (transaction) => transaction.objectStore('vault').delete(id));
  }

  async notices(): Promise<Notice[]> {
    const notices = await this.all<Notice>('notices');
    return notices.sort((a, b) => a.at.localeCompare(b.at));
  }

  async addNotice(text: string, now: Date): Promise<void> {
    await this.write(['notices'], (transaction) => transaction.objectStore('notices').put({ id: crypto.randomUUID(), text, at: now.toISOString() }));
  }

  async clearNotices(): Promise<void> {
    await this.write(['notices'], (transaction) => transaction.objectStore('notices').clear());
  }
}
