import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ComplianceRow } from './compliance.js';
import { CSV_HEADER, csvCell, csvLine, writeComplianceCsv } from './compliance-csv.js';

/** OWASP "CSV Injection": a cell starting with one of these is run as a formula by spreadsheets. */
const FORMULA_START = /^[=+\-@\t\r]/;

const row = (overrides: Partial<ComplianceRow> = {}): ComplianceRow => ({
  email: 'olive@example.org',
  name: 'Olive',
  organisation: 'North Trust',
  elevated: false,
  roles: ['user'],
  groups: [],
  methods: ['sms'],
  state: 'compliant',
  date: null,
  why: [],
  ...overrides,
});

/** One RFC 4180 record, read back as a spreadsheet importer or a script would. */
const readBack = (text: string): string[][] => parse(text, { relax_column_count: false }) as string[][];

describe('csvCell', () => {
  it.each([
    // OWASP CSV Injection: neutralise a leading = + - @ tab or carriage return with an apostrophe.
    ['=1+1', `'=1+1`],
    ['+44 7700 900123', `'+44 7700 900123`],
    ['-2+3', `'-2+3`],
    ['@SUM(A1:A9)', `'@SUM(A1:A9)`],
    ['\t=1+1', `'\t=1+1`],
    // RFC 4180 §2.6: a carriage return is quoted, after the apostrophe.
    ['\r=1+1', `"'\r=1+1"`],
    // RFC 4180 §2.6–2.7: commas, quotes and line breaks are quoted, quotes doubled.
    ['Smith, Jo', '"Smith, Jo"'],
    ['Jo "JJ" Smith', '"Jo ""JJ"" Smith"'],
    ['two\nlines', '"two\nlines"'],
    ['two\r\nlines', '"two\r\nlines"'],
    // Both at once: neutralised, then quoted.
    ['=HYPERLINK("http://evil.example","click")', `"'=HYPERLINK(""http://evil.example"",""click"")"`],
    // Left alone: plain text, a formula character not at the start, an empty cell, an existing apostrophe.
    ['Olive', 'Olive'],
    ['a=b-c+d@e', 'a=b-c+d@e'],
    ['', ''],
    [`'=already`, `'=already`],
    // A semicolon-separated spreadsheet starts a cell after each `;`: neutralised there too.
    ['Bob;=HYPERLINK("http://evil.example")', `"Bob;'=HYPERLINK(""http://evil.example"")"`],
    ['a;-1;@x;+2', `a;'-1;'@x;'+2`],
    ['Smith; Jo', 'Smith; Jo'],
  ])('%j → %s', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it('reads back as the value, apostrophe-prefixed exactly when it would start a formula, whatever the value', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', ' ', ',', '"', '\r', '\n', '\t', '=', '+', '-', '@', "'", ';', 'é', '𝐀') }), (value) => {
        const [record, ...rest] = readBack(`${csvCell(value)},end\r\n`);
        expect(rest).toEqual([]);
        expect(record![1]).toBe('end');
        // Nothing but apostrophes added, and no piece a comma- or semicolon-separated spreadsheet reads
        // as a cell starts a formula.
        expect(record![0]!.replaceAll("'", '')).toBe(value.replaceAll("'", ''));
        for (const piece of record![0]!.split(';')) expect(piece).not.toMatch(FORMULA_START);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('csvLine', () => {
  it('writes the columns in header order, lists joined with semicolons, CRLF-terminated', () => {
    const line = csvLine(
      row({
        elevated: true,
        roles: ['helpdesk', 'user'],
        groups: ['mfa pilot'],
        methods: ['sms', 'push'],
        state: 'in-grace',
        date: '2023-12-14T00:00:00.000Z',
        why: ['elevated-rights-push: in grace until 14 December 2023', 'all-mailboxes-registered (report only): action needed by 1 March 2024'],
      }),
    );
    expect(line.endsWith('\r\n')).toBe(true);
    expect(readBack(line)).toEqual([
      [
        'olive@example.org',
        'Olive',
        'North Trust',
        'yes',
        'helpdesk;user',
        'mfa pilot',
        'sms;push',
        'in-grace',
        '2023-12-14T00:00:00.000Z',
        'elevated-rights-push: in grace until 14 December 2023; all-mailboxes-registered (report only): action needed by 1 March 2024',
      ],
    ]);
    expect(CSV_HEADER).toHaveLength(10);
  });

  it('writes no date as an empty cell and not elevated as "no"', () => {
    expect(readBack(csvLine(row()))[0]!.slice(3)).toEqual(['no', 'user', '', 'sms', 'compliant', '', '']);
  });

  it('keeps one record of ten cells, none starting a formula, whatever people type into their name and organisation', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (name, organisation) => {
        const records = readBack(csvLine(row({ name, organisation })));
        expect(records).toHaveLength(1);
        expect(records[0]).toHaveLength(CSV_HEADER.length);
        for (const cell of records[0]!) for (const piece of cell.split(';')) expect(piece).not.toMatch(FORMULA_START);
        expect(records[0]![1]!.replaceAll("'", '')).toBe(name.replaceAll("'", ''));
      }),
      { numRuns: 500 },
    );
  });
});

describe('writeComplianceCsv', () => {
  function collector(options: { highWaterMark?: number } = {}) {
    const chunks: string[] = [];
    const pending: Array<() => void> = [];
    let hold = false;
    const stream = new Writable({
      highWaterMark: options.highWaterMark,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        if (hold) pending.push(() => callback());
        else callback();
      },
    });
    return {
      stream,
      text: () => chunks.join(''),
      /** Makes the consumer slow: writes are not acknowledged until released. */
      hold: () => (hold = true),
      release: () => {
        hold = false;
        for (const callback of pending.splice(0)) callback();
      },
    };
  }

  async function* pagesOf(pages: ComplianceRow[][], pulled: { count: number } = { count: 0 }): AsyncGenerator<ComplianceRow[]> {
    for (const page of pages) {
      pulled.count++;
      yield page;
    }
  }

  it('writes the header and every row of every page, counting the rows, and reads back with csv-parse', async () => {
    const pages = [
      [row({ email: 'a@example.org', name: '=HYPERLINK("http://evil.example","click")' }), row({ email: 'b@example.org', name: 'Smith, Jo' })],
      [],
      [row({ email: 'c@example.org', name: '@SUM(1+1)', organisation: 'Line\nbreak' }), row({ email: 'd@example.org', name: '-1' })],
    ];
    const out = collector();
    // Rows, not pages (3 pages, 4 rows).
    expect(await writeComplianceCsv(pagesOf(pages), out.stream)).toBe(4);
    expect(out.text().split('\r\n')[0]).toBe('email,name,organisation,elevated,roles,groups,methods,state,date,why');
    const records = parse(out.text(), { columns: true }) as Array<Record<string, string>>;
    expect(records.map((r) => [r.email, r.name, r.organisation])).toEqual([
      ['a@example.org', `'=HYPERLINK("http://evil.example","click")`, 'North Trust'],
      ['b@example.org', 'Smith, Jo', 'North Trust'],
      ['c@example.org', `'@SUM(1+1)`, 'Line\nbreak'],
      ['d@example.org', `'-1`, 'North Trust'],
    ]);
  });

  it('writes just the header when there are no rows', async () => {
    const out = collector();
    expect(await writeComplianceCsv(pagesOf([]), out.stream)).toBe(0);
    expect(out.text()).toBe(`${CSV_HEADER.join(',')}\r\n`);
  });

  it('waits for a full output to drain before reading the next page (memory stays flat)', async () => {
    const out = collector({ highWaterMark: 16 });
    const pulled = { count: 0 };
    out.hold();
    const done = writeComplianceCsv(pagesOf([[row({ email: 'a@example.org' })], [row({ email: 'b@example.org' })]], pulled), out.stream);
    for (let i = 0; i < 5; i++) await new Promise(setImmediate);
    // The header alone fills the buffer: no page is read until the consumer catches up.
    expect(pulled.count).toBe(0);
    out.release();
    expect(await done).toBe(2);
    expect(pulled.count).toBe(2);
    expect((parse(out.text(), { columns: true }) as Array<Record<string, string>>).map((r) => r.email)).toEqual(['a@example.org', 'b@example.org']);
  });

  it('rejects when the output fails while it waits, rather than hanging', async () => {
    const out = collector({ highWaterMark: 16 });
    out.hold();
    const done = writeComplianceCsv(pagesOf([[row()]]), out.stream);
    await new Promise(setImmediate);
    out.stream.destroy(new Error('disk full'));
    await expect(done).rejects.toThrow('disk full');
  });
});
