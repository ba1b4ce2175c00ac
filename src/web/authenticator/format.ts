/**
 * What the Portcullis Authenticator says, in plain English (NHS.UK content style), kept apart from the
 * DOM so it can be tested in Node: times, the request's context, codes, countdowns, the outcome of a
 * decision, and the checks on what the user types.
 */
import type { Challenge, DeviceInfo, OtpAccount } from '../../authenticator/index.js';

/** Times are shown in the phone's own time zone unless a test fixes one. */
export interface FormatOptions {
  timeZone?: string;
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** "14:03" today, "27 November at 14:03" another day (en-GB, 24-hour clock). */
export function formatTime(iso: string, now: Date, options: FormatOptions = {}): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return 'Not known';
  const zone = options.timeZone ? { timeZone: options.timeZone } : {};
  const time = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', ...zone }).format(date);
  const day = (d: Date) => new Intl.DateTimeFormat('en-GB', { year: 'numeric', month: 'long', day: 'numeric', ...zone }).format(d);
  if (day(date) === day(now)) return time;
  return `${new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', ...zone }).format(date)} at ${time}`;
}

/** "27 November 2026" */
export function formatDate(iso: string | null, options: FormatOptions = {}): string {
  if (!iso) return 'Never';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return 'Not known';
  return new Intl.DateTimeFormat('en-GB', { year: 'numeric', month: 'long', day: 'numeric', ...(options.timeZone ? { timeZone: options.timeZone } : {}) }).format(date);
}

/** Whole seconds until `expiresAt`, never below 0. */
export function secondsLeft(expiresAt: string, now: Date): number {
  return Math.max(0, Math.ceil((Date.parse(expiresAt) - now.getTime()) / 1000));
}

export function describeExpiry(expiresAt: string, now: Date): string {
  const seconds = secondsLeft(expiresAt, now);
  return seconds === 0 ? 'It has expired' : `It expires in ${plural(seconds, 'second')}`;
}

/** The address and coarse location a sign-in came from, as one line. */
export function describeOrigin(challenge: Pick<Challenge, 'ip' | 'location'>): string {
  if (challenge.ip && challenge.location) return `${challenge.location} (${challenge.ip})`;
  return challenge.location ?? challenge.ip ?? 'Not known';
}

/** The rows shown with a request, so the user can judge whether it is theirs. */
export function challengeContext(challenge: Challenge, now: Date, options: FormatOptions = {}): Array<{ key: string; value: string }> {
  return [
    { key: 'Account', value: challenge.account.email },
    { key: 'Signing in to', value: challenge.app },
    { key: 'IP address', value: challenge.ip ?? 'Not known' },
    { key: 'Location', value: challenge.location ?? 'Not known' },
    { key: 'Time', value: formatTime(challenge.createdAt, now, options) },
  ];
}

/** Where the number to type is shown: the sign-in page, or Security info for the test request. */
export function numberSource(challenge: Pick<Challenge, 'purpose'>): string {
  return challenge.purpose === 'test' ? 'the Security info page' : 'the sign-in page';
}

/**
 * Checks the number the user typed (spaces allowed, as people copy "4 7"); returns the digits, or the
 * error message to show beside the field (NHS.UK error message style: say what to do).
 */
export function checkNumber(input: string, challenge: Pick<Challenge, 'purpose' | 'numberLength'>): { digits: string } | { error: string } {
  const digits = input.replace(/\s+/g, '');
  const where = numberSource(challenge);
  if (digits === '') return { error: `Enter the number shown on ${where}` };
  if (!/^\d+$/.test(digits)) return { error: 'The number must only include digits 0 to 9' };
  if (digits.length !== challenge.numberLength) return { error: `Enter the ${challenge.numberLength}-digit number shown on ${where}` };
  return { digits };
}

export interface Outcome {
  /** The panel's heading. */
  title: string;
  /** One or two sentences of what happens now. */
  body: string[];
  /** A success panel (green) or a plain heading. */
  success: boolean;
}

/**
 * What a decision led to, from the status the server answered or the error code it refused with
 * (docs/device-api.md). `purpose` changes where the user should look next.
 */
export function outcomeOf(result: string, purpose: Challenge['purpose']): Outcome {
  const page = purpose === 'test' ? 'Security info page' : 'sign-in page';
  switch (result) {
    case 'approved':
      return {
        title: 'Approved',
        body: purpose === 'test' ? ['This phone is set up. Go back to the Security info page to finish.'] : ['Go back to the sign-in page. It will carry on by itself.'],
        success: true,
      };
    case 'denied':
      return {
        title: 'Denied',
        body: purpose === 'test' ? ['This phone has not been set up. Start again on the Security info page.'] : ['The sign-in was refused. If it was you, go back to the sign-in page and send a new request.'],
        success: false,
      };
    case 'reported':
      return {
        title: 'Reported',
        body: [
          'The sign-in was refused and your administrators have been told.',
          'Someone may know your password. Change it as soon as you can, or ask your helpdesk for help.',
        ],
        success: false,
      };
    case 'wrong-number':
      return {
        title: 'The number did not match',
        body:
          purpose === 'test'
            ? ['This phone has not been set up. Start again on the Security info page.']
            : ['The sign-in was refused. If it was you, send a new request from the sign-in page and type the new number.'],
        success: false,
      };
    case 'expired':
    case 'challenge-expired':
      return { title: 'The request has expired', body: [`Nothing was approved. Send a new request from the ${page} if you still need it.`], success: false };
    case 'challenge-decided':
    case 'used':
      return { title: 'The request has already been answered', body: ['Nothing else is needed.'], success: false };
    default:
      return { title: 'The request has expired or was answered', body: [`Nothing was approved. Send a new request from the ${page} if you still need it.`], success: false };
  }
}

/** A code split in two halves to read and type: "123 456", "1234 5678". */
export function formatCode(code: string): string {
  if (code.length < 6) return code;
  const half = Math.ceil(code.length / 2);
  return `${code.slice(0, half)} ${code.slice(half)}`;
}

export function describeCountdown(seconds: number): string {
  return `${plural(seconds, 'second')} left`;
}

/** A vault account's name: "Example Mail (alex@example.com)", or the account alone. */
export function accountTitle(account: Pick<OtpAccount, 'issuer' | 'label'>): string {
  return account.issuer && account.issuer !== account.label ? `${account.issuer} (${account.label})` : account.label;
}

/** The export file's name: `portcullis-codes-2026-11-28.json` (the phone's local date). */
export function exportFileName(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `portcullis-codes-${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}.json`;
}

export function describeDevice(device: DeviceInfo, options: FormatOptions = {}): Array<{ key: string; value: string }> {
  return [
    { key: 'Added', value: formatDate(device.createdAt, options) },
    { key: 'Last used', value: formatDate(device.lastUsedAt, options) },
  ];
}

/** The result of an import, as one sentence. */
export function describeImport(added: number, skipped: number): string {
  if (added === 0 && skipped === 0) return 'The file had no accounts in it.';
  const parts = [added === 0 ? 'No new accounts were added' : `${plural(added, 'account')} added`];
  if (skipped > 0) parts.push(`${plural(skipped, 'account was', 'accounts were')} already in this app`);
  return `${parts.join('. ')}.`;
}
