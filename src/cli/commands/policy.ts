/**
 * The policy and administration verbs: `policy check|apply|show|history|what-if`, `report compliance`,
 * `exception add|list|revoke`, `tap issue`, `push unblock`, `user reset-methods`, `session revoke` and
 * `group add|list|add-member|remove-member`. Each prints plain words for a person at a terminal, or
 * JSON/CSV for scripts.
 */
import { readFile } from 'node:fs/promises';
import type { AppContext } from '../../app/context.js';
import { compliancePages, complianceRows, complianceSummary, STATE_NAMES, type StateCounts } from '../../app/compliance.js';
import { writeComplianceCsv } from '../../app/compliance-csv.js';
import { addException, applyPolicyText, checkPolicyText, currentPolicy, revokeException, type PolicyCheck } from '../../app/policy.js';
import { issuePass } from '../../app/tap.js';
import { parseDuration } from '../../core/duration.js';
import { formatDay, zonedToInstant } from '../../core/policy/dates.js';
import { CliExit, cliActor, readStdin } from '../runtime.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function readPolicyFile(file: string): Promise<string> {
  if (file === '-') return readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new CliExit(1, `Cannot read ${file}: no such file`);
    throw error;
  }
}

/**
 * Refuses a document with problems, naming each (exit 1, as every refusal of a bad file; exit 2 when a
 * `client:KEY` names no registered client, a usage mistake like an unknown option value).
 */
function refuseProblems(file: string, check: PolicyCheck): void {
  if (check.ok) return;
  for (const problem of check.problems) process.stderr.write(`${problem.path ? `${problem.path}: ` : ''}${problem.message}\n`);
  throw new CliExit(check.problems.some((p) => p.kind === 'unknown-client') ? 2 : 1, `${file}: ${check.problems.length} problem${check.problems.length === 1 ? '' : 's'}; nothing was applied.`);
}

/**
 * Issue #12: says how many people the document would strand — every method they registered turned off
 * for them — by role, and refuses (exit 1) unless the operator said `--allow-stranded`.
 */
function reportStranded(file: string, check: PolicyCheck, allowStranded: boolean): void {
  const stranded = check.stranded;
  if (!stranded || stranded.total === 0) return;
  const write = (text: string) => (allowStranded ? out(text) : process.stderr.write(`${text}\n`));
  const people = `${stranded.total} ${stranded.total === 1 ? 'person' : 'people'}`;
  write(`This policy turns off every sign-in method that ${people} have registered:`);
  write(table([['ROLE', 'PEOPLE'], ...stranded.byRole.map((r) => [r.role, String(r.people)])]));
  write('Until a requirement’s grace ends they can sign in with it only to set up an allowed method; after that, only with a Temporary Access Pass.');
  if (!allowStranded) throw new CliExit(1, `${file}: would strand ${people}; nothing was applied. Give --allow-stranded to accept that.`);
}

export async function policyCheck(ctx: AppContext, file: string, options: { allowStranded?: boolean } = {}): Promise<void> {
  const check = await checkPolicyText(ctx, await readPolicyFile(file));
  refuseProblems(file, check);
  reportStranded(file, check, Boolean(options.allowStranded));
  const policy = check.policy!;
  out(`${file} is a valid policy: ${policy.requirements.length} requirement${policy.requirements.length === 1 ? '' : 's'}, ${policy.registration.length} registration requirement${policy.registration.length === 1 ? '' : 's'}, ${policy.campaigns.length} campaign${policy.campaigns.length === 1 ? '' : 's'}; every combination of roles and groups can satisfy it.`);
}

export async function policyApply(ctx: AppContext, file: string, options: { comment?: string; allowStranded?: boolean }): Promise<void> {
  const text = await readPolicyFile(file);
  const check = await checkPolicyText(ctx, text);
  refuseProblems(file, check);
  reportStranded(file, check, Boolean(options.allowStranded));
  // Checked again as it is applied: someone may have registered a method meanwhile.
  const { version } = await applyPolicyText(ctx, text, cliActor(), options.comment ?? '', { allowStranded: Boolean(options.allowStranded) });
  out(`Applied ${file} as policy version ${version}. Every node uses it within seconds.`);
}

