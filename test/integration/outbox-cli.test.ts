/**
 * `portcullis outbox` as a real process, reading messages queued by another process (this test) in the
 * same database, on SQLite and PostgreSQL.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext } from '../../src/app/context.js';
import type { OutboxEntry } from '../../src/channels/outbox.js';
import { loadConfig } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

describe.each(dialects)('portcullis outbox on %s', (dialect) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const ids: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    env = {
      DATABASE_URL: database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-outbox-')),
      PUBLIC_URL: 'http://localhost:8080',
    };
    const ctx = await createAppContext(loadConfig({ env }), { logger: pino({ level: 'silent' }) });
    try {
      ids.push(await ctx.delivery.enqueue({ channel: 'sms', to: '+447700900123', purpose: 'sign-in-code', text: '482913 is your Portcullis sign-in code.', code: '482913' }));
      ids.push(
        await ctx.delivery.enqueue({
          channel: 'email',
          to: 'alex@example.org',
          purpose: 'security-notice',
          subject: 'Your password was changed',
          text: 'Your password was changed.\nIf this was not you, call the helpdesk.',
        }),
      );
      expect(await ctx.delivery.dispatchDue()).toBe(2);
    } finally {
      await ctx.close();
    }
  });
  afterAll(async () => database?.drop());

  it('prints the development outbox as JSON, newest first, with the code', async () => {
    const result = await runCli(['outbox', '--json'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const messages = JSON.parse(result.stdout) as OutboxEntry[];
    expect(messages.map((m) => m.id)).toEqual([...ids].reverse());
    expect(messages[1]).toMatchObject({ channel: 'sms', to: '+447700900123', purpose: 'sign-in-code', code: '482913', status: 'sent', text: '482913 is your Portcullis sign-in code.' });
    expect(messages[0]).toMatchObject({ channel: 'email', to: 'alex@example.org', subject: 'Your password was changed' });
  });

  it('prints a table, filtered by recipient and limited', async () => {
    const sms = await runCli(['outbox', '--to', '+447700900123'], env);
    expect(sms.code).toBe(0);
    const lines = sms.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+CHANNEL\s+TO\s+MESSAGE\s+CODE$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z\s+sms\s+\+447700900123\s+482913 is your Portcullis sign-in code\.\s+482913$/);

    const newest = await runCli(['outbox', '--limit', '1'], env);
    expect(newest.stdout).toMatch(/email\s+alex@example\.org\s+Your password was changed: Your password was changed\. If this was not you, call the helpdesk\.\n/);
    expect(newest.stdout.trim().split('\n')).toHaveLength(2);
  });
});

describe('portcullis outbox --limit', () => {
  it('refuses a limit that is not 1 to 500, before opening the database', async () => {
    const result = await runCli(['outbox', '--limit', '0'], { PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-outbox-')) });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe('--limit must be a whole number from 1 to 500');
  });
});
