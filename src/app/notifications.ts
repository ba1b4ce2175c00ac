/**
 * Emails about security changes (NIST SP 800-63B §6.1.2.1: notify the subscriber when an
 * authenticator is bound or removed). They say what changed and when, and what to do if it was not
 * them; they never carry a code or a link that approves anything.
 */
import type { Transaction } from 'kysely';
import type { DatabaseSchema, UserRow } from '../store/schema.js';
import type { AppContext } from './context.js';

export type SecurityNotice =
  | { kind: 'method-added'; method: string; withoutSecondFactor: boolean }
  | { kind: 'method-removed'; method: string }
  | { kind: 'default-changed'; method: string }
  | { kind: 'signed-out-everywhere' }
  | { kind: 'password-changed' }
  | { kind: 'password-reset' }
  | { kind: 'push-fraud-reported'; blocked: boolean; signInIp: string }
  | { kind: 'tap-issued'; expiresAt: Date; multiUse: boolean }
  | { kind: 'tap-used' }
  | { kind: 'passkey-clone-suspected'; method: string }
  | { kind: 'recovery-code-used'; left: number }
  | { kind: 'methods-reset'; count: number }
  | { kind: 'push-unblocked' }
  | { kind: 'sessions-revoked'; count: number };

function when(ctx: AppContext): string {
  return new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/London' }).format(ctx.clock());
}

export function composeNotice(ctx: AppContext, user: UserRow, notice: SecurityNotice): { subject: string; text: string } {
  const service = ctx.config.organisationName;
  const at = when(ctx);
  const notYou = `If this was not you, contact your administrator or helpdesk straight away. Do not reply to this email.`;
  const lines = (subject: string, ...body: string[]) => ({
    subject,
    text: [`Dear ${user.display_name},`, '', ...body, '', notYou, '', `${service}`].join('\n'),
  });
  switch (notice.kind) {
    case 'method-added':
      return lines(
        `A sign-in method was added to your ${service} account`,
        `On ${at} this sign-in method was added to your account: ${notice.method}.`,
        ...(notice.withoutSecondFactor
          ? ['', 'It was added straight after your password, because your account had no other sign-in method to confirm it with.']
          : []),
      );
    case 'method-removed':
      return lines(`A sign-in method was removed from your ${service} account`, `On ${at} this sign-in method was removed from your account: ${notice.method}.`);
    case 'default-changed':
      return lines(`Your default sign-in method was changed`, `On ${at} your default sign-in method was changed to: ${notice.method}.`);
    case 'signed-out-everywhere':
      return lines(`You were signed out everywhere`, `On ${at} your ${service} account was signed out on every device and browser.`);
    case 'password-changed':
      return lines(`Your ${service} password was changed`, `On ${at} the password for your account was changed. You have been signed out everywhere else.`);
    case 'password-reset':
      return lines(`Your ${service} password was reset`, `On ${at} the password for your account was reset. You have been signed out everywhere.`);
    case 'tap-issued':
      return lines(
        `A Temporary Access Pass was issued for your ${service} account`,
        `On ${at} an administrator issued a Temporary Access Pass for your account. It works ${notice.multiUse ? 'more than once' : 'once'}, until ${new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/London' }).format(notice.expiresAt)}.`,
        '',
        'The pass itself is never sent by email: your administrator or helpdesk gives it to you directly.',
      );
    case 'passkey-clone-suspected':
      return lines(
        `A copy of your passkey may exist`,
        `On ${at} someone tried to sign in with your passkey “${notice.method}”, and the passkey's count of uses went backwards. That can mean the passkey was copied, so we refused the sign-in.`,
        '',
        'If you did not expect this, delete that passkey on Security info and add a new one, or contact your helpdesk.',
      );
    case 'tap-used':
      return lines(`A Temporary Access Pass was used to sign in`, `On ${at} a Temporary Access Pass was used to sign in to your account.`);
    case 'recovery-code-used':
      return lines(
        `A recovery code was used to sign in`,
        `On ${at} one of your recovery codes was used to sign in to your account. Each code works once, so that one will not work again.`,
        '',
        notice.left === 0
          ? 'You have no recovery codes left.'
          : `You have ${notice.left} recovery ${notice.left === 1 ? 'code' : 'codes'} left.`,
        '',
        'If you used it because you lost your phone, get new recovery codes from Security info, and remove the lost phone from your sign-in methods. Setting up new codes stops your old ones working.',
      );
    case 'methods-reset':
      return lines(
        `Your sign-in methods were reset`,
        `On ${at} an administrator removed every sign-in method from your account (${notice.count} in all) and signed you out everywhere.`,
        '',
        'Next time you sign in you will be asked to set up a sign-in method again.',
      );
    case 'push-unblocked':
      return lines(`Sign-in requests to your authenticator app are turned back on`, `On ${at} an administrator turned sign-in requests to your authenticator app back on.`);
    case 'sessions-revoked':
      return lines(`You were signed out everywhere by an administrator`, `On ${at} an administrator signed your account out on every device and browser (${notice.count} in all).`);
    case 'push-fraud-reported':
      return lines(
        `You reported a sign-in request as not you`,
        `On ${at} you answered a sign-in request with "No, it's not me". The sign-in (from the address ${notice.signInIp}) was refused.`,
        '',
        'Someone else may know your password. Change it now on Security info, and tell your helpdesk.',
        ...(notice.blocked ? ['', 'Sign-in requests to your authenticator app are turned off until an administrator turns them back on. You can sign in another way meanwhile.'] : []),
      );
  }
}

/** Queues the notice; inside `trx` when given, so it exists if and only if the change it tells of committed. */
export async function notifyUser(ctx: AppContext, user: UserRow, notice: SecurityNotice, trx?: Transaction<DatabaseSchema>): Promise<void> {
  const { subject, text } = composeNotice(ctx, user, notice);
  await ctx.delivery.enqueue({ channel: 'email', to: user.email, purpose: 'security-notice', subject, text }, trx);
}