export async function policyShow(ctx: AppContext, options: { version?: string }): Promise<void> {
  if (options.version !== undefined) {
    // Checked here: PostgreSQL refuses a non-integer parameter for an integer column with a raw error.
    if (!/^[1-9]\d{0,8}$/.test(options.version)) throw new CliExit(2, `--version must be a policy version number such as 1, not ${options.version}`);
    const version = Number(options.version);
    const row = await ctx.store.database.db.selectFrom('policy_versions').select(['document']).where('version', '=', version).executeTakeFirst();
    if (!row) throw new CliExit(1, `There is no policy version ${options.version}`);
    return void process.stdout.write(row.document.endsWith('\n') ? row.document : `${row.document}\n`);
  }
  const latest = await ctx.store.policy.latest();
  if (!latest) return out('No policy has been applied: every method is enabled for everyone and nothing is required.');
  process.stdout.write(latest.document.endsWith('\n') ? latest.document : `${latest.document}\n`);
}

export async function policyHistory(ctx: AppContext, options: { json?: boolean }): Promise<void> {
  const rows = await ctx.store.policy.versions();
  if (options.json) return out(JSON.stringify(rows.map((r) => ({ version: r.version, appliedBy: r.applied_by, appliedAt: r.applied_at, comment: r.comment })), null, 2));
  if (rows.length === 0) return out('No policy has been applied yet.');
  out(table([['VERSION', 'APPLIED', 'BY', 'COMMENT'], ...rows.map((r) => [String(r.version), r.applied_at, r.applied_by, r.comment])]));
}

/** A day in the policy's time zone, at midday: "on that date" means during it. */
async function dayOption(ctx: AppContext, text: string): Promise<Date> {
  const { policy } = await currentPolicy(ctx);
  const at = /^\d{4}-\d{2}-\d{2}$/.test(text) ? zonedToInstant(`${text}T12:00`, policy.timeZone) : null;
  if (!at) throw new CliExit(2, `--date must be a date as YYYY-MM-DD, not ${text}`);
  return at;
}

export async function policyWhatIf(ctx: AppContext, options: { date: string; role?: string; user?: string; json?: boolean }): Promise<void> {
  if (options.role && options.user) throw new CliExit(2, 'Give --role or --user, not both');
  const at = await dayOption(ctx, options.date);
  if (options.role && !(await ctx.store.roles.find(options.role))) throw new CliExit(1, `There is no role called ${options.role}`);
  if (options.user && !(await ctx.store.users.findByEmail(options.user))) throw new CliExit(1, `There is no user with the email address ${options.user}`);
  const { policy } = await currentPolicy(ctx);
  const rows = [];
  let count = 0;
  for await (const row of complianceRows(ctx, { at, role: options.role, email: options.user, onlyAtRisk: true })) {
    count += 1;
    if (options.json) process.stdout.write(`${JSON.stringify(row)}\n`);
    else if (rows.length < 10_000) rows.push(row);
  }
  if (options.json) return;
  const day = formatDay(at, policy.timeZone);
  if (count === 0) {
    return out(options.user ? `On ${day}, ${options.user} would be compliant.` : `On ${day}, every ${options.role ? `holder of ${options.role}` : 'user'} would be compliant.`);
  }
  out(`On ${day}, ${count} ${options.role ? `holder${count === 1 ? '' : 's'} of ${options.role}` : `user${count === 1 ? '' : 's'}`} would not be compliant:`);
  out(table([['EMAIL', 'STATE', 'WHY'], ...rows.map((r) => [r.email, r.state, r.why.join('; ')])]));
  if (count > rows.length) out(`… and ${count - rows.length} more (use --json for all of them).`);
}

function countsRow(label: string, counts: StateCounts): string[] {
  return [label, String(counts.total), ...STATE_NAMES.map((s) => String(counts.byState[s]))];
}

export async function reportCompliance(ctx: AppContext, options: { format: string; date?: string }): Promise<void> {
  if (!['table', 'csv', 'json'].includes(options.format)) throw new CliExit(2, '--format must be table, csv or json');
  const at = options.date ? await dayOption(ctx, options.date) : ctx.clock();
  if (options.format === 'csv') {
    await writeComplianceCsv(compliancePages(ctx, { at }), process.stdout);
    return;
  }
  const summary = await complianceSummary(ctx, at);
  if (options.format === 'json') return out(JSON.stringify(summary, null, 2));
  const { policy } = await currentPolicy(ctx);
  out(`Compliance on ${formatDay(at, policy.timeZone)} (policy version ${summary.policyVersion}), ${summary.users.total} active users:`);
  out('');
  out(table([['WHO', 'USERS', ...STATE_NAMES.map((s) => s.toUpperCase())], countsRow('everyone', summary.users), countsRow('elevated', summary.elevated)]));
  out('');
  if (summary.requirements.length) {
    out(
      table([
        ['REQUIREMENT', 'MODE', 'DATE', 'APPLIES TO', ...STATE_NAMES.map((s) => s.toUpperCase())],
        ...summary.requirements.map((r) => [r.id, r.mode, formatDay(new Date(r.date), policy.timeZone), String(r.total), ...STATE_NAMES.map((s) => String(r.byState[s]))]),
      ]),
    );
    out('');
  }
  out(`${summary.withoutMethod} active user${summary.withoutMethod === 1 ? ' has' : 's have'} no second method. For one row per user: --format csv.`);
}

