/**
 * One error class for everything the SDK refuses, carrying a stable code (CONVENTIONS.md: errors are a
 * catalogue). Codes from the server are those of docs/device-api.md; the SDK's own are listed here with
 * their messages, so the PWA and the CLI can show or translate them.
 */

/** Error codes the server sends (docs/device-api.md, "Signed requests"); others may come later. */
export type ServerErrorCode =
  | 'device-signature-invalid'
  | 'device-clock-skew'
  | 'device-replay'
  | 'device-unknown'
  | 'activation-code-invalid'
  | 'challenge-not-found'
  | 'challenge-expired'
  | 'challenge-decided'
  | 'wrong-number'
  | 'rate-limited';

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

  constructor(
    /** A server code (docs/device-api.md) or one of `clientErrors`. */
    readonly code: ServerErrorCode | ClientErrorCode | (string & {}),
    message: string,
    /** The HTTP status for an error the server sent; null for the SDK's own. */
    readonly status: number | null = null,
    /** With `device-clock-skew`: the server's time, milliseconds since the epoch. */
    readonly serverTimeMs?: number,
  ) {
    super(message);
  }

  /** An error of the SDK's own, with its catalogue message (and a detail, if any). */
  static client(code: ClientErrorCode, detail?: string): AuthenticatorError {
    return new AuthenticatorError(code, detail ? `${clientErrors[code]} ${detail}` : clientErrors[code]);
  }
}

export function isAuthenticatorError(error: unknown): error is AuthenticatorError {
  return error instanceof AuthenticatorError;
}
