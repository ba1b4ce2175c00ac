/** App based authentication – notification (push with number matching): the registry entry. */
import type { MethodDefinition } from '../../../core/methods/definition.js';

export const pushDefinition = {
  kind: 'push',
  amr: 'swk',
  strength: 3,
  challengeStyle: 'external',
  name: 'App based authentication – notification',
  useText: 'Approve a request on my authenticator app ({detail})',
  heading: 'Approve the sign-in on your phone',
  prompt: 'Open your authenticator app and enter the number shown to sign in.',
  maxPerUser: 5,
  profileBit: 8,
  meets: ['mfa', 'app-push'],
  selfService: true,
  backupOnly: false,
  campaignable: true,
  phrase: 'notifications in the Portcullis Authenticator app',
  setUpSteps: [
    'Install the Portcullis Authenticator on your phone, or open it in your phone’s browser.',
    'Select ‘Add sign-in method’, choose ‘Authenticator app’ and scan the QR code with your phone.',
    'Approve the test request on your phone by typing the number shown here.',
    'Make it your default sign-in method.',
  ],
} as const satisfies MethodDefinition<'push'>;
