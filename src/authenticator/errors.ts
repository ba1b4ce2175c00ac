/**
 * One error class for everything the SDK refuses, carrying a stable code (CONVENTIONS.md: errors are a
 * catalogue). Codes from the server are those of docs/device-api.md; the SDK's own are listed here with
 * their messages, so the PWA and the CLI can show or translate them.
 */

/** Error codes the server sends (docs/device-api.md, "Errors"); others may come later. */
export type ServerErrorCode =
  | 'device-signature-invalid'
  | 'device-clock-skew'
  | 'device-replay'
  | 'device-unknown'
  | 'device-account-disabled'
  /** The device's pairing is not confirmed yet: only its test request may be read and answered. */
  | 'device-pending'
  /** `remove()` refused: this device is the person's only method meeting their organisation's policy. */
  | 'method-last-compliant'
  | 'activation-code-invalid'
  | 'challenge-not-found'
  | 'challenge-expired'
  | 'challenge-decided'
  | 'wrong-number'
  | 'number-missing'
  | 'number-invalid'
  | 'device-name-invalid'
  | 'push-subscription-invalid'
  | 'request-invalid'
  | 'rate-limited';

/** What else a server's refusal may say. */
export interface ErrorDetails {
  /** With `device-clock-skew`: the server's time, milliseconds since the epoch. */
  serverTimeMs?: number;
  /** The request field at fault (`jwk`, `name`, `pushSubscription`, `decision`, `number`), when the server names one. */
  field?: string;
  /** With `rate-limited` (and any answer with `Retry-After`): how long to wait before asking again. */
  retryAfterMs?: number;
  /** With `method-last-compliant`: why, as a sentence naming the organisation's requirement. */
  reason?: string;
}

/** The SDK's own codes, with a plain-English message each. */
export const clientErrors = {
  'pairing-url-invalid': 'This is not a Portcullis pairing link. Copy the whole link from Security info (it contains #pair=).',
  'pairing-url-insecure': 'The pairing link must start with https:// (http:// is allowed only for localhost).',
  'device-name-invalid': 'Enter a name of 1 to 60 characters for this device.',
  'number-invalid': 'Enter the number shown on the sign-in page (digits only).',
  'network-error': 'Cannot reach the server.',
  'response-invalid': 'The server sent an answer this app does not understand.',
  'device-key-missing': 'The key for this account is missing from this device. Pair it again from Security info.',
  'otpauth-invalid': 'This is not a valid otpauth:// link for a time-based code.',
  'vault-passphrase-short': 'Choose a passphrase of at least 8 characters.',
  'vault-format': 'This is not a Portcullis code export, or it is from a newer version.',
  'vault-passphrase-wrong': 'The passphrase is not right for this export.',
  'vault-damaged': 'The export has been changed or damaged, so it cannot be read.',
} as const;

export type ClientErrorCode = keyof typeof clientErrors;

export class AuthenticatorError extends Error {
  override readonly name = 'AuthenticatorError';
  /** With `device-clock-skew`: the server's time, milliseconds since the epoch. */
  readonly serverTimeMs?: number;
  /** The request field the server named as at fault, if any. */
  readonly field?: string;
  /** How long the server asked the client to wait (`Retry-After`), if it did. */
  readonly retryAfterMs?: number;
  /** The server's reason on its own (with `method-last-compliant`), to put in the app's own words. */
  readonly reason?: string;

  constructor(
    /** A server code (docs/device-api.md) or one of `clientErrors`. */
    readonly code: ServerErrorCode | ClientErrorCode | (string & {}),
    message: string,
    /** The HTTP status for an error the server sent; null for the SDK's own. */
    readonly status: number | null = null,
    details: ErrorDetails = {},
  ) {
    super(message);
    if (details.serverTimeMs !== undefined) this.serverTimeMs = details.serverTimeMs;
    if (details.field !== undefined) this.field = details.field;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.reason !== undefined) this.reason = details.reason;
  }

  /** An error of the SDK's own, with its catalogue message (and a detail, if any). */
  static client(code: ClientErrorCode, detail?: string): AuthenticatorError {
    return new AuthenticatorError(code, detail ? `${clientErrors[code]} ${detail}` : clientErrors[code]);
  }
}

export function isAuthenticatorError(error: unknown): error is AuthenticatorError {
  return error instanceof AuthenticatorError;
}

/**
 * `remove()` was refused because this device is the person's only sign-in method that meets their
 * organisation's policy (409 `method-last-compliant`): nothing changed on the server. The app says so,
 * and may offer to forget the account on this device only.
 */
export function isRemovalRefused(error: unknown): error is AuthenticatorError & { code: 'method-last-compliant' } {
  return error instanceof AuthenticatorError && error.code === 'method-last-compliant';
}
