/**
 * Delivery's error codes, declared once. A `DeliveryError` carries a code, whether a retry could
 * succeed, and a message safe to log and store in `outbox.last_error`: never the message's content,
 * code or full recipient, and never a provider's raw response body (it may echo them).
 */

export const deliveryErrorCatalogue = {
  'message-invalid': { retryable: false, message: 'The message is not valid' },
  'provider-rejected': { retryable: false, message: 'The provider refused the message' },
  'provider-throttled': { retryable: true, message: 'The provider asked us to slow down' },
  'provider-unavailable': { retryable: true, message: 'The provider failed or could not be reached' },
  // Not retried (issue #17): the message may have reached the provider, which may deliver it; sending it
  // again could deliver it twice. Like a node that died mid-send, its outcome is unknown.
  'provider-timeout': { retryable: false, message: 'The provider did not answer in time, so whether it took the message is unknown; not sent again' },
  'payload-unreadable': {
    retryable: false,
    message: 'The queued message could not be decrypted (was PORTCULLIS_SECRET changed?)',
  },
  'claims-exhausted': {
    retryable: false,
    message: 'The message was claimed more often than DELIVERY_MAX_ATTEMPTS without a result (did a dispatcher stop mid-send?)',
  },
  unexpected: { retryable: true, message: 'Sending failed unexpectedly' },
} as const satisfies Record<string, { retryable: boolean; message: string }>;

export type DeliveryErrorCode = keyof typeof deliveryErrorCatalogue;

export interface DeliveryErrorOptions {
  /** Overrides the code's usual answer. */
  retryable?: boolean;
  /** The provider's HTTP status or SMTP reply code. */
  status?: number;
  /** A short safe detail, such as a provider's numeric error code ("Twilio 21211"). */
  detail?: string;
}

export class DeliveryError extends Error {
  readonly retryable: boolean;
  readonly status: number | undefined;

  constructor(
    readonly code: DeliveryErrorCode,
    options: DeliveryErrorOptions = {},
  ) {
    const entry = deliveryErrorCatalogue[code];
    const status = options.status === undefined ? '' : ` (${options.status})`;
    super(`${code}: ${entry.message}${status}${options.detail ? `: ${options.detail}` : ''}`);
    this.name = 'DeliveryError';
    this.retryable = options.retryable ?? entry.retryable;
    this.status = options.status;
  }
}

export function isDeliveryError(error: unknown): error is DeliveryError {
  return error instanceof DeliveryError;
}

/**
 * How an API's HTTP status maps to a retry decision: 429 and 5xx are worth retrying (RFC 9110 §15.6:
 * server errors; RFC 6585 §4: too many requests); any other 4xx means the request itself is wrong and
 * will be refused again.
 */
export function deliveryErrorForStatus(status: number, detail?: string): DeliveryError {
  if (status === 429) return new DeliveryError('provider-throttled', { status, detail });
  if (status >= 400 && status < 500) return new DeliveryError('provider-rejected', { status, detail });
  return new DeliveryError('provider-unavailable', { status, detail });
}
