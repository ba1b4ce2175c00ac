/** The parts of `http_ece` (Encrypted Content-Encoding, RFC 8188 / RFC 8291) the tests use. */
declare module 'http_ece' {
  import type { ECDH } from 'node:crypto';
  interface Params {
    version: 'aes128gcm';
    privateKey?: ECDH;
    dh?: Buffer;
    authSecret?: Buffer;
    salt?: Buffer;
    rs?: number;
  }
  const ece: {
    encrypt(buffer: Buffer, params: Params): Buffer;
    decrypt(buffer: Buffer, params: Params): Buffer;
  };
  export default ece;
}
