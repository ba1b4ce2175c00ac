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
