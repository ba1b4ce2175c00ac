/**
 * Text messages through Twilio's Messages resource
 * (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
 */
import type { TwilioConfig } from '../../config/delivery.js';
import type { Provider } from '../types.js';
import { createTwilioClient, TWILIO_PROVIDER_NAME } from './twilio-api.js';

export function createTwilioSmsProvider(config: TwilioConfig, options: { timeoutMs: number }): Provider {
  const client = createTwilioClient(config, options);
  return {
    name: TWILIO_PROVIDER_NAME,
    async send(message) {
      const { sid } = await client.create('Messages', { To: message.to, From: config.from, Body: message.text });
      return { providerMessageId: sid };
    },
  };
}
