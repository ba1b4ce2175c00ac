/**
 * The provider for each channel, as configured (src/config/delivery.ts has already checked that every
 * chosen provider has its credentials).
 */
import type { DeliveryConfig } from '../../config/delivery.js';
import type { ChannelKind, Provider } from '../types.js';
import { createNotifySmsProvider } from './notify-sms.js';
import { createOutboxProvider } from './outbox.js';
import { createSmtpEmailProvider } from './smtp-email.js';
import { createTwilioSmsProvider } from './twilio-sms.js';
import { createTwilioVoiceProvider } from './twilio-voice.js';

export interface ProviderOptions {
  /** How long one request to a provider may take. */
  timeoutMs: number;
}

function missing(option: string): Error {
  return new Error(`Delivery configuration has no ${option} settings; loadConfig should have refused it`);
}

export function createProviders(config: DeliveryConfig, options: ProviderOptions): Record<ChannelKind, Provider> {
  const outbox = createOutboxProvider();
  const sms = (): Provider => {
    switch (config.providers.sms) {
      case 'outbox':
        return outbox;
      case 'notify':
        if (!config.notify) throw missing('GOV.UK Notify');
        return createNotifySmsProvider(config.notify, options);
      case 'twilio':
        if (!config.twilio) throw missing('Twilio');
        return createTwilioSmsProvider(config.twilio, options);
    }
  };
  const voice = (): Provider => {
    switch (config.providers.voice) {
      case 'outbox':
        return outbox;
      case 'twilio':
        if (!config.twilio) throw missing('Twilio');
        return createTwilioVoiceProvider(config.twilio, options);
    }
  };
  const email = (): Provider => {
    switch (config.providers.email) {
      case 'outbox':
        return outbox;
      case 'smtp':
        if (!config.smtp) throw missing('SMTP');
        return createSmtpEmailProvider({ ...config.smtp, from: config.emailFrom }, options);
    }
  };
  return { sms: sms(), voice: voice(), email: email() };
}
