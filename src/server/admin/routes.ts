/**
 * The admin console, /admin (issue #15): for the admin roles, in a full session that meets the policy.
 * This first page is the dashboard — registration and compliance at a glance for the organisations the
 * person administers — with its charts drawn as SVG on the server (./charts.ts), each also a table.
 * The reads are the admin API's use cases, so the console and the API share their scope.
 */
import type { FastifyInstance } from 'fastify';
import { dashboard } from '../../app/admin-api.js';
import type { AppContext } from '../../app/context.js';
import { requireSession } from '../plugins/session.js';
import { sendCsv } from '../admin-api/shared.js';
import { consoleCaller } from './caller.js';
import { barChart } from './charts.js';

const STATES = [
  ['compliant', 'Compliant'],
  ['in-grace', 'In grace'],
  ['action-needed', 'Action needed'],
  ['non-compliant', 'Non-compliant'],
  ['exempt', 'Exempt'],
] as const;

export async function adminRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/admin', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const view = await dashboard(ctx, caller);
    if ((request.query as Record<string, unknown>).format === 'csv') {
      // Every list on the page, as one spreadsheet: each row names its list.
      const rows: string[][] = [
        ...STATES.map(([state, label]) => ['elevated users by state', label, String(view.elevated.byState[state])]),
        ...view.methods.map((m) => ['users by sign-in method', m.name, String(m.users)]),
        ['users without a second method', 'all', String(view.withoutMethod)],
        ...view.requirements.flatMap((r) => STATES.map(([state, label]) => [`requirement ${r.id}`, label, String(r.byState[state])])),
        ...view.trend.flatMap((p) => STATES.map(([state, label]) => [`elevated users on ${p.day}`, label, String(p.elevated.byState[state])])),
      ];
      return sendCsv(reply, 'dashboard', ['list', 'label', 'people'], rows);
    }
    const elevatedRows = STATES.map(([state, label]) => ({ label, value: view.elevated.byState[state] }));
    const mixRows = view.methods.map((m) => ({ label: m.name, value: m.users }));
    const tableOf = (rows: ReadonlyArray<{ label: string; value: number }>) => rows.map((r) => [{ text: r.label }, { text: r.value.toLocaleString('en-GB'), format: 'numeric' }]);
    return reply.render('admin/dashboard.njk', {
      section: '/admin',
      view,
      mixRows,
      elevatedTable: tableOf(elevatedRows),
      mixTable: tableOf(mixRows),
      trendTable: view.trend.map((p) => [
        { text: p.day },
        { text: p.elevated.byState.compliant.toLocaleString('en-GB'), format: 'numeric' },
        { text: (p.elevated.byState['action-needed'] + p.elevated.byState['in-grace'] + p.elevated.byState['non-compliant']).toLocaleString('en-GB'), format: 'numeric' },
      ]),
      elevatedChart: barChart({ title: 'Elevated users by state', bars: elevatedRows }),
      mixChart: barChart({ title: 'Users by sign-in method', bars: mixRows }),
    });
  });
}
