/**
 * The admin console's policy pages (issue #15 point 4): the policy in force and its versions, a version's
 * document, the diff between two versions, and — for a global administrator — editing with the problems
 * shown in place, a preview of what the change does (the compliance counts now and after, and whom it
 * would strand) before it is applied, and rolling back to an earlier version. Every change asks why;
 * the use cases (src/app/admin-policy.ts) decide who may and keep the audit record.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  applyPolicyFor,
  checkReason,
  diffVersions,
  mayEditPolicy,
  policyInForce,
  policyToEdit,
  policyVersion,
  policyVersions,
  previewPolicy,
  rollbackPreview,
  rollbackTo,
  type PolicyDiff,
  type PolicyPreview,
} from '../../app/admin-policy.js';
import type { AdminCaller } from '../../app/admin-api.js';
import type { StateCounts } from '../../app/compliance.js';
import type { AppContext } from '../../app/context.js';
import { formatErrorMessage, isPortcullisError, type PortcullisError } from '../../core/errors.js';
import { field } from '../forms.js';
import { requireSession } from '../plugins/session.js';
import { consoleCaller, refuse } from './caller.js';

const SECTION = '/admin/policy';

const STATES = [
  ['compliant', 'Compliant'],
  ['exempt', 'Exempt'],
  ['action-needed', 'Action needed'],
  ['in-grace', 'In grace'],
  ['non-compliant', 'Non-compliant'],
] as const;

type Cell = { text: string; format?: 'numeric' };
type ErrorItem = { text: string; href: string };

/** A version number from the address; anything else is a version that does not exist (the use case's 404). */
const versionOf = (raw: string | undefined): number => (raw && /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : -1);

const number = (n: number) => n.toLocaleString('en-GB');

/** "12 May 2026, 14:03 UTC" */
function when(iso: string): string {
  if (!iso) return '';
  return `${new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' })} UTC`;
}

/** Counts now and after, by state, as table rows with the change in words. */
function stateRows(now: StateCounts | null, after: StateCounts | null): Cell[][] {
  const rows: Cell[][] = STATES.map(([state, label]) => {
    const before = now?.byState[state] ?? 0;
    const then = after?.byState[state] ?? 0;
    return [{ text: label }, { text: number(before), format: 'numeric' }, { text: number(then), format: 'numeric' }, { text: change(before, then) }];
  });
  rows.push([{ text: 'Total' }, { text: number(now?.total ?? 0), format: 'numeric' }, { text: number(after?.total ?? 0), format: 'numeric' }, { text: change(now?.total ?? 0, after?.total ?? 0) }]);
  return rows;
}

const change = (before: number, after: number) => (after === before ? 'No change' : after > before ? `${number(after - before)} more` : `${number(before - after)} fewer`);

/** The policy problems as the error summary's list, each linking to the document's text area. */
const problemErrors = (problems: ReadonlyArray<{ path: string; message: string }>): ErrorItem[] =>
  problems.map((p) => ({ text: (p.path ? `${p.path}: ${p.message}` : p.message).replace(/:\s*$/, ''), href: '#document' }));

const message = (error: PortcullisError) => formatErrorMessage(error.code, error.params);

/** The diff as the view shows it: each line with its numbers and its change in words. */
function diffView(diff: PolicyDiff) {
  return {
    from: diff.from,
    to: diff.to,
    summary: `${diff.added} ${diff.added === 1 ? 'line' : 'lines'} added, ${diff.removed} ${diff.removed === 1 ? 'line' : 'lines'} removed`,
    lines: diff.lines.map((l) => ({ ...l, label: l.kind === 'added' ? 'Added' : l.kind === 'removed' ? 'Removed' : 'Unchanged' })),
  };
}

