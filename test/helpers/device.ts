/**
 * A minimal device for tests, signing requests per docs/device-api.md with `jose` — independent of the
 * client SDK, so the server is checked against the contract, not against its own client.
 */
import { randomBytes } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export interface SignOptions {
  jti?: string;
  pairing?: boolean;
  iat?: number;
  /** For pairing: a `jwk` header other than this device's public key (a malformed one, for tests of refusals). */
  headerJwk?: unknown;
}

export class TestDevice {
  deviceId = '';
  private keys!: { privateKey: CryptoKey; publicKey: CryptoKey };
  private jwk!: JWK;
  /** The device's clock in milliseconds (a test that moves the server's clock moves this one too). */
  clock: () => number = () => Date.now();

  private constructor(readonly app: FastifyInstance | null) {}

  /** `app` for requests through inject(); without it, sign requests and send them yourself. */
  static async create(app: FastifyInstance | null = null): Promise<TestDevice> {
    const device = new TestDevice(app);
    device.keys = (await generateKeyPair('ES256')) as { privateKey: CryptoKey; publicKey: CryptoKey };
    const { kty, crv, x, y } = await exportJWK(device.keys.publicKey);
    device.jwk = { kty, crv, x, y };
    return device;
  }

  async sign(method: string, path: string, fields: Record<string, unknown> = {}, options: SignOptions = {}): Promise<string> {
    const payload = {
      iat: options.iat ?? Math.floor(this.clock() / 1000),
      jti: options.jti ?? randomBytes(16).toString('base64url'),
      htm: method,
      htu: path,
      ...fields,
    };
    const header = options.pairing
      ? { alg: 'ES256', typ: 'portcullis-device+jwt', jwk: (options.headerJwk === undefined ? this.jwk : options.headerJwk) as JWK }
      : { alg: 'ES256', typ: 'portcullis-device+jwt', kid: this.deviceId };
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader(header).sign(this.keys.privateKey);
  }

  async request(method: 'GET' | 'POST', path: string, fields: Record<string, unknown> = {}, options: SignOptions & { jws?: string } = {}): Promise<LightMyRequestResponse> {
    const jws = options.jws ?? (await this.sign(method, path, fields, options));
    if (!this.app) throw new Error('this test device has no app to send to');
    return this.app.inject({ method, url: path, headers: { authorization: `PortcullisDevice ${jws}` }, remoteAddress: '198.51.100.20' });
  }

  /** The public key, as the server stores it. */
  get publicJwk(): JWK {
    return this.jwk;
  }

  /** Pairs with the activation code in a pairing URL (`…/authenticator/#pair=CODE`). */
  async pair(pairingUrl: string, name = 'Test phone', extra: Record<string, unknown> = {}, options: Pick<SignOptions, 'headerJwk'> = {}): Promise<LightMyRequestResponse> {
    const code = new URL(pairingUrl).hash.replace(/^#pair=/, '');
    const response = await this.request('POST', '/device/v1/pair', { activationCode: code, name, ...extra }, { ...options, pairing: true });
    if (response.statusCode === 201) this.deviceId = (response.json() as { deviceId: string }).deviceId;
    return response;
  }

  async pending(): Promise<Array<{ id: string; status: string; purpose: string; app: string; ip: string | null; numberLength: number }>> {
    const response = await this.request('GET', '/device/v1/challenges');
    if (response.statusCode !== 200) throw new Error(`pending: ${response.statusCode} ${response.body}`);
    return (response.json() as { challenges: Array<{ id: string; status: string; purpose: string; app: string; ip: string | null; numberLength: number }> }).challenges;
  }

  /** `number` is normally the digits typed; anything else is for tests of refusals. */
  decide(challengeId: string, decision: 'approve' | 'deny' | 'report', number?: unknown): Promise<LightMyRequestResponse> {
    return this.request('POST', `/device/v1/challenges/${challengeId}/decision`, { decision, ...(number === undefined ? {} : { number }) });
  }
}
