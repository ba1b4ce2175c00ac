/**
 * The compliance report as CSV (RFC 4180), streamed: rows are written as they are read, waiting when
 * the output is full, so memory stays flat however many users there are. Cells that a spreadsheet
 * would run as a formula (=, +, -, @, tab, carriage return) are prefixed with an apostrophe (OWASP
 * "CSV injection"), at the start of a cell and after a semicolon: a display name is the user's own text.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { ComplianceRow } from './compliance.js';

export const CSV_HEADER = ['email', 'name', 'organisation', 'elevated', 'roles', 'groups', 'methods', 'state', 'date', 'why'] as const;

/**
 * A spreadsheet set to a semicolon list separator (much of Europe) splits a record at every `;` inside
 * an unquoted-looking field too, so a formula character just after one is neutralised as well.
 */
export function csvCell(value: string): string {
  const safe = value.replace(/(^|;)(?=[=+\-@\t\r])/g, "$1'");
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(row: ComplianceRow): string {
  return (
    [row.email, row.name, row.organisation, row.elevated ? 'yes' : 'no', row.roles.join(';'), row.groups.join(';'), row.methods.join(';'), row.state, row.date ?? '', row.why.join('; ')]
      .map(csvCell)
      .join(',') + '\r\n'
  );
}

/** Writes the header and every row, a page at a time; resolves with the number of rows once all are handed to `out`. */
export async function writeComplianceCsv(pages: AsyncIterable<ComplianceRow[]>, out: Writable): Promise<number> {
  let count = 0;
  if (!out.write(CSV_HEADER.join(',') + '\r\n')) await once(out, 'drain');
  for await (const page of pages) {
    let buffer = '';
    for (const row of page) buffer += csvLine(row);
    count += page.length;
    if (!out.write(buffer)) await once(out, 'drain');
  }
  return count;
}
