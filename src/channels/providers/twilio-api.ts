/**
 * Twilio's REST API (2010-04-01), called with `fetch` rather than the `twilio` package: two form posts
 * are all we need, and a configurable base address lets tests point at a local server
 * (docs/dependencies.md). Authentication is HTTP Basic with the account SID and auth token
 * (https://www.twilio.com/docs/usage/requests-to-twilio).
 */
import type { TwilioConfig } from '../../config/delivery.js';
import { DeliveryError } from '../errors.js';
import { callApi, checkStatus } from './http.js';

export const TWILIO_PROVIDER_NAME = 'twilio';

export interface TwilioClient {
  /** POSTs form fields to /2010-04-01/Accounts/{sid}/{resource}.json and returns the created resource's sid. */
  create(resource: 'Messages' | 'Calls', fields: Record<string, string>): Promise<{ sid?: string }>;
}

/** Twilio's error body is { code, message, more_info, status }; only the numeric code is kept (the message may echo the number). */
function twilioDetail(body: unknown): string | undefined {
  const code = (body as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? `Twilio error ${code}` : undefined;
}

export function createTwilioClient(config: TwilioConfig, options: { timeoutMs: number }): TwilioClient {
  const authorization = `Basic ${Buffer.from(`${config.accountSid}:${config.authToken}`).toString('base64')}`;
  return {
    async create(resource, fields) {
      const url = `${config.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(config.accountSid)}/${resource}.json`;
      const response = await callApi(url, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(fields).toString(),
        timeoutMs: options.timeoutMs,
      });
      checkStatus(response, twilioDetail);
      const sid = (response.body as { sid?: unknown } | null)?.sid;
      if (sid !== undefined && typeof sid !== 'string') throw new DeliveryError('provider-unavailable', { detail: 'unexpected answer' });
      return { sid };
    },
  };
}
