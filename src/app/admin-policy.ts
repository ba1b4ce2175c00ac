/**
 * The policy in the admin console and the admin API (issue #15 point 4): the policy in force and its
 * versions, a preview of what an edit would do (the compliance counts now and with the draft, and whom
 * it would strand) before it is applied, a line diff between two versions, and rolling back to one.
 * Anyone who administers may look; only a global administrator, with the `admin:policy` scope, may
 * change it. Every change is a new version, audited with who did it and why.
 */
import { diffLines } from 'diff';
import { stringify as stringifyYaml } from 'yaml';
import { may } from '../core/admin/scope.js';
import type { Actor } from '../core/audit.js';
import { PortcullisError } from '../core/errors.js';
import type { PolicyProblem } from '../core/policy/document.js';
import { because, requireScope, type AdminCaller } from './admin-api.js';
import { complianceSummary, STATE_NAMES, type StateCounts, type StateName } from './compliance.js';
import type { AppContext } from './context.js';
import { applyPolicyText, checkPolicyText, DEFAULT_POLICY_DOCUMENT, describeStranded } from './policy.js';

export interface PolicyVersionSummary {
  version: number;
  appliedAt: string;
  /** Who applied it, as people know them: an email address, or the CLI's or system's name. */
  appliedBy: string;
  comment: string;
}

export interface PolicyVersionDetail extends PolicyVersionSummary {
  document: string;
}

/** Whether the caller may change the policy (edit, apply, roll back): the console shows the links only then. */
export function mayEditPolicy(caller: AdminCaller): boolean {
  return caller.scopes.has('admin:policy') && may(caller.authority, 'edit-policy', null);
}

function requireEditRights(caller: AdminCaller): void {
  requireScope(caller, 'admin:policy');
  if (!may(caller.authority, 'edit-policy', null)) throw new PortcullisError('admin-forbidden');
}

/** `user:<id>` as that person's email address; other names as they are. */
async function namesOf(ctx: AppContext, appliedBy: readonly string[]): Promise<Map<string, string>> {
  const ids = [...new Set(appliedBy.filter((a) => /^user:[0-9a-f-]{36}$/.test(a)).map((a) => a.slice('user:'.length)))];
  const rows = ids.length ? await ctx.store.database.db.selectFrom('users').select(['id', 'email']).where('id', 'in', ids).execute() : [];
  return new Map(rows.map((r) => [`user:${r.id}`, r.email]));
}

/** Every version applied, newest first. */
export async function policyVersions(ctx: AppContext, caller: AdminCaller): Promise<PolicyVersionSummary[]> {
  requireScope(caller, 'admin:read');
  const rows = await ctx.store.policy.versions();
  const names = await namesOf(ctx, rows.map((r) => r.applied_by));
  return rows.map((r) => ({ version: r.version, appliedAt: r.applied_at, appliedBy: names.get(r.applied_by) ?? r.applied_by, comment: r.comment }));
}

async function versionRow(ctx: AppContext, version: number) {
  const row = Number.isSafeInteger(version) && version > 0
    ? await ctx.store.database.db.selectFrom('policy_versions').select(['version', 'document', 'applied_by', 'applied_at', 'comment']).where('version', '=', version).executeTakeFirst()
    : undefined;
  if (!row) throw new PortcullisError('admin-policy-version-not-found', { version: String(version) });
  return row;
}

/** One version with its document as it was applied. */
export async function policyVersion(ctx: AppContext, caller: AdminCaller, version: number): Promise<PolicyVersionDetail> {
  requireScope(caller, 'admin:read');
  const row = await versionRow(ctx, version);
  const names = await namesOf(ctx, [row.applied_by]);
  return { version: row.version, appliedAt: row.applied_at, appliedBy: names.get(row.applied_by) ?? row.applied_by, comment: row.comment, document: row.document };
}

/**
 * The policy in force: the latest version, or (none applied yet) version 0, the built-in default that
 * enables every method for everyone and requires nothing.
 */
