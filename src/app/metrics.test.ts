import { describe, expect, it } from 'vitest';
import { signInReasons, type SignInReason } from '../core/reasons.js';
import { countDatabaseWork, createMetrics, publicSignInReason, publicSignInReasons } from './metrics.js';

/** Issue #12: whoever reads /metrics must not learn whether an address has an account. */
describe('the sign-in counter’s public reasons', () => {
  const credentialReasons: SignInReason[] = ['unknown-account', 'password-incorrect', 'no-password-set'];

  it.each(credentialReasons)('counts %s as credentials-incorrect', (reason) => {
    expect(publicSignInReason(reason)).toBe('credentials-incorrect');
  });

  it('never carries a label that tells an unknown address from a known one', () => {
    for (const reason of credentialReasons) expect(publicSignInReasons).not.toContain(reason);
    expect(publicSignInReasons).toContain('credentials-incorrect');
  });

  it('keeps every other reason as it is (the audit log and the metrics agree on them)', () => {
    for (const reason of signInReasons.filter((r) => !credentialReasons.includes(r))) expect(publicSignInReason(reason)).toBe(reason);
  });

  it('writes the same registry text whichever of the three happened', async () => {
    const texts = await Promise.all(
      credentialReasons.map(async (reason) => {
        const metrics = createMetrics({ defaultMetrics: false });
        metrics.signIns.inc({ outcome: 'failure', reason });
        return (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('portcullis_sign_ins_total'));
      }),
    );
    expect(texts[0]).toContain('portcullis_sign_ins_total{outcome="failure",reason="credentials-incorrect"} 1');
    expect(texts[1]).toEqual(texts[0]);
    expect(texts[2]).toEqual(texts[0]);
  });
});

/** Issue #18: what the database is asked, as counters a scraper can rate (docs/sizing.md). */
describe('the database counters', () => {
  it('report the statements, writes and round trips counted so far, each time they are read', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const counts = { statements: 5, writes: 2, roundTrips: 3 };
    countDatabaseWork(metrics, counts);
    const read = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await metrics.registry.metrics())?.[1]);
    expect(await read('portcullis_database_statements_total')).toBe(5);
    counts.statements = 12;
    counts.writes = 7;
    counts.roundTrips = 4;
    expect(await read('portcullis_database_statements_total')).toBe(12);
    expect(await read('portcullis_database_writes_total')).toBe(7);
    expect(await read('portcullis_database_round_trips_total')).toBe(4);
  });
});
