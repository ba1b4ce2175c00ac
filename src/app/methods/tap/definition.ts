/**
 * The Temporary Access Pass: a bootstrap credential an administrator issues, outside the strength
 * order and in no strength; issued, not registered, so it has no profile bit.
 */
import type { MethodDefinition } from '../../../core/methods/definition.js';

export const tapDefinition = {
  kind: 'tap',
  amr: 'otp',
  strength: 0,
  challengeStyle: 'code',
  name: 'Temporary Access Pass',
  useText: 'Use a Temporary Access Pass',
  heading: 'Enter your Temporary Access Pass',
  prompt: 'Enter the Temporary Access Pass your administrator gave you.',
  maxPerUser: 1,
  profileBit: null,
  meets: [],
  selfService: false,
  backupOnly: false,
  campaignable: false,
  phrase: 'a Temporary Access Pass',
  setUpSteps: [],
} as const satisfies MethodDefinition<'tap'>;
