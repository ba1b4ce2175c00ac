/**
 * The Portcullis Authenticator SDK: the device API client (docs/device-api.md), the device key, and the
 * code vault, for the PWA (bundled for the browser with esbuild) and the CLI authenticator alike.
 * Browser-safe: nothing here imports Node's modules (src/authenticator/portable.test.ts checks).
 * See docs/authenticator.md.
 */
export {
  AuthenticatorClient,
  API_PREFIX,
  DEVICE_NAME_MAX,
  checkDeviceName,
  pair,
  parsePairingUrl,
  retryAfterToMs,
  serverTimeToMs,
  type Challenge,
  type ChallengeStatus,
  type KnownChallengeStatus,
  type ClientOptions,
  type Decision,
  type DecisionInput,
  type DeviceEvent,
  type DeviceInfo,
  type EventsOptions,
  type FetchFunction,
  type Paired,
  type PairingLink,
  type PairingResult,
  type PairOptions,
  type PushSubscriptionJson,
  type TransportOptions,
} from './client.js';
export {
  MemoryKeyStore,
  exportPrivateJwk,
  exportPublicJwk,
  generateDeviceKey,
  importPrivateJwk,
  isPrivateJwk,
  type DeviceKeyStore,
  type GenerateOptions,
  type PrivateJwk,
  type PublicJwk,
} from './device-key.js';
export { AuthenticatorError, clientErrors, isAuthenticatorError, isRemovalRefused, type ClientErrorCode, type ErrorDetails, type ServerErrorCode } from './errors.js';
export { AUTHORIZATION_SCHEME, DEVICE_JWS_TYPE, authorizationHeader, newJti, signDeviceRequest, type DeviceJwsHeader, type DeviceJwsPayload, type SignRequestInput } from './jws.js';
export { EventStreamParser, type ServerSentEvent } from './sse.js';
export {
  MIN_PASSPHRASE_LENGTH,
  VAULT_FORMAT,
  VAULT_PBKDF2_ITERATIONS,
  VAULT_VERSION,
  checkOtpAccount,
  codeFor,
  exportVault,
  importVault,
  mergeIntoVault,
  newVaultEntry,
  normaliseSecret,
  parseOtpauthUri,
  toOtpauthUri,
  type CurrentCode,
  type ExportOptions,
  type MergeResult,
  type OtpAccount,
  type OtpAlgorithm,
  type VaultEntry,
  type VaultEnvelope,
} from './vault.js';
export { backoffDelay, isPermanentError, watchChallenges, type BackoffOptions, type WatchOptions } from './watch.js';
