/**
 * Passkey (WebAuthn): the strongest method, and the only one that is phishing-resistant (NIST SP
 * 800-63B-4 §3.2.5: the signature is bound to our origin). RFC 8176 `hwk`: proof of possession of a key.
 */
import type { MethodDefinition } from '../../../core/methods/definition.js';

export const passkeyDefinition = {
  kind: 'passkey',
  amr: 'hwk',
  strength: 4,
  challengeStyle: 'ceremony',
  name: 'Passkey',
  useText: 'Use a passkey ({detail})',
  heading: 'Use your passkey',
  prompt: 'Use your passkey to confirm it is you: your device will ask for your fingerprint, face or screen lock.',
  maxPerUser: 10,
  profileBit: 16,
  meets: ['mfa', 'app-push', 'phishing-resistant'],
  selfService: true,
  backupOnly: false,
  campaignable: true,
  phrase: 'a passkey',
  setUpSteps: [
    'Select ‘Add sign-in method’ and choose ‘Passkey’.',
    'Follow what your device asks: your fingerprint, face or screen lock, a phone nearby, or a security key.',
  ],
} as const satisfies MethodDefinition<'passkey'>;
