/**
 * Passkeys – the WebAuthn relying party (W3C WebAuthn Level 3). This file only decides: it makes the options a
 * browser needs and checks what the browser sends back. It keeps no state: the caller issues and remembers
 * challenges, looks the credential up, and persists the counter and flags this file returns (the shape
 * SimpleWebAuthn itself uses). Cryptography and CBOR are left to @simplewebauthn/server; the checks the library
 * does not make, or makes in an order we cannot use, are made here and say which step of §7.1/§7.2 they are.
 *
 * Nothing here throws for what a browser (or an attacker) sends: every failure is a refusal with a reason code.
 */
import { createRequire } from 'node:module';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { ParsedAuthenticatorData } from '@simplewebauthn/server/helpers';

/**
 * The library, loaded on the first ceremony checked: importing it takes about 0.3 s (its ASN.1 and X.509
 * code), which every CLI command and the server's start would otherwise pay for a passkey nobody uses yet.
 */
type Library = typeof import('@simplewebauthn/server') & { helpers: typeof import('@simplewebauthn/server/helpers') };
let loaded: Library | undefined;
async function library(): Promise<Library> {
  loaded ??= { ...(await import('@simplewebauthn/server')), helpers: await import('@simplewebauthn/server/helpers') };
  return loaded;
}

/** COSE_Key's `alg` label (RFC 9052 §7.1). */
const COSE_ALG = 3;
const fromBase64url = (text: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(text, 'base64url'));
const toBase64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

// ---------------------------------------------------------------------------------------------------------------
// Relying party and policy

export interface RelyingParty {
  /** The RP ID: a registrable domain; credentials are scoped to it (§5.1.4, "RP ID"). */
  id: string;
  /** Shown by the browser and the authenticator. */
  name: string;
  /** The one origin the ceremonies may run on; compared exactly (§13.4.9). */
  origin: string;
}

/** The RP ID is the host of the public address, so passkeys survive a change of port or path. */
export function relyingPartyFor(publicUrl: string, name: string): RelyingParty {
  const url = new URL(publicUrl);
  return { id: url.hostname, name, origin: url.origin };
}

/**
 * COSE algorithm ids we accept, most preferred first (§5.4 pubKeyCredParams is ordered). Ed25519 and ES256 are
 * what platform and roaming authenticators make; RS256 is kept for Windows Hello on older TPMs.
 */
export const ALLOWED_ALGORITHMS: readonly number[] = [-8, -7, -257];

/** Long enough to find a phone or a security key; the same window bounds how long a challenge is honoured. */
export const CEREMONY_TIMEOUT_MS = 5 * 60_000;

/** Bytes of randomness in a challenge: §13.4.3 asks for at least 16. */
export const CHALLENGE_BYTES = 32;

/** §5.8.3 (credential id) caps a credential id at 1023 bytes; §7.1 asks the RP to refuse longer ones. */
export const MAX_CREDENTIAL_ID_BYTES = 1023;

/** The algorithm allow-list as a decision (§7.1: alg must be one of the pubKeyCredParams we offered). */
export function isAllowedAlgorithm(alg: number): boolean {
  return ALLOWED_ALGORITHMS.includes(alg);
}

// ---------------------------------------------------------------------------------------------------------------
// Options for navigator.credentials.create / .get

export interface CredentialDescriptorInput {
  id: string;
  transports?: string[];
}

function descriptorsOf(credentials: CredentialDescriptorInput[]) {
  return credentials.map((credential) => ({
    id: credential.id,
    type: 'public-key' as const,
    // Stored transports came from the browser; the client ignores any it does not know (§5.8.4).
    ...(credential.transports ? { transports: credential.transports as AuthenticatorTransport[] } : {}),
  }));
}

/**
 * Options for navigator.credentials.create (§5.4). Built directly rather than through generateRegistrationOptions
 * so that it is synchronous and deterministic for a given challenge, and so that nothing is offered that we then
 * refuse (the library's defaults add ML-DSA where the runtime supports it).
 */
export function registrationOptions(
  rp: RelyingParty,
  user: { handle: string; name: string; displayName: string },
  exclude: CredentialDescriptorInput[],
  challenge: string,
): PublicKeyCredentialCreationOptionsJSON {
  return {
    rp: { id: rp.id, name: rp.name },
    user: { id: user.handle, name: user.name, displayName: user.displayName },
    challenge,
    pubKeyCredParams: ALLOWED_ALGORITHMS.map((alg) => ({ type: 'public-key' as const, alg })),
    timeout: CEREMONY_TIMEOUT_MS,
    // Attestation would tell us the make of the key, at the price of a consent prompt; the AAGUID is enough.
    attestation: 'none',
    excludeCredentials: descriptorsOf(exclude),
    authenticatorSelection: { residentKey: 'preferred', requireResidentKey: false, userVerification: 'preferred' },
    // credProps tells us whether the authenticator actually made a discoverable credential.
    extensions: { credProps: true },
  };
}

