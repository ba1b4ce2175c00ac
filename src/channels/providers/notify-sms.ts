/**
 * Text messages through GOV.UK Notify, with its official client (notifications-node-client). Notify
 * sends templates, not free text: the template named by NOTIFY_SMS_TEMPLATE_ID must be exactly
 * `((body))`, and the whole message goes in the `body` personalisation
 * (https://docs.notifications.service.gov.uk/node.html#send-a-text-message). The outbox id is the
 * `reference`, so Notify's delivery reports can be matched to outbox rows.
 *
 * The client authenticates each request with a JWT (HS256, signed with the secret half of the API key,
 * `iss` the service id, `iat` now), as Notify's API requires.
 */
import { NotifyClient } from 'notifications-node-client';
import type { NotifyConfig } from '../../config/delivery.js';
import { DeliveryError, deliveryErrorForStatus } from '../errors.js';
import type { Provider } from '../types.js';

export const NOTIFY_PROVIDER_NAME = 'notify';

/** The parts of an axios error (the client's HTTP library) that are safe to read. */
interface HttpClientError {
  code?: string;
  response?: { status?: number; data?: { errors?: Array<{ error?: unknown }> } };
}

/** Notify's errors are { status_code, errors: [{ error: 'BadRequestError', message }] }; only the error's type is kept. */
function notifyError(error: unknown): DeliveryError {
  const { code, response } = (error ?? {}) as HttpClientError;
  if (typeof response?.status === 'number') {
    const kind = response.data?.errors?.[0]?.error;
    return deliveryErrorForStatus(response.status, typeof kind === 'string' && /^\w{1,60}$/.test(kind) ? `Notify ${kind}` : undefined);
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return new DeliveryError('provider-timeout');
  return new DeliveryError('provider-unavailable', { detail: typeof code === 'string' ? code : 'network error' });
}

/**
 * The client's HTTP library waits for ever by default. `setClient` (public) takes an instance of it; the
 * library itself is reached through the client, so Portcullis does not depend on it directly.
 */
function setTimeoutOn(client: NotifyClient, timeoutMs: number): void {
  const http = (client as unknown as { apiClient?: { restClient?: { create?: (config: { timeout: number }) => unknown } } }).apiClient?.restClient;
  if (typeof http?.create === 'function') client.setClient(http.create({ timeout: timeoutMs }) as Parameters<NotifyClient['setClient']>[0]);
}

export function createNotifySmsProvider(config: NotifyConfig, options: { timeoutMs: number }): Provider {
  const client = new NotifyClient(config.baseUrl, config.apiKey);
  setTimeoutOn(client, options.timeoutMs);
  return {
    name: NOTIFY_PROVIDER_NAME,
    async send(message, context) {
      try {
        const response = await client.sendSms(config.smsTemplateId, message.to, {
          personalisation: { body: message.text },
          ...(context ? { reference: context.reference } : {}),
        });
        return { providerMessageId: response.data.id };
      } catch (error) {
        throw notifyError(error);
      }
    },
  };
}
