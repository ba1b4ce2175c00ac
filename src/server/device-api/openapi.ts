/**
 * The device API described as OpenAPI 3.1 (served at /device/v1/openapi.json). Written by hand beside
 * docs/device-api.md; a test checks that every route the server registers under /device/v1 is here.
 */
import type { AppContext } from '../../app/context.js';
import { vapidKeys } from '../../app/methods/push/shared.js';

const error = { $ref: '#/components/schemas/Error' };
const signed = [{ deviceJws: [] }];

function op(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { summary, security: signed, responses, ...extra };
}

const jsonOf = (schema: unknown) => ({ content: { 'application/json': { schema } } });

/** Every paired device's request may be refused for its signature, or for going past the request allowance. */
const refusals = {
  '401': { description: 'device-signature-invalid, device-clock-skew (with serverTime), device-replay or device-unknown', ...jsonOf(error) },
  '429': {
    description: 'rate-limited: more than DEVICE_API_REQUESTS_PER_MINUTE signed requests from this device this minute',
    headers: { 'Retry-After': { description: 'Whole seconds until the minute ends (RFC 9110 §10.2.3)', schema: { type: 'integer', minimum: 1 } } },
    ...jsonOf(error),
  },
};

/** What a device whose pairing is not confirmed (its test request not yet approved) may not do. */
const pendingRefusal = { '403': { description: 'device-pending: approve the test request first', ...jsonOf(error) } };

/** A paired device's request: its answers, and the refusals every such request may get. */
function deviceOp(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return op(summary, { ...refusals, ...responses }, extra);
}

export function openApiDocument(ctx: AppContext) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Portcullis device API',
      version: '1',
      description:
        'For the Portcullis Authenticator (web app and CLI). Every request carries a compact JWS (ES256) in `Authorization: PortcullisDevice <jws>`, ' +
        'with `iat` (±60 s), a one-time `jti`, `htm` and `htu`, and the request fields in its payload. See docs/device-api.md.',
    },
    servers: [{ url: new URL('/device/v1', ctx.config.publicUrl).toString() }],
    'x-vapid-public-key': vapidKeys(ctx).publicKey,
    components: {
      securitySchemes: {
        deviceJws: {
          type: 'http',
          scheme: 'PortcullisDevice',
          description: 'A compact JWS signed by the device key; for pairing the protected header carries the public key as `jwk` instead of `kid`.',
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: { type: 'string', description: 'A stable code (docs/device-api.md)' },
            message: { type: 'string', description: 'Plain English, safe to show' },
            field: { type: 'string', description: 'The request field at fault, when one is: jwk, kid, name, pushSubscription, decision, number' },
            reason: { type: 'string', description: 'With method-last-compliant: why, as a sentence naming the policy requirement' },
            serverTime: { type: 'integer', description: 'With device-clock-skew: the server time, whole seconds since the epoch' },
          },
        },
        Challenge: {
          type: 'object',
          required: ['id', 'status', 'purpose', 'account', 'app', 'createdAt', 'expiresAt', 'numberLength'],
          properties: {
            id: { type: 'string' },
            status: { enum: ['pending', 'approved', 'denied', 'reported', 'wrong-number', 'expired', 'used'] },
            purpose: { enum: ['sign-in', 'test'] },
            account: { type: 'object', properties: { email: { type: 'string' } } },
            app: { type: 'string' },
            ip: { type: ['string', 'null'] },
            location: { type: ['string', 'null'] },
            createdAt: { type: 'string', format: 'date-time' },
            expiresAt: { type: 'string', format: 'date-time' },
            numberLength: { type: 'integer', description: 'How many digits the user must type; the number itself is only on the sign-in page.' },
          },
        },
        PushSubscription: {
          type: 'object',
          required: ['endpoint', 'keys'],
          properties: { endpoint: { type: 'string', format: 'uri' }, keys: { type: 'object', properties: { p256dh: { type: 'string' }, auth: { type: 'string' } } } },
        },
      },
    },
    paths: {
      '/pair': {
        post: op(
          'Pair a device with the activation code from Security info',
          {
            '201': jsonOf({
              type: 'object',
              properties: {
                deviceId: { type: 'string' },
                account: { type: 'object', properties: { email: { type: 'string' }, organisation: { type: 'string' } } },
                server: { type: 'object', properties: { origin: { type: 'string' }, name: { type: 'string' } } },
                testChallengeId: { type: 'string' },
              },
            }),
            '400': { description: 'device-name-invalid (field: name), push-subscription-invalid (field: pushSubscription)', ...jsonOf(error) },
            '401': { description: 'device-signature-invalid (field: jwk when the key is not a P-256 public key), device-clock-skew, device-replay', ...jsonOf(error) },
            '410': jsonOf(error),
          },
          { 'x-jws-payload': { activationCode: 'string', name: 'string (1–60)', pushSubscription: 'PushSubscription (optional)' } },
        ),
      },
      '/challenges': {
        get: deviceOp('Pending sign-in requests for this device (only its test request while its pairing is not confirmed)', {
          '200': jsonOf({ type: 'object', properties: { challenges: { type: 'array', items: { $ref: '#/components/schemas/Challenge' } } } }),
        }),
      },
      '/challenges/{id}': { get: deviceOp('One sign-in request', { '200': jsonOf({ $ref: '#/components/schemas/Challenge' }), ...pendingRefusal, '404': jsonOf(error) }) },
      '/challenges/{id}/decision': {
        post: deviceOp(
          'Approve (with the number typed), deny, or report a sign-in request',
          {
            '200': jsonOf({ type: 'object', properties: { status: { type: 'string' } } }),
            '400': { description: 'wrong-number, number-missing or number-invalid (field: number), request-invalid (field: decision)', ...jsonOf(error) },
            ...pendingRefusal,
            '404': jsonOf(error),
            '409': jsonOf(error),
            '410': jsonOf(error),
          },
          { 'x-jws-payload': { decision: 'approve | deny | report', number: 'string of digits (to approve; not read otherwise)' } },
        ),
      },
      '/events': { get: deviceOp('Server-sent events: `challenge` with {"id"} when a request for this device starts', { '200': { content: { 'text/event-stream': {} } }, ...pendingRefusal }) },
      '/devices': { get: deviceOp("The user's authenticator devices", { '200': jsonOf({ type: 'object' }), ...pendingRefusal }) },
      '/device/name': { post: deviceOp('Rename this device', { '200': jsonOf({ type: 'object' }), '400': jsonOf(error), ...pendingRefusal }, { 'x-jws-payload': { name: 'string (1–60)' } }) },
      '/device/remove': {
        post: deviceOp('Remove this device from the account', {
          '200': jsonOf({ type: 'object' }),
          ...pendingRefusal,
          '409': { description: "method-last-compliant: this device is the person's only method meeting an enforced requirement of the method policy", ...jsonOf(error) },
        }),
      },
      '/push-subscription': {
        post: deviceOp('Set or clear this device’s Web Push subscription', { '200': jsonOf({ type: 'object' }), '400': jsonOf(error), ...pendingRefusal }, { 'x-jws-payload': { pushSubscription: 'PushSubscription | null' } }),
      },
    },
  };
}