/** Options for navigator.credentials.get (§5.5). No allowed credentials asks for a discoverable one. */
export function authenticationOptions(
  rp: RelyingParty,
  allow: CredentialDescriptorInput[],
  challenge: string,
): PublicKeyCredentialRequestOptionsJSON {
  return {
    rpId: rp.id,
    challenge,
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: 'preferred',
    ...(allow.length > 0 ? { allowCredentials: descriptorsOf(allow) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// What we keep about a credential

export interface StoredCredential {
  /** base64url credential id. */
  id: string;
  /** base64url COSE_Key. */
  publicKey: string;
  counter: number;
  transports: string[];
  aaguid: string;
  /** COSE algorithm id of publicKey. */
  algorithm: number;
  /** BE: the credential may be synced. Fixed for the life of the credential (§6.1.3). */
  backupEligible: boolean;
  /** BS: the credential is currently backed up (synced); may change at each assertion. */
  backedUp: boolean;
  userVerified: boolean;
}

/** A backed-up (BS) credential lives in a sync fabric such as a password manager; otherwise it is device-bound. */
export function isSynced(credential: Pick<StoredCredential, 'backedUp'>): boolean {
  return credential.backedUp;
}

const ZERO_AAGUID = '00000000-0000-0000-0000-000000000000';
const models = createRequire(import.meta.url)('aaguids') as Record<string, string>;

/** The authenticator's model, from the community AAGUID list. The zero AAGUID means "not saying" (§6.5.1). */
export function modelOf(aaguid: string): string | null {
  const key = aaguid.toLowerCase();
  if (key === ZERO_AAGUID) return null;
  return Object.hasOwn(models, key) ? (models[key] ?? null) : null;
}

// ---------------------------------------------------------------------------------------------------------------
// Refusal reasons, and the one place library errors become them

export type RegistrationRefusal =
  | 'malformed'
  | 'type'
  | 'challenge'
  | 'origin'
  | 'rp-id'
  | 'user-presence'
  | 'algorithm'
  | 'backup-flags'
  | 'credential-id'
  | 'attestation'
  | 'signature'
  | 'other';

export type AssertionRefusal =
  | 'malformed'
  | 'type'
  | 'challenge'
  | 'origin'
  | 'rp-id'
  | 'user-presence'
  | 'signature'
  | 'credential'
  | 'backup-flags'
  | 'counter-regression'
  | 'other';

type LibraryRefusal = Exclude<RegistrationRefusal | AssertionRefusal, 'credential' | 'credential-id'>;

/**
 * SimpleWebAuthn reports failures as bare Error messages (a few carry a name or code). This table reads them.
 * Every pattern is anchored at the start of the message because the library quotes the response's own origin
 * and challenge later in the message: an origin of "https://challenge.example" must not read as a challenge
 * failure. A message we do not recognise becomes 'other', so a library upgrade that rewords one still refuses.
 */
const LIBRARY_ERRORS: readonly [RegExp, LibraryRefusal][] = [
  [/^InvalidBackupFlags$/, 'backup-flags'],
  [/^UnexpectedRPIDHash$|^Unexpected RP ID hash/, 'rp-id'],
  [/^RUNTIME_NO_PQC_SUPPORT$/, 'algorithm'],
  [/^Unexpected (registration|authentication) response type/, 'type'],
  [/^Custom challenge verifier returned false|^Unexpected (registration|authentication) response challenge/, 'challenge'],
  [/^Unexpected (registration|authentication) response origin|^Detected cross-origin|^Unexpected (cross-origin|top origin)/, 'origin'],
  [/^User presence was required|^User not present/, 'user-presence'],
  [/^Unexpected public key alg|^Credential public key was missing numeric alg/, 'algorithm'],
  [/^None attestation had|^Unsupported Attestation Format/, 'attestation'],
  [/^Response counter value/, 'counter-regression'],
  // A signature that does not decode (the ASN.1 parser's messages for an ECDSA DER signature) is a bad signature.
  [/ASN1|ASN\.1|^Invalid signature component length|^Too big integer|^Constructed encoding|^Type \[UNIVERSAL|^End of input reached|^Unused bits/, 'signature'],
  [
    /^Missing credential ID|^Credential ID was not|^Unexpected credential type|^Credential missing response|^Credential response \w+ was not|TokenBinding|tokenBinding|^No (credential ID|public key|AAGUID)|^Authenticator data was|^Leftover bytes|CBOR|not well formed/,
    'malformed',
  ],
];

/** The library error → refusal table as a function; exported for its tests. */
export function refusalOfLibraryError(error: unknown): LibraryRefusal {
  if (error instanceof SyntaxError || error instanceof RangeError) return 'malformed';
  if (!(error instanceof Error)) return 'other';
  const code = (error as { code?: unknown }).code;
  const keys = [error.name, typeof code === 'string' ? code : '', error.message];
  for (const [pattern, reason] of LIBRARY_ERRORS) {
    if (keys.some((key) => pattern.test(key))) return reason;
  }
  return 'other';
}

// ---------------------------------------------------------------------------------------------------------------
// Reading untrusted JSON. Only fields we have checked are passed to the library, and each is size-capped so a
// huge body is refused before any decoding.

const BASE64URL = /^[A-Za-z0-9_-]*$/;
// Generous on purpose: the exact 1023-byte rule is checked on the decoded id, so it can have its own reason.
const MAX_ID_CHARS = 2 * 1024;
const MAX_CLIENT_DATA_CHARS = 16 * 1024;
const MAX_ATTESTATION_CHARS = 64 * 1024;
const MAX_AUTHENTICATOR_DATA_CHARS = 16 * 1024;
const MAX_SIGNATURE_CHARS = 4 * 1024;
const MAX_USER_HANDLE_CHARS = 128; // a user handle is at most 64 bytes (§5.4.3)
const MAX_TRANSPORTS = 8;

function objectOf(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function base64urlOf(value: unknown, maxChars: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= maxChars && BASE64URL.test(value) ? value : null;
}

/** The credential id, if the response names one well-formed: id and rawId must agree (both base64url). */
export function credentialIdOf(response: unknown): string | null {
  const body = objectOf(response);
  if (!body) return null;
  const id = base64urlOf(body.id, MAX_ID_CHARS);
  return id !== null && body.rawId === id ? id : null;
}

/** The user handle of an assertion from a discoverable credential, if present and well-formed. */
export function userHandleOf(response: unknown): string | null {
  const inner = objectOf(objectOf(response)?.response);
  return inner ? base64urlOf(inner.userHandle, MAX_USER_HANDLE_CHARS) : null;
}

function transportsOf(value: unknown): AuthenticatorTransport[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const transports = value.filter((t): t is string => typeof t === 'string' && t.length <= 32);
  return transports.slice(0, MAX_TRANSPORTS) as AuthenticatorTransport[];
}

interface ClientData {
  type: string;
  challenge: string;
  origin: string;
  crossOrigin: boolean;
}

/** §7.1 and §7.2, "parse JSONtext": clientDataJSON must parse as JSON with the members we then check. */
function clientDataOf(clientDataJSON: string): ClientData | null {
  try {
    const parsed = objectOf(JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')));
    if (!parsed) return null;
    const { type, challenge, origin, crossOrigin } = parsed;
    if (typeof type !== 'string' || typeof challenge !== 'string' || typeof origin !== 'string') return null;
    if (crossOrigin !== undefined && typeof crossOrigin !== 'boolean') return null;
    return { type, challenge, origin, crossOrigin: crossOrigin === true };
  } catch {
    return null;
  }
}

/**
 * The library trusts the CBOR it decodes and fails with TypeErrors on the wrong shapes, so the attestation object
 * is taken apart here first (§7.1, "CBOR decoding on attestationObject"): a map of fmt, attStmt and authData whose authData carries attested
 * credential data.
 */
function attestedDataOf({ helpers }: Library, attestationObject: string): ParsedAuthenticatorData | null {
  try {
    const decoded: unknown = helpers.decodeAttestationObject(fromBase64url(attestationObject));
    if (!(decoded instanceof Map)) return null;
    const authData: unknown = decoded.get('authData');
    if (typeof decoded.get('fmt') !== 'string' || !(decoded.get('attStmt') instanceof Map)) return null;
    if (!(authData instanceof Uint8Array)) return null;
    const parsed = helpers.parseAuthenticatorData(new Uint8Array(authData));
    return parsed.credentialID && parsed.credentialPublicKey && parsed.aaguid ? parsed : null;
  } catch {
    return null;
  }
}

/** §7.2: authenticator data must parse before its fields are checked. */
function authenticatorDataIsWellFormed({ helpers }: Library, authenticatorData: string): boolean {
  try {
    helpers.parseAuthenticatorData(fromBase64url(authenticatorData));
    return true;
  } catch {
    return false;
  }
}

function registrationResponseOf(response: unknown): RegistrationResponseJSON | null {
  const body = objectOf(response);
  const inner = objectOf(body?.response);
  const id = credentialIdOf(response);
  if (!body || !inner || id === null || body.type !== 'public-key') return null;
  const clientDataJSON = base64urlOf(inner.clientDataJSON, MAX_CLIENT_DATA_CHARS);
  const attestationObject = base64urlOf(inner.attestationObject, MAX_ATTESTATION_CHARS);
  if (clientDataJSON === null || attestationObject === null) return null;
  const transports = transportsOf(inner.transports);
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: { clientDataJSON, attestationObject, ...(transports ? { transports } : {}) },
    clientExtensionResults: {},
  };
}

function assertionResponseOf(response: unknown): AuthenticationResponseJSON | null {
  const body = objectOf(response);
  const inner = objectOf(body?.response);
  const id = credentialIdOf(response);
  if (!body || !inner || id === null || body.type !== 'public-key') return null;
  const clientDataJSON = base64urlOf(inner.clientDataJSON, MAX_CLIENT_DATA_CHARS);
  const authenticatorData = base64urlOf(inner.authenticatorData, MAX_AUTHENTICATOR_DATA_CHARS);
  const signature = base64urlOf(inner.signature, MAX_SIGNATURE_CHARS);
  if (clientDataJSON === null || authenticatorData === null || signature === null) return null;
  // A user handle that is present must be well-formed; an absent or empty one is allowed (§5.2.2 userHandle).
  const userHandle = userHandleOf(response);
  if (userHandle === null && inner.userHandle !== undefined && inner.userHandle !== null && inner.userHandle !== '') {
    return null;
  }
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: { clientDataJSON, authenticatorData, signature, ...(userHandle ? { userHandle } : {}) },
    clientExtensionResults: {},
  };
}

/** The COSE algorithm of a public key, or null if it is not a COSE_Key with a numeric alg. */
export async function algorithmOfPublicKey(publicKey: Uint8Array): Promise<number | null> {
  const { helpers } = await library();
  try {
    const alg = helpers.decodeCredentialPublicKey(new Uint8Array(publicKey)).get(COSE_ALG as never);
    return typeof alg === 'number' ? alg : null;
  } catch {
    return null;
  }
}

/**
 * §6.1.1: a counter that does not advance means the private key may have been cloned. Zero on both sides means
 * the authenticator keeps no counter (synced passkeys report 0), which is not a signal.
 */
export function counterRegressed(stored: number, received: number): boolean {
  return (stored !== 0 || received !== 0) && received <= stored;
}

// ---------------------------------------------------------------------------------------------------------------
// Registration ceremony (§7.1)

export type RegistrationResult = { ok: true; credential: StoredCredential } | { ok: false; reason: RegistrationRefusal };

/**
 * Checks a registration response against every relying-party step of §7.1. `challengeMatches` answers whether
 * the challenge is one we issued for this ceremony and has not been used ("C.challenge equals options.challenge", plus the caller's single-use rule).
 */
export async function checkRegistration(
  rp: RelyingParty,
  response: unknown,
  challengeMatches: (challenge: string) => boolean,
): Promise<RegistrationResult> {
  const shaped = registrationResponseOf(response);
  if (!shaped) return { ok: false, reason: 'malformed' };
  const clientData = clientDataOf(shaped.response.clientDataJSON);
  if (!clientData) return { ok: false, reason: 'malformed' };
  // §7.1 "C.topOrigin": we never embed the ceremony in another site's frame, so a cross-origin one is not ours.
  if (clientData.crossOrigin) return { ok: false, reason: 'origin' };
  const lib = await library();
  const attested = attestedDataOf(lib, shaped.response.attestationObject);
  if (!attested?.credentialID) return { ok: false, reason: 'malformed' };
  // §7.1 "credentialId is at most 1023 bytes", on the id the authenticator attested; the library stores
  // that one, so the id the browser reported beside it must be the same.
  if (attested.credentialID.length > MAX_CREDENTIAL_ID_BYTES) return { ok: false, reason: 'credential-id' };
  if (toBase64url(attested.credentialID) !== shaped.id) return { ok: false, reason: 'credential-id' };

  try {
    const verification = await lib.verifyRegistrationResponse({
      response: shaped,
      expectedChallenge: (challenge) => challengeMatches(challenge),
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      expectedType: 'webauthn.create',
      requireUserPresence: true,
      // "preferred": UV is recorded, not demanded, so a security key without a PIN still works (§7.1, the UV step applies only when UV is required).
      requireUserVerification: false,
      supportedAlgorithmIDs: [...ALLOWED_ALGORITHMS],
    });
    if (!verification.verified) return { ok: false, reason: 'signature' };
    const info = verification.registrationInfo;
    const algorithm = await algorithmOfPublicKey(info.credential.publicKey);
    // The library checked the alg; checking again keeps our allow-list the one that decides.
    if (algorithm === null || !isAllowedAlgorithm(algorithm)) return { ok: false, reason: 'algorithm' };
    return {
      ok: true,
      credential: {
        id: info.credential.id,
        publicKey: toBase64url(info.credential.publicKey),
        counter: info.credential.counter,
        transports: [...(shaped.response.transports ?? [])],
        aaguid: info.aaguid,
        algorithm,
        backupEligible: info.credentialDeviceType === 'multiDevice',
        backedUp: info.credentialBackedUp,
        userVerified: info.userVerified,
      },
    };
  } catch (error) {
    const reason = refusalOfLibraryError(error);
    return { ok: false, reason: reason === 'counter-regression' ? 'other' : reason };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Authentication ceremony (§7.2)

export type AssertionResult =
  | { ok: true; counter: number; userVerified: boolean; backedUp: boolean }
  | { ok: false; reason: AssertionRefusal };

/**
 * Checks an assertion against every relying-party step of §7.2 for the credential the caller looked up (by
 * credentialIdOf). Whether the user handle belongs to the credential's owner (§7.2, "identify the user") is the caller's lookup.
 *
 * The library compares counters before it checks the signature, so an unsigned replay would report a clone. A
 * clone signal must come from a response the authenticator really signed, so the library is given a zero
 * counter and the comparison is made here, after the signature (§6.1.1).
 */
export async function checkAssertion(
  rp: RelyingParty,
  response: unknown,
  challengeMatches: (challenge: string) => boolean,
  credential: StoredCredential,
): Promise<AssertionResult> {
  const shaped = assertionResponseOf(response);
  if (!shaped) return { ok: false, reason: 'malformed' };
  // §7.2 "credential.id identifies a credential of this user": the credential used must be the one we looked up.
  if (shaped.id !== credential.id) return { ok: false, reason: 'credential' };
  const clientData = clientDataOf(shaped.response.clientDataJSON);
  const lib = await library();
  if (!clientData || !authenticatorDataIsWellFormed(lib, shaped.response.authenticatorData)) {
    return { ok: false, reason: 'malformed' };
  }
  // §7.2 "C.topOrigin": as for registration, a framed ceremony is not one we started.
  if (clientData.crossOrigin) return { ok: false, reason: 'origin' };

  try {
    const verification = await lib.verifyAuthenticationResponse({
      response: shaped,
      expectedChallenge: (challenge) => challengeMatches(challenge),
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      expectedType: 'webauthn.get',
      credential: {
        id: credential.id,
        publicKey: fromBase64url(credential.publicKey),
        counter: 0,
        transports: credential.transports as AuthenticatorTransport[],
      },
      requireUserVerification: false,
    });
    if (!verification.verified) return { ok: false, reason: 'signature' };
    const info = verification.authenticationInfo;
    // §7.2 (BE/BS, §6.1.3): backup eligibility is fixed when the credential is made; a change means another key.
    if ((info.credentialDeviceType === 'multiDevice') !== credential.backupEligible) {
      return { ok: false, reason: 'backup-flags' };
    }
    // §7.2 "signCount": the signature counter, checked only now that the signature is known good.
    if (counterRegressed(credential.counter, info.newCounter)) return { ok: false, reason: 'counter-regression' };
    return { ok: true, counter: info.newCounter, userVerified: info.userVerified, backedUp: info.credentialBackedUp };
  } catch (error) {
    const reason = refusalOfLibraryError(error);
    // We passed a zero counter, so a counter error cannot be a regression; 'attestation' is not an assertion step;
    // and the algorithm of a stored key was decided when it was registered, so a complaint about it is ours.
    const notForAssertions: LibraryRefusal[] = ['counter-regression', 'attestation', 'algorithm'];
    return { ok: false, reason: notForAssertions.includes(reason) ? 'other' : (reason as AssertionRefusal) };
  }
}
