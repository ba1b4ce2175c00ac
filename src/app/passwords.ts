/**
 * Choosing a password: the core's rules (length, blocklist, context words) with the shipped blocklist.
 */
import type { Config } from '../config/load.js';
import { PortcullisError } from '../core/errors.js';
import { checkNewPassword } from '../core/password-rules.js';
import { isCommonPassword } from '../crypto/common-passwords.js';

export function assertAcceptablePassword(password: string, config: Pick<Config, 'passwordRules' | 'organisationName'>, email?: string): void {
  const check = checkNewPassword(password, config.passwordRules, {
    isCommon: isCommonPassword,
    email,
    serviceNames: [config.organisationName, 'portcullis'],
  });
  if (!check.ok) throw new PortcullisError(check.code, check.params);
}
