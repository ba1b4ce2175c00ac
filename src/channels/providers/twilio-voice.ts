/**
 * Calls that read out a code, through Twilio's Calls resource with inline TwiML
 * (https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource,
 * https://www.twilio.com/docs/voice/twiml/say).
 */
import type { TwilioConfig } from '../../config/delivery.js';
import type { OutgoingMessage, Provider } from '../types.js';
import { createTwilioClient, TWILIO_PROVIDER_NAME } from './twilio-api.js';

export const VOICE = { voice: 'alice', language: 'en-GB' } as const;

/** XML 1.0 §2.4: the five characters that must be escaped in text and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** "1, 2, 3, 4, 5, 6": separated, so each character is read on its own rather than as "one hundred and twenty-three thousand…". */
export function spellOut(code: string): string {
  return [...code.toUpperCase()].join(', ');
}

/**
 * The call's script. With a code, the text is read with the code spelt out (or followed by it, if the
 * text does not contain it), then after a pause the code once more: people reach for a pen after the
 * first reading. Without a code, the text is read once.
 */
export function buildVoiceTwiml(message: Pick<OutgoingMessage, 'text' | 'code'>): string {
  const say = (text: string) => `<Say voice="${VOICE.voice}" language="${VOICE.language}">${escapeXml(text)}</Say>`;
  if (!message.code) return `<?xml version="1.0" encoding="UTF-8"?><Response>${say(message.text)}</Response>`;
  const spoken = spellOut(message.code);
  const first = message.text.includes(message.code) ? message.text.split(message.code).join(spoken) : `${message.text} Your code is ${spoken}.`;
  return `<?xml version="1.0" encoding="UTF-8"?><Response>${say(first)}<Pause length="1"/>${say(`Again, your code is ${spoken}.`)}</Response>`;
}

export function createTwilioVoiceProvider(config: TwilioConfig, options: { timeoutMs: number }): Provider {
  const client = createTwilioClient(config, options);
  return {
    name: TWILIO_PROVIDER_NAME,
    async send(message) {
      const { sid } = await client.create('Calls', { To: message.to, From: config.from, Twiml: buildVoiceTwiml(message) });
      return { providerMessageId: sid };
    },
  };
}