export async function exceptionAdd(ctx: AppContext, email: string, options: { requirement: string; until?: string; for?: string; reason: string }): Promise<void> {
  if (Boolean(options.until) === Boolean(options.for)) throw new CliExit(2, 'Give --until DATE or --for DURATION (for a lost phone: --for 24h)');
  let until: Date | null = null;
  if (options.for) {
    const seconds = parseDuration(options.for);
    if (seconds === null || seconds <= 0) throw new CliExit(2, `--for must be a duration such as 24h or 30d, not ${options.for}`);
    until = new Date(ctx.clock().getTime() + seconds * 1000);
  } else {
    const { policy } = await currentPolicy(ctx);
    until = /^\d{4}-\d{2}-\d{2}$/.test(options.until!) ? zonedToInstant(options.until!, policy.timeZone) : null;
    if (!until) throw new CliExit(2, `--until must be a date as YYYY-MM-DD, not ${options.until}`);
  }
  const { id } = await addException(ctx, { email, requirementId: options.requirement, until, reason: options.reason }, cliActor());
  out(`Added exception ${id}: ${email} is exempt from ${options.requirement} until ${until.toISOString()}.`);
}

export async function exceptionList(ctx: AppContext, options: { user?: string; all?: boolean; json?: boolean }): Promise<void> {
  let userId: string | undefined;
  if (options.user) {
    const user = await ctx.store.users.findByEmail(options.user);
    if (!user) throw new CliExit(1, `There is no user with the email address ${options.user}`);
    userId = user.id;
  }
  const rows = await ctx.store.policy.exceptions({ userId, includeEnded: options.all, now: ctx.clock() });
  if (options.json) {
    return out(
      JSON.stringify(
        rows.map((r) => ({ id: r.id, email: r.email, requirement: r.requirement_id, until: r.until, reason: r.reason, createdBy: r.created_by, createdAt: r.created_at, revokedAt: r.revoked_at, revokedBy: r.revoked_by })),
        null,
        2,
      ),
    );
  }
  if (rows.length === 0) return out(options.all ? 'There are no exceptions.' : 'There are no live exceptions.');
  const now = ctx.clock().toISOString();
  out(
    table([
      ['ID', 'EMAIL', 'REQUIREMENT', 'UNTIL', 'STATUS', 'REASON', 'BY'],
      ...rows.map((r) => [r.id, r.email, r.requirement_id, r.until, r.revoked_at ? 'revoked' : r.until <= now ? 'ended' : 'live', r.reason, r.created_by]),
    ]),
  );
}

export async function exceptionRevoke(ctx: AppContext, id: string): Promise<void> {
  await revokeException(ctx, id, cliActor());
  out(`Revoked exception ${id}.`);
}

/** "ABCD-EFGH-JKLM-NPQR": easier to read out over the phone; any spaces or hyphens are ignored when typed. */
export function groupPass(pass: string): string {
  return pass.match(/.{1,4}/g)!.join('-');
}

export async function tapIssue(ctx: AppContext, email: string, options: { lifetime: string; multiUse?: boolean }): Promise<void> {
  const seconds = parseDuration(options.lifetime);
  if (seconds === null) throw new CliExit(2, `--lifetime must be a duration such as 1h or 8h, not ${options.lifetime}`);
  const { pass, expiresAt } = await issuePass(ctx, email, { lifetimeSeconds: seconds, multiUse: Boolean(options.multiUse) }, cliActor());
  out(`Temporary Access Pass for ${email} (shown once; give it to them directly, never by email):`);
  out('');
  out(`  ${groupPass(pass)}`);
  out('');
  out(`It works ${options.multiUse ? 'any number of times' : 'once'} until ${expiresAt.toISOString()}. Any earlier pass for them no longer works. They have been emailed that a pass was issued.`);
}