export async function policyInForce(ctx: AppContext, caller: AdminCaller): Promise<PolicyVersionDetail> {
  requireScope(caller, 'admin:read');
  const latest = await ctx.store.policy.latest();
  if (!latest) return { version: 0, appliedAt: '', appliedBy: 'Portcullis (the default)', comment: 'No policy has been applied yet', document: stringifyYaml(DEFAULT_POLICY_DOCUMENT) };
  return policyVersion(ctx, caller, latest.version);
}

export interface CountsChange {
  now: StateCounts;
  after: StateCounts;
}

export interface PolicyPreview {
  ok: boolean;
  /** What is wrong with the draft, each at its place in the document ("requirements[0].strength"). */
  problems: PolicyProblem[];
  /** People the draft would leave with no method they may use; applying it then needs the caller's say-so. */
  stranded: { total: number; byRole: Array<{ role: string; people: number }>; description: string } | null;
  /** The compliance counts at `at` under the policy in force and under the draft (a valid draft only). */
  counts: {
    at: string;
    users: CountsChange;
    elevated: CountsChange;
    /** Per requirement of either policy: null where that policy does not have it. */
    requirements: Array<{ id: string; name: string; type: 'requirement' | 'registration'; mode: 'enforce' | 'report-only'; now: StateCounts | null; after: StateCounts | null }>;
  } | null;
}

/** What applying `text` would do, at ctx.clock(), without applying it. */
export async function previewPolicy(ctx: AppContext, caller: AdminCaller, text: string): Promise<PolicyPreview> {
  requireEditRights(caller);
  const check = await checkPolicyText(ctx, normalised(text));
  const stranded = check.stranded && check.stranded.total > 0 ? { ...check.stranded, description: describeStranded(check.stranded) } : null;
  if (!check.ok || !check.policy) return { ok: false, problems: check.problems, stranded, counts: null };
  const at = ctx.clock();
  // Only a global administrator may get here, so every organisation is counted.
  const [now, after] = await Promise.all([complianceSummary(ctx, at), complianceSummary(ctx, at, undefined, { draft: check.policy })]);
  const ids = [...new Set([...now.requirements.map((r) => r.id), ...after.requirements.map((r) => r.id)])];
  const requirements = ids.map((id) => {
    const before = now.requirements.find((r) => r.id === id);
    const draft = after.requirements.find((r) => r.id === id);
    const named = (draft ?? before)!;
    return { id, name: named.name, type: named.type, mode: named.mode, now: before ? countsOf(before) : null, after: draft ? countsOf(draft) : null };
  });
  return { ok: true, problems: [], stranded, counts: { at: at.toISOString(), users: { now: now.users, after: after.users }, elevated: { now: now.elevated, after: after.elevated }, requirements } };
}

const countsOf = (c: StateCounts): StateCounts => ({ total: c.total, byState: Object.fromEntries(STATE_NAMES.map((s) => [s, c.byState[s]])) as Record<StateName, number> });

/** Applies `text` as the next version, its comment the caller's reason (kept as `why` in the audit event). */
export async function applyPolicyFor(ctx: AppContext, caller: AdminCaller, text: string, reason: string, options: { allowStranded?: boolean } = {}): Promise<{ version: number }> {
  requireEditRights(caller);
  const actor = because(caller, reason);
  return applyPolicyText(ctx, normalised(text), actor, whyOf(actor, reason), { allowStranded: options.allowStranded ?? false });
}

/**
 * Line ends as the CLI writes them: a browser sends a form's text with CRLF (HTML's form submission
 * normalises line breaks), and a version kept so would differ from its neighbours on every line.
 */
const normalised = (text: string): string => text.replace(/\r\n?/g, '\n');

/** The reason as `because` kept it (trimmed, spaces collapsed). */
const whyOf = (actor: Actor, reason: string): string => ('reason' in actor && actor.reason) || reason.trim();

export interface DiffLine {
  kind: 'added' | 'removed' | 'unchanged';
  text: string;
  /** Its line number in the `from` version (null for an added line). */
  fromLine: number | null;
  /** Its line number in the `to` version (null for a removed line). */
  toLine: number | null;
}

