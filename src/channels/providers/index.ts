/**
 * The provider for each channel, as configured (src/config/delivery.ts has already checked that every
 * chosen provider has its credentials).
 *
 * Real providers are loaded on their first message: every CLI verb builds a context (and so a
 * delivery), and nodemailer and the Notify client (with its HTTP and JWT libraries) would add about a
 * quarter of a second to each of them for nothing.
 */
import type { DeliveryConfig } from '../../config/delivery.js';
import type { ChannelKind, Provider } from '../types.js';
import { createOutboxProvider } from './outbox.js';

export interface ProviderOptions {
  /** How long one request to a provider may take. */
  timeoutMs: number;
}

/**
 * A provider whose module is imported when it first sends (a failed import is tried again next time).
 * Its name is the configured value (SMS_PROVIDER=notify: 'notify'), the same as the module's own.
 */
function lazy(name: string, load: () => Promise<Provider>): Provider {
  let loaded: Promise<Provider> | undefined;
  return {
    name,
    async send(message, context) {
      loaded ??= load().catch((error: unknown) => {
        loaded = undefined;
        throw error;
      });
      return (await loaded).send(message, context);
    },
    async close() {
      if (loaded) await (await loaded.catch(() => undefined))?.close?.();
    },
  };
}

function missing(option: string): Error {
  return new Error(`Delivery configuration has no ${option} settings; loadConfig should have refused it`);
}

export function createProviders(config: DeliveryConfig, options: ProviderOptions): Record<ChannelKind, Provider> {
  const outbox = createOutboxProvider();
  const { notify, twilio, smtp } = config;

  const sms = (): Provider => {
    switch (config.providers.sms) {
      case 'outbox':
        return outbox;
      case 'notify':
        if (!notify) throw missing('GOV.UK Notify');
        return lazy(config.providers.sms, async () => (await import('./notify-sms.js')).createNotifySmsProvider(notify, options));
      case 'twilio':
        if (!twilio) throw missing('Twilio');
        return lazy(config.providers.sms, async () => (await import('./twilio-sms.js')).createTwilioSmsProvider(twilio, options));
    }
  };
  const voice = (): Provider => {
    switch (config.providers.voice) {
      case 'outbox':
        return outbox;
      case 'twilio':
        if (!twilio) throw missing('Twilio');
        return lazy(config.providers.voice, async () => (await import('./twilio-voice.js')).createTwilioVoiceProvider(twilio, options));
    }
  };
  const email = (): Provider => {
    switch (config.providers.email) {
      case 'outbox':
        return outbox;
      case 'smtp':
        if (!smtp) throw missing('SMTP');
        return lazy(config.providers.email, async () => (await import('./smtp-email.js')).createSmtpEmailProvider({ ...smtp, from: config.emailFrom }, options));
    }
  };
  return { sms: sms(), voice: voice(), email: email() };
}
