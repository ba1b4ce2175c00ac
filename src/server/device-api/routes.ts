/**
 * The device API (/device/v1, docs/device-api.md): every request is authenticated by a signed JWS in
 * the Authorization header, not by cookies, so CSRF protection does not apply (`config.csrf: false`);
 * answers are JSON (`surface: 'api'`, a CSP of default-src 'none'). Each route names what it does
 * (a `DeviceAction`), which decides whether a device whose pairing is not confirmed may do it.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { formatErrorMessage, isPortcullisError } from '../../core/errors.js';
import { busTopics } from '../../app/methods/push/shared.js';
import { challengeForDevice, pendingForDevice } from '../../app/methods/push/challenges.js';
import { decideFromDevice } from '../../app/methods/push/decisions.js';
import { pairDevice, verifyDeviceRequest, type DeviceRequest } from '../../app/methods/push/device-requests.js';
import { devicesOf, removeDevice, renameDevice, setDeviceSubscription } from '../../app/methods/push/devices.js';
import { openApiDocument } from './openapi.js';

const config = { surface: 'api' as const, csrf: false };

function deviceRequest(request: FastifyRequest): DeviceRequest {
  const authorization = request.headers.authorization;
  return { authorization: typeof authorization === 'string' ? authorization : undefined, method: request.method, path: request.url.split('?')[0]!, ip: request.ip };
}

/** Server-sent events on a hijacked reply (Fastify's hooks do not run for it, so headers are set here). */
export function openEventStream(reply: FastifyReply, onClose: () => void): { send(event: string, data: string): void; comment(text: string): void; end(): void } {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-content-type-options': 'nosniff',
    // Tell proxies such as nginx not to buffer the stream.
    'x-accel-buffering': 'no',
  });
  raw.write(': open\n\n');
  let closed = false;
  const end = () => {
    if (closed) return;
    closed = true;
    onClose();
    raw.end();
  };
  raw.on('close', end);
  return {
    send(event, data) {
      if (!closed) raw.write(`event: ${event}\ndata: ${data}\n\n`);
    },
    comment(text) {
      if (!closed) raw.write(`: ${text}\n\n`);
    },
    end,
  };
}

/**
 * The device API's refusals (docs/device-api.md, "Errors"): the catalogue's code and message, the
 * request field at fault (`field`), the policy's reason on its own (`reason`, so an app can put it in
 * its own words), the server's time with `device-clock-skew`, and `Retry-After` (RFC 9110 §10.2.3)
 * when waiting cures it. Anything that is not one of ours goes on to the app's handler, which logs it
 * and answers 500.
 */
async function answerDeviceError(ctx: AppContext, error: FastifyError, reply: FastifyReply): Promise<FastifyReply> {
  if (!isPortcullisError(error)) throw error;
  const { field, reason, retryAfterSeconds } = error.params;
  if (typeof retryAfterSeconds === 'number') reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(error.status).send({
    error: error.code,
    message: formatErrorMessage(error.code, error.params),
    ...(typeof field === 'string' ? { field } : {}),
    ...(typeof reason === 'string' ? { reason } : {}),
    // Whole seconds since the epoch, like `iat`, so the device can correct its clock and retry.
    ...(error.code === 'device-clock-skew' ? { serverTime: Math.floor(ctx.clock().getTime() / 1000) } : {}),
  });
}

export async function deviceApiRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.setErrorHandler((error: FastifyError, _request, reply) => answerDeviceError(ctx, error, reply));

  app.get('/device/v1/openapi.json', { config }, async () => openApiDocument(ctx));

  app.post('/device/v1/pair', { config }, async (request, reply) => reply.code(201).send(await pairDevice(ctx, deviceRequest(request))));

  app.get('/device/v1/challenges', { config }, async (request) => {
    const device = await verifyDeviceRequest(ctx, deviceRequest(request), 'list-challenges');
    return { challenges: await pendingForDevice(ctx, device) };
  });

  app.get<{ Params: { id: string } }>('/device/v1/challenges/:id', { config }, async (request) => {
    const device = await verifyDeviceRequest(ctx, deviceRequest(request), 'read-challenge');
    return challengeForDevice(ctx, device, request.params.id);
  });

  app.post<{ Params: { id: string } }>('/device/v1/challenges/:id/decision', { config }, async (request) => {
    return decideFromDevice(ctx, deviceRequest(request), request.params.id, request.ip);
  });

  app.get('/device/v1/events', { config }, async (request, reply) => {
    const device = await verifyDeviceRequest(ctx, deviceRequest(request), 'events');
    let unsubscribe = () => {};
    let heartbeat: NodeJS.Timeout | undefined;
    const stream = openEventStream(reply, () => {
      unsubscribe();
      clearInterval(heartbeat);
    });
    unsubscribe = ctx.bus.subscribe(busTopics.device(device.method.id), (message) => stream.send('challenge', message));
    heartbeat = setInterval(() => stream.comment('keep-alive'), 25_000);
    heartbeat.unref();
    // Challenges started before the stream opened are announced at once.
    for (const challenge of await pendingForDevice(ctx, device)) stream.send('challenge', JSON.stringify({ id: challenge.id }));
  });

  app.get('/device/v1/devices', { config }, async (request) => {
    const device = await verifyDeviceRequest(ctx, deviceRequest(request), 'list-devices');
    return { devices: await devicesOf(ctx, device) };
  });

  app.post('/device/v1/device/name', { config }, async (request) => renameDevice(ctx, await verifyDeviceRequest(ctx, deviceRequest(request), 'rename')));

  app.post('/device/v1/device/remove', { config }, async (request) => {
    await removeDevice(ctx, await verifyDeviceRequest(ctx, deviceRequest(request), 'remove'), request.ip);
    return { removed: true };
  });

  app.post('/device/v1/push-subscription', { config }, async (request) => {
    await setDeviceSubscription(ctx, await verifyDeviceRequest(ctx, deviceRequest(request), 'push-subscription'));
    return { ok: true };
  });
}
