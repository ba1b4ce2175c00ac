/** Authenticator app – code (TOTP, RFC 6238): the registry entry. */
import type { MethodDefinition } from '../../../core/methods/definition.js';

export const totpDefinition = {
  kind: 'totp',
  amr: 'otp',
  strength: 2,
  challengeStyle: 'code',
  name: 'Authenticator app – code',
  useText: 'Use a code from your authenticator app',
  heading: 'Enter the code from your authenticator app',
  prompt: 'Enter the 6-digit code shown in your authenticator app.',
  maxPerUser: 5,
  profileBit: 4,
  meets: ['mfa'],
  selfService: true,
  backupOnly: false,
  campaignable: true,
  phrase: 'codes from an authenticator app',
  setUpSteps: [
    'Select ‘Add sign-in method’ and choose ‘Authenticator app’.',
    'Select ‘I want to use a different authenticator app’ and scan the QR code with your app.',
    'Enter the 6-digit code your app shows.',
  ],
} as const satisfies MethodDefinition<'totp'>;