export async function adminPolicyRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get<{ Querystring: { done?: string; version?: string } }>('/admin/policy', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    try {
      const [current, versions] = await Promise.all([policyInForce(ctx, caller), policyVersions(ctx, caller)]);
      const done = request.query.done;
      const version = versionOf(request.query.version);
      const notice = version > 0 && done === 'applied' ? `Version ${version} of the policy is now in force` : version > 0 && done === 'rolled-back' ? `The policy was rolled back: version ${version} is now in force` : null;
      return reply.render('admin/policy.njk', {
        section: SECTION,
        notice,
        current: { ...current, appliedAt: when(current.appliedAt) },
        versions: versions.map((v) => ({ ...v, appliedAt: when(v.appliedAt), hasPrevious: versions.some((o) => o.version === v.version - 1) })),
        mayEdit: mayEditPolicy(caller),
      });
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.get<{ Params: { version: string } }>('/admin/policy/versions/:version', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    try {
      const [detail, current] = await Promise.all([policyVersion(ctx, caller, versionOf(request.params.version)), policyInForce(ctx, caller)]);
      return reply.render('admin/policy-version.njk', {
        section: SECTION,
        detail: { ...detail, appliedAt: when(detail.appliedAt) },
        inForce: detail.version === current.version,
        mayRollBack: mayEditPolicy(caller) && detail.version !== current.version,
      });
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.get<{ Querystring: { from?: string; to?: string } }>('/admin/policy/diff', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    try {
      const diff = await diffVersions(ctx, caller, versionOf(request.query.from), versionOf(request.query.to));
      return reply.render('admin/policy-diff.njk', { section: SECTION, diff: diffView(diff) });
    } catch (error) {
      return refuse(reply, error);
    }
  });

  /** The edit page, first or again with the problems in place (400). */
  async function renderEdit(reply: FastifyReply, caller: AdminCaller, typed?: { document: string; reason: string }, problems: { document?: ErrorItem[]; reason?: string } = {}) {
    const current = await policyToEdit(ctx, caller);
    const errors = [...(problems.document ?? []), ...(problems.reason ? [{ text: problems.reason, href: '#reason' }] : [])];
    return reply.render(
      'admin/policy-edit.njk',
      {
        section: SECTION,
        current,
        document: typed?.document ?? current.document,
        reason: typed?.reason ?? '',
        errors,
        fieldErrors: { document: problems.document?.map((p) => p.text).join('. '), reason: problems.reason },
      },
      errors.length ? 400 : 200,
    );
  }

  /** The preview: the counts now and after, and the form that applies the draft. */
  async function renderPreview(reply: FastifyReply, caller: AdminCaller, document: string, reason: string, preview: PolicyPreview, problems: { reason?: string; allowStranded?: string } = {}) {
    const current = await policyInForce(ctx, caller);
    const errors = [...(problems.reason ? [{ text: problems.reason, href: '#reason' }] : []), ...(problems.allowStranded ? [{ text: problems.allowStranded, href: '#allowStranded' }] : [])];
    const counts = preview.counts!;
    return reply.render(
      'admin/policy-preview.njk',
      {
        section: SECTION,
        current,
        document,
        reason,
        stranded: preview.stranded,
        at: when(counts.at),
        usersRows: stateRows(counts.users.now, counts.users.after),
        elevatedRows: stateRows(counts.elevated.now, counts.elevated.after),
        requirements: counts.requirements.map((r) => ({
          name: r.name,
          id: r.id,
          note: r.now === null ? 'New in this change' : r.after === null ? 'Removed by this change' : r.mode === 'report-only' ? 'Report only: not enforced' : null,
          rows: stateRows(r.now, r.after),
        })),
        errors,
        fieldErrors: problems,
      },
      errors.length ? 400 : 200,
    );
  }

  app.get('/admin/policy/edit', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    try {
      return await renderEdit(reply, caller);
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.post('/admin/policy/preview', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const document = field(request.body, 'document');
    const reason = field(request.body, 'reason');
    try {
      const preview = await previewPolicy(ctx, caller, document);
      const reasonError = checkReason(caller, reason);
      if (!preview.ok || reasonError) {
        return await renderEdit(reply, caller, { document, reason }, {
          ...(preview.ok ? {} : { document: problemErrors(preview.problems) }),
          ...(reasonError ? { reason: message(reasonError) } : {}),
        });
      }
      return await renderPreview(reply, caller, document, reason, preview);
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.post('/admin/policy/apply', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const document = field(request.body, 'document');
    const reason = field(request.body, 'reason');
    try {
      const { version } = await applyPolicyFor(ctx, caller, document, reason, { allowStranded: field(request.body, 'allowStranded') === 'yes' });
      return reply.redirect(`/admin/policy?done=applied&version=${version}`, 303);
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      try {
        if (error.code === 'policy-invalid') {
          const preview = await previewPolicy(ctx, caller, document);
          return await renderEdit(reply, caller, { document, reason }, { document: preview.ok ? [{ text: message(error), href: '#document' }] : problemErrors(preview.problems) });
        }
        if (error.code === 'admin-reason-required' || error.code === 'policy-strands-people') {
          const preview = await previewPolicy(ctx, caller, document);
          if (!preview.ok) return await renderEdit(reply, caller, { document, reason }, { document: problemErrors(preview.problems) });
          return await renderPreview(reply, caller, document, reason, preview, error.code === 'admin-reason-required' ? { reason: message(error) } : { allowStranded: 'Confirm that you understand these people will not be able to sign in' });
        }
        return await refuse(reply, error);
      } catch (again) {
        return refuse(reply, again);
      }
    }
  });

  /** The rollback confirmation, first or again with the problem in place (400). */
  async function renderRollback(reply: FastifyReply, caller: AdminCaller, version: number, reason = '', problems: { reason?: string; allowStranded?: string; other?: string } = {}) {
    const preview = await rollbackPreview(ctx, caller, version);
    const errors = [
      ...problemErrors(preview.problems).map((p) => ({ ...p, href: '#changes' })),
      ...(problems.other && preview.problems.length === 0 ? [{ text: problems.other, href: '#changes' }] : []),
      ...(problems.reason ? [{ text: problems.reason, href: '#reason' }] : []),
      ...(problems.allowStranded ? [{ text: problems.allowStranded, href: '#allowStranded' }] : []),
    ];
    return reply.render(
      'admin/policy-rollback.njk',
      {
        section: SECTION,
        target: { ...preview.target, appliedAt: when(preview.target.appliedAt) },
        current: preview.current,
        diff: diffView(preview.diff),
        stranded: preview.stranded,
        blocked: preview.problems.length > 0,
        reason,
        errors,
        fieldErrors: problems,
      },
      errors.length ? 400 : 200,
    );
  }

  app.get<{ Params: { version: string } }>('/admin/policy/versions/:version/rollback', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    try {
      return await renderRollback(reply, caller, versionOf(request.params.version));
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.post<{ Params: { version: string } }>('/admin/policy/versions/:version/rollback', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const version = versionOf(request.params.version);
    const reason = field(request.body, 'reason');
    try {
      const applied = await rollbackTo(ctx, caller, version, reason, { allowStranded: field(request.body, 'allowStranded') === 'yes' });
      return reply.redirect(`/admin/policy?done=rolled-back&version=${applied.version}`, 303);
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      const problems =
        error.code === 'admin-reason-required'
          ? { reason: message(error) }
          : error.code === 'policy-strands-people'
            ? { allowStranded: 'Confirm that you understand these people will not be able to sign in' }
            : error.code === 'policy-invalid'
              ? { other: message(error) }
              : null;
      if (!problems) return refuse(reply, error);
      try {
        return await renderRollback(reply, caller, version, reason, problems);
      } catch (again) {
        return refuse(reply, again);
      }
    }
  });
}
