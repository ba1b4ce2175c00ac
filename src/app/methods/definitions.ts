/**
 * The one list of sign-in methods: each unit's registry entry. Pure data (checked by
 * test/architecture.test.ts like src/core), so the core's registry can read it. Adding a method adds
 * its unit (a folder here) and one line below and one in ./index.ts; nothing else names it.
 */
import { passkeyDefinition } from './passkey/definition.js';
import { smsDefinition, voiceDefinition } from './phone/definition.js';
import { pushDefinition } from './push/definition.js';
import { recoveryCodeDefinition } from './recovery-code/definition.js';
import { tapDefinition } from './tap/definition.js';
import { totpDefinition } from './totp/definition.js';

export const methodDefinitionList = [passkeyDefinition, pushDefinition, totpDefinition, smsDefinition, voiceDefinition, recoveryCodeDefinition, tapDefinition] as const;
