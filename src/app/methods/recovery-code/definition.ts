/**
 * Recovery codes: NIST SP 800-63B-4 §3.1.2 look-up secrets, ten single-use codes kept for when the
 * phone is lost. A second factor (`mfa`), never `app-push` or `phishing-resistant`; RFC 8176 has no
 * value of its own for them, and a used code is a one-time password (`otp`).
 */
import type { MethodDefinition } from '../../../core/methods/definition.js';

export const recoveryCodeDefinition = {
  kind: 'recovery-code',
  amr: 'otp',
  strength: 1,
  challengeStyle: 'code',
  name: 'Recovery codes',
  useText: 'Use a recovery code',
  heading: 'Enter a recovery code',
  prompt: 'Enter one of the recovery codes you saved when you set them up. Each code works once.',
  maxPerUser: 1,
  profileBit: 32,
  meets: ['mfa'],
  selfService: true,
  backupOnly: true,
  campaignable: false,
  phrase: 'recovery codes',
  setUpSteps: [
    'Select ‘Add sign-in method’ and choose ‘Recovery codes’.',
    'Save the ten codes somewhere safe, away from your phone.',
  ],
} as const satisfies MethodDefinition<'recovery-code'>;
