/** `portcullis audit verify`: the audit log's chain, checked end to end (docs/operations.md#the-audit-log). */
import type { AppContext } from '../../app/context.js';
import { verifyAuditLog, type ChainHead } from '../../app/audit-chain.js';
import { CliExit } from '../runtime.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/** A checkpoint as SEQ:MAC (the seq and mac of an `audit.checkpoint` log line; at least 16 hex digits of the MAC). */
export function parseCheckpoint(text: string): ChainHead {
  const match = /^(\d+):([0-9a-fA-F]{16,64})$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) throw new CliExit(2, `--checkpoint must be SEQ:MAC, such as 120:3f9a…, with at least 16 hex digits of the MAC, not ${text}`);
  return { seq: Number(match[1]), mac: match[2]!.toLowerCase() };
}

export async function auditVerify(ctx: AppContext, options: { json?: boolean; checkpoint?: string[] }): Promise<void> {
  const expected = (options.checkpoint ?? []).map(parseCheckpoint);
  const result = await verifyAuditLog(ctx, { expected });
  if (options.json) {
    out(JSON.stringify(result, null, 2));
    if (!result.ok) throw new CliExit(1, '');
    return;
  }
  const checkpoint = result.lastCheckpoint ? `last checkpoint entry ${result.lastCheckpoint.seq} at ${result.lastCheckpoint.at}` : 'no checkpoint yet';
  if (result.ok) {
    const head = result.head ? `head ${result.head.seq} ${result.head.mac.slice(0, 16)}` : 'no head yet';
    const pending = result.pending ? ` (${result.pending} event${result.pending === 1 ? '' : 's'} too recent to seal, sealed on the next run)` : '';
    return out(`The audit log verifies: ${result.entries} entr${result.entries === 1 ? 'y' : 'ies'}, ${head}, ${checkpoint}.${pending}`);
  }
  const first = result.problems[0]!;
  out(`The audit log does not verify: ${result.problemCount} problem${result.problemCount === 1 ? '' : 's'} in ${result.entries} entries (${checkpoint}).`);
  for (const problem of result.problems) out(`  ${problem.message}`);
  if (result.problemCount > result.problems.length) out(`  … and ${result.problemCount - result.problems.length} more.`);
  throw new CliExit(1, `First broken entry: ${first.message}`);
}
