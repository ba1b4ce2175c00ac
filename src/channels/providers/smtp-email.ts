/**
 * Email over SMTP with nodemailer. SMTP_URL is nodemailer's connection URL: smtp:// upgrades with
 * STARTTLS when the server offers it, smtps:// is TLS from the start; query options such as
 * `?pool=true` pass through.
 *
 * RFC 5321 §4.2.1: a 4yz reply is transient (retry), a 5yz reply permanent (do not). Connection
 * failures and timeouts are transient.
 */
import nodemailer from 'nodemailer';
import type { SmtpConfig } from '../../config/delivery.js';
import { DeliveryError } from '../errors.js';
import type { Provider } from '../types.js';

export const SMTP_PROVIDER_NAME = 'smtp';

/** The parts of a nodemailer error that are safe to read (its message may quote addresses). */
interface SmtpError {
  code?: string;
  responseCode?: number;
}

function smtpError(error: unknown): DeliveryError {
  const { code, responseCode } = (error ?? {}) as SmtpError;
  const detail = typeof code === 'string' && /^[A-Z]{1,20}$/.test(code) ? code : undefined;
  if (typeof responseCode === 'number') {
    if (responseCode >= 500) return new DeliveryError('provider-rejected', { status: responseCode, detail });
    if (responseCode >= 400) return new DeliveryError('provider-unavailable', { status: responseCode, detail });
  }
  if (code === 'ETIMEDOUT') return new DeliveryError('provider-timeout');
  return new DeliveryError('provider-unavailable', { detail: detail ?? 'connection failed' });
}

/** The domain of a From address (`Name <no-reply@example.org>` → `example.org`), for Message-IDs. */
function domainOf(from: string): string {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  return match ? match[1]! : 'portcullis.invalid';
}

export function createSmtpEmailProvider(config: SmtpConfig & { from: string }, options: { timeoutMs: number }): Provider {
  const transport = nodemailer.createTransport({
    url: config.url,
    // nodemailer waits minutes by default; a stuck server must not hold a dispatcher.
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
  });
  return {
    name: SMTP_PROVIDER_NAME,
    async send(message, context) {
      try {
        // The outbox id as the Message-ID (RFC 5322 §3.6.4), as Notify is given it as its reference: an
        // operator can match a message in a mailbox or a mail log to its outbox row.
        const messageId = context?.reference ? `<${context.reference}@${domainOf(config.from)}>` : undefined;
        const info = await transport.sendMail({ from: config.from, to: message.to, subject: message.subject, text: message.text, ...(messageId ? { messageId } : {}) });
        return { providerMessageId: typeof info.messageId === 'string' ? info.messageId : undefined };
      } catch (error) {
        throw smtpError(error);
      }
    },
    close() {
      transport.close();
    },
  };
}
