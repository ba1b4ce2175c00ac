/**
 * The delivery options (SMS_PROVIDER … DELIVERY_MAX_ATTEMPTS, DEVELOPMENT_PAGES) turned into typed
 * configuration, with the checks that need several options at once: a chosen provider must have its
 * credentials, and provider addresses must be https (they carry API keys) unless they are this machine.
 */
import { ConfigError } from './config-error.js';
import type { RawOptions } from './schema.js';

export type SmsProviderName = RawOptions['SMS_PROVIDER'];
export type VoiceProviderName = RawOptions['VOICE_PROVIDER'];
export type EmailProviderName = RawOptions['EMAIL_PROVIDER'];

export interface NotifyConfig {
  /** The whole API key, `{name}-{service id}-{secret}`, as Notify issues it. */
  apiKey: string;
  smsTemplateId: string;
  baseUrl: string;
}

export interface TwilioConfig {
  accountSid: string;
  authToken: string;
  /** The sending number (E.164), or an alphanumeric sender id for text messages only. */
  from: string;
  baseUrl: string;
}

export interface SmtpConfig {
  /** smtp://user:pass@host:587 or smtps://…:465, with nodemailer's query options. */
  url: string;
}

export interface DeliveryConfig {
  providers: { sms: SmsProviderName; voice: VoiceProviderName; email: EmailProviderName };
  /** Present when a channel uses GOV.UK Notify. */
  notify: NotifyConfig | null;
  /** Present when a channel uses Twilio. */
  twilio: TwilioConfig | null;
  /** Present when email goes over SMTP. */
  smtp: SmtpConfig | null;
  emailFrom: string;
  /** Attempts per message before it becomes a dead letter. */
  maxAttempts: number;
  /** How long one send may take (DELIVERY_SEND_TIMEOUT); a claim lasts four times this. */
  sendTimeoutMs: number;
}

// A Notify API key ends with the service id and the secret, both UUIDs
// (https://docs.notifications.service.gov.uk/rest-api.html#authorisation-header).
const NOTIFY_KEY = /^.+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TWILIO_ACCOUNT_SID = /^AC[0-9a-fA-F]{32}$/;
const E164 = /^\+[1-9]\d{6,14}$/;
// Twilio alphanumeric sender ids: up to 11 of A-Z, a-z, 0-9 and space, at least one letter.
const ALPHANUMERIC_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;

function required(raw: RawOptions, option: keyof RawOptions, because: string): string {
  const value = raw[option];
  if (typeof value !== 'string' || value === '') throw new ConfigError(option, `must be set ${because}`);
  return value;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** API keys and tokens travel in these requests: plain http only to this machine (test servers). */
function checkProviderUrl(option: keyof RawOptions, text: string): string {
  const url = new URL(text);
  if (url.protocol !== 'https:' && !LOOPBACK.has(url.hostname)) throw new ConfigError(option, 'must use https unless it is localhost');
  return text.replace(/\/+$/, '');
}

export function parseDeliveryConfig(raw: RawOptions): DeliveryConfig {
  const providers = { sms: raw.SMS_PROVIDER, voice: raw.VOICE_PROVIDER, email: raw.EMAIL_PROVIDER };

  let notify: NotifyConfig | null = null;
  if (providers.sms === 'notify') {
    const because = 'when SMS_PROVIDER is notify';
    const apiKey = required(raw, 'NOTIFY_API_KEY', because);
    if (!NOTIFY_KEY.test(apiKey)) throw new ConfigError('NOTIFY_API_KEY', 'must be a GOV.UK Notify API key (name-serviceid-secret)');
    const smsTemplateId = required(raw, 'NOTIFY_SMS_TEMPLATE_ID', because);
    if (!UUID.test(smsTemplateId)) throw new ConfigError('NOTIFY_SMS_TEMPLATE_ID', 'must be the template’s id (a UUID)');
    notify = { apiKey, smsTemplateId, baseUrl: checkProviderUrl('NOTIFY_BASE_URL', raw.NOTIFY_BASE_URL) };
  }

  let twilio: TwilioConfig | null = null;
  if (providers.sms === 'twilio' || providers.voice === 'twilio') {
    const because = `when ${providers.sms === 'twilio' ? 'SMS_PROVIDER' : 'VOICE_PROVIDER'} is twilio`;
    const accountSid = required(raw, 'TWILIO_ACCOUNT_SID', because);
    if (!TWILIO_ACCOUNT_SID.test(accountSid)) throw new ConfigError('TWILIO_ACCOUNT_SID', 'must be a Twilio account SID (AC followed by 32 hexadecimal digits)');
    const authToken = required(raw, 'TWILIO_AUTH_TOKEN', because);
    const from = required(raw, 'TWILIO_FROM', because);
    if (providers.voice === 'twilio' ? !E164.test(from) : !E164.test(from) && !ALPHANUMERIC_SENDER.test(from)) {
      throw new ConfigError(
        'TWILIO_FROM',
        providers.voice === 'twilio'
          ? 'must be a phone number in E.164 form, like +447700900123 (calls need a number)'
          : 'must be a phone number in E.164 form, like +447700900123, or an alphanumeric sender id of up to 11 characters',
      );
    }
    twilio = { accountSid, authToken, from, baseUrl: checkProviderUrl('TWILIO_BASE_URL', raw.TWILIO_BASE_URL) };
  }

  let smtp: SmtpConfig | null = null;
  if (providers.email === 'smtp') {
    const url = required(raw, 'SMTP_URL', 'when EMAIL_PROVIDER is smtp');
    if (!/^smtps?:\/\/[^/]/.test(url)) throw new ConfigError('SMTP_URL', 'must start with smtp:// or smtps://');
    smtp = { url };
  }

  if (!/@[^\s@>]+\.?[^\s@>]*>?$/.test(raw.EMAIL_FROM)) {
    throw new ConfigError('EMAIL_FROM', 'must be an email address, optionally with a name: Portcullis <no-reply@example.org>');
  }

  return { providers, notify, twilio, smtp, emailFrom: raw.EMAIL_FROM, maxAttempts: raw.DELIVERY_MAX_ATTEMPTS, sendTimeoutMs: raw.DELIVERY_SEND_TIMEOUT * 1000 };
}
