/**
 * Delivery's vocabulary: a channel, a message, and a provider that sends messages of one channel.
 * Callers (second factors, password reset, security notices) build an `OutgoingMessage` and hand it to
 * `Delivery.enqueue` (src/channels/outbox.ts); they never call a provider themselves.
 */

export type ChannelKind = 'sms' | 'voice' | 'email';

export const channelKinds: readonly ChannelKind[] = ['sms', 'voice', 'email'];

export interface OutgoingMessage {
  channel: ChannelKind;
  /** E.164 phone number for sms and voice; an email address for email. */
  to: string;
  /** A stable name such as 'sign-in-code', 'security-notice' or 'password-reset-code', for metrics and logs; never the content. */
  purpose: string;
  /** Email only (required there). */
  subject?: string;
  /** The message body (sms, email); for voice, a plain-text fallback and the script around the code. */
  text: string;
  /** When the message carries a one-time code: a call reads it out digit by digit, twice. */
  code?: string;
}

/** What the dispatcher tells a provider besides the message. */
export interface SendContext {
  /** The outbox id: providers that take a reference (GOV.UK Notify) are given it, to match reports to rows. */
  reference: string;
}

export interface Provider {
  /** Short and stable ('outbox', 'notify', 'twilio', 'smtp'): a metrics label and the outbox's `provider` column. */
  readonly name: string;
  /**
   * True only for the development outbox: the message stays readable (sealed) after it is "sent". Every
   * real provider's payload is wiped once the message is sent or dead, so codes do not linger.
   */
  readonly retainsContent?: boolean;
  /**
   * Sends one message. Throws a `DeliveryError` (src/channels/errors.ts) saying whether a retry could
   * succeed; anything else thrown is treated as a retryable failure.
   */
  send(message: OutgoingMessage, context?: SendContext): Promise<{ providerMessageId?: string }>;
  /** Releases connections (a pooled SMTP transport) at shutdown. */
  close?(): void | Promise<void>;
}
