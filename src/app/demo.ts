/**
 * `portcullis demo`: an idempotent demo directory so a newcomer can sign in at once. Running it again
 * adds only what is missing and never changes an existing account. When no method policy has been
 * applied, it applies the shipped example (the source article's policy) with its date moved to 14 days
 * from today, so a newcomer sees the nudge, the deadline and the Security info banner.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';
import type { AppContext } from './context.js';
import { ensureMailAppClient, MAIL_APP_URL, type MailAppRegistration } from './demo-mail-app.js';
import { addOrganisation, addUser, type RoleRequest } from './directory.js';
import { applyPolicyText } from './policy.js';

/** The example policy shipped in examples/ (the article's, dated 30 November 2023). */
export const EXAMPLE_POLICY = path.join(PROJECT_ROOT, 'examples', 'nhsmail-elevated-rights.yaml');
export const DEMO_POLICY_DAYS = 14;

/**
 * Demo phones in Ofcom's range for drama (never a real subscriber): their codes go to the outbox.
 * libphonenumber refuses the range, so typing one on Security info needs PHONE_ALLOW_DRAMA_RANGE=true,
 * which `npm start` sets (issue #17).
 */
export const DEMO_PHONES: Readonly<Record<string, string>> = {
  'lina.local@example.org': '+447700900123',
  'omar.user@example.org': '+447700900456',
};

export const DEMO_PASSWORD = 'correct-harbour-lantern';

export const DEMO_ORGANISATIONS = ['Northfield Hospital NHS Trust', 'Southgate Surgery'] as const;

export const DEMO_USERS: ReadonlyArray<{ email: string; name: string; organisation: string; roles: RoleRequest[]; about: string }> = [
  { email: 'ada.admin@example.org', name: 'Ada Admin', organisation: 'Northfield Hospital NHS Trust', roles: [{ role: 'global-admin', organisations: [] }], about: 'global administrator (elevated)' },
  { email: 'harry.helpdesk@example.org', name: 'Harry Helpdesk', organisation: 'Northfield Hospital NHS Trust', roles: [{ role: 'helpdesk', organisations: [] }], about: 'helpdesk (elevated)' },
  { email: 'lina.local@example.org', name: 'Lina Local', organisation: 'Southgate Surgery', roles: [{ role: 'local-admin', organisations: ['Southgate Surgery'] }], about: 'local administrator of Southgate Surgery (elevated)' },
  { email: 'uma.user@example.org', name: 'Uma User', organisation: 'Northfield Hospital NHS Trust', roles: [], about: 'ordinary user' },
  { email: 'omar.user@example.org', name: 'Omar User', organisation: 'Southgate Surgery', roles: [], about: 'ordinary user' },
];

export interface DemoReport {
  created: string[];
  existing: string[];
  /** The policy version applied, with the day its requirement takes effect; null when one was there already. */
  policy: { version: number; effective: string } | null;
  /** The sample application's client (examples/mail-app), registered once; its secret is only in its file. */
  mailApp: MailAppRegistration;
}

/** The example policy's text with every date moved to `days` from now (in London, as the policy says). */
export async function demoPolicyText(now: Date, days = DEMO_POLICY_DAYS): Promise<{ text: string; effective: string }> {
  const example = await readFile(EXAMPLE_POLICY, 'utf8');
  const effective = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/London', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(now.getTime() + days * 86_400_000));
  return { text: example.replaceAll('2023-11-30', effective), effective };
}

export async function ensureDemo(ctx: AppContext): Promise<DemoReport> {
  const actor = { kind: 'system' } as const;
  const report: Omit<DemoReport, 'mailApp'> = { created: [], existing: [], policy: null };
  for (const name of DEMO_ORGANISATIONS) {
    if (!(await ctx.store.organisations.findByName(name))) await addOrganisation(ctx, name, actor);
  }
  for (const user of DEMO_USERS) {
    if (await ctx.store.users.findByEmail(user.email)) {
      report.existing.push(user.email);
      continue;
    }
    const { user: row } = await addUser(ctx, { email: user.email, displayName: user.name, organisation: user.organisation, roles: user.roles, password: DEMO_PASSWORD }, actor);
    const phone = DEMO_PHONES[user.email];
    if (phone) {
      // A text-message phone, as most people have today: the article's move away from it is the demo.
      const now = ctx.clock();
      const id = randomUUID();
      await ctx.store.methods.insertPending({ id, userId: row.id, kind: 'sms', label: '', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
      await ctx.store.methods.activate(row.id, id, now, null);
    }
    report.created.push(user.email);
  }
  if (!(await ctx.store.policy.latest())) {
    const { text, effective } = await demoPolicyText(ctx.clock());
    const { version } = await applyPolicyText(ctx, text, actor, `The example policy, dated ${DEMO_POLICY_DAYS} days from today for the demo`);
    report.policy = { version, effective };
  }
  return { ...report, mailApp: await ensureMailAppClient(ctx) };
}

export function describeDemo(publicUrl: URL): string {
  const lines = [
    `Demo organisation ready. Sign in at ${new URL('/sign-in', publicUrl).toString()}`,
    `with any of these email addresses and the password "${DEMO_PASSWORD}":`,
    ...DEMO_USERS.map((u) => `  ${u.email.padEnd(30)} ${u.about}${DEMO_PHONES[u.email] ? `, texts to ${DEMO_PHONES[u.email]}` : ''}`),
    'The method policy is the example in examples/nhsmail-elevated-rights.yaml: those with elevated rights must',
    'use push notifications in the Portcullis Authenticator from its date (`portcullis policy show`).',
    'These accounts are for trying Portcullis out. Never run the demo on a production database.',
    `Texts, calls and emails are kept in the development outbox: ${new URL('/dev/outbox', publicUrl).toString()} (with DEVELOPMENT_PAGES=true) or \`portcullis outbox\`.`,
    `The sample application "Mail" (examples/mail-app) is registered for ${MAIL_APP_URL}: \`npm run start:mail-app\` starts it beside the demo.`,
  ];
  return lines.join('\n');
}