export interface PolicyDiff {
  from: number;
  to: number;
  added: number;
  removed: number;
  lines: DiffLine[];
}

/** The lines of two texts, each added, removed or unchanged (jsdiff's Myers diff), numbered on both sides. */
export function diffDocuments(from: string, to: string): Pick<PolicyDiff, 'added' | 'removed' | 'lines'> {
  const lines: DiffLine[] = [];
  let fromLine = 1;
  let toLine = 1;
  for (const change of diffLines(from, to)) {
    const texts = change.value.split('\n');
    if (texts.at(-1) === '') texts.pop();
    for (const text of texts) {
      if (change.added) lines.push({ kind: 'added', text, fromLine: null, toLine: toLine++ });
      else if (change.removed) lines.push({ kind: 'removed', text, fromLine: fromLine++, toLine: null });
      else lines.push({ kind: 'unchanged', text, fromLine: fromLine++, toLine: toLine++ });
    }
  }
  return { added: lines.filter((l) => l.kind === 'added').length, removed: lines.filter((l) => l.kind === 'removed').length, lines };
}

/** What changed from version `from` to version `to`. */
export async function diffVersions(ctx: AppContext, caller: AdminCaller, from: number, to: number): Promise<PolicyDiff> {
  requireScope(caller, 'admin:read');
  const [a, b] = await Promise.all([versionRow(ctx, from), versionRow(ctx, to)]);
  return { from: a.version, to: b.version, ...diffDocuments(a.document, b.document) };
}

/** What rolling back to `version` would change: the diff from the policy in force to it. */
export async function rollbackPreview(ctx: AppContext, caller: AdminCaller, version: number): Promise<RollbackPreview> {
  requireEditRights(caller);
  const target = await policyVersion(ctx, caller, version);
  const latest = await ctx.store.policy.latest();
  if (!latest || latest.version === target.version) throw new PortcullisError('admin-policy-rollback-current', { version: String(target.version) });
  // The old document is checked against the directory as it is now: a role it names may have gone.
  const check = await checkPolicyText(ctx, target.document);
  return {
    target,
    current: latest.version,
    diff: await diffVersions(ctx, caller, latest.version, target.version),
    problems: check.problems,
    stranded: check.stranded && check.stranded.total > 0 ? { ...check.stranded, description: describeStranded(check.stranded) } : null,
  };
}

export interface RollbackPreview {
  target: PolicyVersionDetail;
  /** The version in force. */
  current: number;
  diff: PolicyDiff;
  /** Why the old document cannot be applied now, if it cannot. */
  problems: PolicyProblem[];
  stranded: PolicyPreview['stranded'];
}

/**
 * Applies version `version`'s document again, as the next version: history is never rewritten. It is
 * checked against the directory as it is now, like any edit, and may strand people only with leave.
 */
export async function rollbackTo(ctx: AppContext, caller: AdminCaller, version: number, reason: string, options: { allowStranded?: boolean } = {}): Promise<{ version: number }> {
  requireEditRights(caller);
  const actor = because(caller, reason);
  const target = await versionRow(ctx, version);
  const latest = await ctx.store.policy.latest();
  if (!latest || latest.version === target.version) throw new PortcullisError('admin-policy-rollback-current', { version: String(target.version) });
  return applyPolicyText(ctx, target.document, actor, `Rolled back to version ${target.version}: ${whyOf(actor, reason)}`, { allowStranded: options.allowStranded ?? false });
}

/** The document in force, to edit: for those who may change the policy only. */
export async function policyToEdit(ctx: AppContext, caller: AdminCaller): Promise<PolicyVersionDetail> {
  requireEditRights(caller);
  return policyInForce(ctx, caller);
}

/** The reason as an action would keep it, or the refusal `because` gives (so a form can say so before anything runs). */
export function checkReason(caller: AdminCaller, reason: string): PortcullisError | null {
  try {
    because(caller, reason);
    return null;
  } catch (error) {
    if (error instanceof PortcullisError) return error;
    throw error;
  }
}
