/** Phone – text message and Phone – call: one unit, two kinds (the same number can take either). */
import type { MethodDefinition } from '../../../core/methods/definition.js';

export const smsDefinition = {
  kind: 'sms',
  amr: 'sms',
  strength: 1,
  challengeStyle: 'code',
  name: 'Phone – text message',
  useText: 'Text a code to {detail}',
  heading: 'Check your phone',
  prompt: 'We have sent a 6-digit code by text message to {detail}. It expires in 10 minutes.',
  maxPerUser: 5,
  profileBit: 1,
  meets: ['mfa'],
  selfService: true,
  backupOnly: false,
  campaignable: true,
  phrase: 'a phone',
  setUpSteps: [
    'Select ‘Add sign-in method’ and choose ‘Phone’.',
    'Enter your mobile number and the code we send to it.',
  ],
} as const satisfies MethodDefinition<'sms'>;

export const voiceDefinition = {
  kind: 'voice',
  amr: 'tel',
  strength: 1,
  challengeStyle: 'code',
  name: 'Phone – call',
  useText: 'Call {detail} and read out a code',
  heading: 'Answer your phone',
  prompt: 'We are calling {detail}. Enter the 6-digit code you hear. It expires in 10 minutes.',
  maxPerUser: 5,
  profileBit: 2,
  meets: ['mfa'],
  selfService: true,
  backupOnly: false,
  campaignable: true,
  phrase: 'a phone',
  setUpSteps: [
    'Select ‘Add sign-in method’ and choose ‘Phone’.',
    'Enter your phone number and the code we read out to you.',
  ],
} as const satisfies MethodDefinition<'voice'>;
