/**
 * `portcullis feedback report`: answers to "Was this article helpful?" over a period (docs/help.md).
 */
import type { AppContext } from '../../app/context.js';
import { feedbackCsv, feedbackReport } from '../../app/help/report.js';
import { reasonText } from '../../app/help/reasons.js';
import { CliExit } from '../runtime.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** A day as YYYY-MM-DD (UTC midnight) or a full ISO 8601 instant. */
function dateOption(name: string, value: string, endOfDay: boolean): Date {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const date = new Date(day ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(date.getTime()) || !(day || /^\d{4}-\d{2}-\d{2}T/.test(value))) throw new CliExit(2, `${name} must be a date as YYYY-MM-DD, not ${value}`);
  // --to 2024-01-31 includes that whole day.
  return day && endOfDay ? new Date(date.getTime() + 86_400_000) : date;
}

/** Terminal control characters in a comment are shown as "?", so a comment cannot drive the terminal. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
}

export async function reportFeedback(ctx: AppContext, options: { from?: string; to?: string; article?: string; format: string }): Promise<void> {
  if (!['table', 'csv', 'json'].includes(options.format)) throw new CliExit(2, '--format must be table, csv or json');
  const to = options.to ? dateOption('--to', options.to, true) : ctx.clock();
  const from = options.from ? dateOption('--from', options.from, false) : new Date(to.getTime() - 30 * 86_400_000);
  if (from.getTime() >= to.getTime()) throw new CliExit(2, '--from must be before --to');
  const report = await feedbackReport(ctx, { from, to, article: options.article });
  if (options.format === 'json') return out(JSON.stringify(report, null, 2));
  if (options.format === 'csv') {
    process.stdout.write(feedbackCsv(report));
    return;
  }
  out(`Help article feedback from ${report.from} to ${report.to}:`);
  out('');
  if (!report.articles.length) return out('No feedback in this period.');
  out(table([['ARTICLE', 'HELPFUL', 'NOT HELPFUL'], ...report.articles.map((a) => [a.article, String(a.helpful), String(a.notHelpful)])]));
  for (const a of report.articles) {
    const reasons = Object.entries(a.reasons).filter(([, n]) => n > 0);
    if (!reasons.length && !a.comments.length) continue;
    out('');
    out(`${a.article}:`);
    for (const [id, n] of reasons) out(`  ${n} × ${reasonText(id)}`);
    for (const c of a.comments) out(`  ${c.at.slice(0, 16).replace('T', ' ')}  “${printable(c.comment).replace(/\n/g, ' ')}”`);
  }
}
