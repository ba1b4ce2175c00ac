/**
 * The device API described as OpenAPI 3.1 (served at /device/v1/openapi.json). Written by hand beside
 * docs/device-api.md; a test checks that every route the server registers under /device/v1 is here.
 */
import type { AppContext } from '../../app/context.js';
import { vapidKeys } from '../../app/push.js';

const error = { $ref: '#/components/schemas/Error' };
const signed = [{ deviceJws: [] }];

function op(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { summary, security: signed, responses, ...extra };
}

const jsonOf = (schema: unknown) => ({ content: { 'application/json': { schema } } });

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
        Error: { type: 'object', required: ['error', 'message'], properties: { error: { type: 'string' }, message: { type: 'string' }, serverTime: { type: 'number' } } },
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
            '401': jsonOf(error),
            '410': jsonOf(error),
          },
          { 'x-jws-payload': { activationCode: 'string', name: 'string (1–60)', pushSubscription: 'PushSubscription (optional)' } },
        ),
      },
      '/challenges': { get: op('Pending sign-in requests for this device', { '200': jsonOf({ type: 'object', properties: { challenges: { type: 'array', items: { $ref: '#/components/schemas/Challenge' } } } }), '401': jsonOf(error) }) },
      '/challenges/{id}': { get: op('One sign-in request', { '200': jsonOf({ $ref: '#/components/schemas/Challenge' }), '404': jsonOf(error) }) },
      '/challenges/{id}/decision': {
        post: op(
          'Approve (with the number typed), deny, or report a sign-in request',
          { '200': jsonOf({ type: 'object', properties: { status: { type: 'string' } } }), '400': jsonOf(error), '409': jsonOf(error), '410': jsonOf(error) },
          { 'x-jws-payload': { decision: 'approve | deny | report', number: 'string (to approve)' } },
        ),
      },
      '/events': { get: op('Server-sent events: `challenge` with {"id"} when a request for this device starts', { '200': { content: { 'text/event-stream': {} } } }) },
      '/devices': { get: op("The user's authenticator devices", { '200': jsonOf({ type: 'object' }) }) },
      '/device/name': { post: op('Rename this device', { '200': jsonOf({ type: 'object' }), '400': jsonOf(error) }, { 'x-jws-payload': { name: 'string (1–60)' } }) },
      '/device/remove': { post: op('Remove this device from the account', { '200': jsonOf({ type: 'object' }) }) },
      '/push-subscription': { post: op('Set or clear this device’s Web Push subscription', { '200': jsonOf({ type: 'object' }) }, { 'x-jws-payload': { pushSubscription: 'PushSubscription | null' } }) },
    },
  };
}
