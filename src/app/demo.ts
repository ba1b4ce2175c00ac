/**
 * `portcullis demo`: an idempotent demo directory so a newcomer can sign in at once. Running it again
 * adds only what is missing and never changes an existing account.
 */
import type { AppContext } from './context.js';
import { addOrganisation, addUser, type RoleRequest } from './directory.js';

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
}

export async function ensureDemo(ctx: AppContext): Promise<DemoReport> {
  const actor = { kind: 'system' } as const;
  const report: DemoReport = { created: [], existing: [] };
  for (const name of DEMO_ORGANISATIONS) {
    if (!(await ctx.store.organisations.findByName(name))) await addOrganisation(ctx, name, actor);
  }
  for (const user of DEMO_USERS) {
    if (await ctx.store.users.findByEmail(user.email)) {
      report.existing.push(user.email);
      continue;
    }
    await addUser(ctx, { email: user.email, displayName: user.name, organisation: user.organisation, roles: user.roles, password: DEMO_PASSWORD }, actor);
    report.created.push(user.email);
  }
  return report;
}

export function describeDemo(publicUrl: URL): string {
  const lines = [
    `Demo organisation ready. Sign in at ${new URL('/sign-in', publicUrl).toString()}`,
    `with any of these email addresses and the password "${DEMO_PASSWORD}":`,
    ...DEMO_USERS.map((u) => `  ${u.email.padEnd(30)} ${u.about}`),
    'These accounts are for trying Portcullis out. Never run the demo on a production database.',
    `Texts, calls and emails are kept in the development outbox: ${new URL('/dev/outbox', publicUrl).toString()} (with DEVELOPMENT_PAGES=true) or \`portcullis outbox\`.`,
  ];
  return lines.join('\n');
}
