/**
 * Issue #16: `portcullis feedback report` — the real binary, on SQLite and PostgreSQL: counts per
 * article, reasons and comments over a period, as a table, JSON and CSV (formula cells neutralised).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext } from '../../src/app/context.js';
import type { FeedbackReport } from '../../src/app/help/report.js';
import { loadConfig } from '../../src/config/load.js';
import { createHelpFeedbackRepository } from '../../src/store/repositories/help-feedback.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

describe.each(dialects)('portcullis feedback report on %s', (dialect) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, env);

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    env = { DATABASE_URL: database.url, PORTCULLIS_SECRET: TEST_SECRET, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-fb-')), PUBLIC_URL: 'https://id.example.org' };
    const ctx = await createAppContext(loadConfig({ env: { ...env, LOG_LEVEL: 'silent' } }), { logger: pino({ level: 'silent' }) });
    const feedback = createHelpFeedbackRepository(ctx.store.database.db);
    const rows = [
      { article: 'lost-phone', helpful: true, reasons: [], comment: '', at: '2025-03-01T10:00:00Z' },
      { article: 'lost-phone', helpful: true, reasons: [], comment: '', at: '2025-03-02T10:00:00Z' },
      { article: 'lost-phone', helpful: false, reasons: ['out-of-date', 'too-long'], comment: '=HYPERLINK("http://evil")', at: '2025-03-03T10:00:00Z' },
      { article: 'new-phone', helpful: false, reasons: ['steps-did-not-work'], comment: 'Step 3 <b>failed</b>', at: '2025-03-04T10:00:00Z' },
      { article: 'new-phone', helpful: true, reasons: [], comment: '', at: '2025-05-01T10:00:00Z' },
    ];
    let n = 0;
    for (const r of rows) await feedback.insert({ id: `fb-${n++}`, article: r.article, helpful: r.helpful, reasons: r.reasons, comment: r.comment, createdAt: new Date(r.at) });
    await ctx.close();
  });
  afterAll(async () => database?.drop());

  it('reports counts, reasons and comments per article as JSON, over the period asked', async () => {
    const result = await cli(['feedback', 'report', '--from', '2025-03-01', '--to', '2025-03-31', '--format', 'json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as FeedbackReport;
    expect(report.articles.map((a) => [a.article, a.helpful, a.notHelpful])).toEqual([
      ['lost-phone', 2, 1],
      ['new-phone', 0, 1],
    ]);
    expect(report.articles[0]!.reasons).toMatchObject({ 'out-of-date': 1, 'too-long': 1, 'steps-did-not-work': 0 });
    expect(report.articles[1]!.comments).toEqual([{ at: '2025-03-04T10:00:00.000Z', reasons: ['steps-did-not-work'], comment: 'Step 3 <b>failed</b>' }]);
  });

  it('filters by article, and shows a table with the reasons in words', async () => {
    const result = await cli(['feedback', 'report', '--from', '2025-01-01', '--to', '2025-12-31', '--article', 'new-phone']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/ARTICLE\s+HELPFUL\s+NOT HELPFUL\nnew-phone\s+1\s+1/);
    expect(result.stdout).toContain('1 × The steps did not work for me');
    expect(result.stdout).toContain('“Step 3 <b>failed</b>”');
    expect(result.stdout).not.toContain('lost-phone');
  });

  it('writes CSV with formula cells neutralised', async () => {
    const result = await cli(['feedback', 'report', '--from', '2025-03-01', '--to', '2025-03-31', '--format', 'csv']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\r\n');
    expect(lines[0]).toBe('article,helpful,not_helpful,not-what-i-needed,hard-to-understand,steps-did-not-work,out-of-date,too-long,something-else,comments');
    expect(lines[1]).toBe(`lost-phone,2,1,0,0,0,1,1,0,"'=HYPERLINK(""http://evil"")"`);
  });

  it('says when there is nothing, and refuses bad options', async () => {
    expect((await cli(['feedback', 'report', '--from', '2020-01-01', '--to', '2020-01-02'])).stdout).toContain('No feedback in this period.');
    const bad = await cli(['feedback', 'report', '--format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format must be table, csv or json');
    expect((await cli(['feedback', 'report', '--from', 'yesterday'])).stderr).toContain('--from must be a date');
  });
});
