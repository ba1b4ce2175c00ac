/**
 * Recovery codes (NIST SP 800-63B-4 §3.1.2 look-up secrets) against a real SQLite store: set-up keeps
 * only keyed hashes, each code works once (also when two requests race with it), and a use is audited
 * and emailed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The registry first, as the app loads it: a unit's set-up steps (enrolment.ts, the policy) import it back.
import { units } from '../index.js';
import { recoveryCodeStrategy, recoveryCodeUnit } from './index.js';
import { normaliseRecoveryCode, parseRecoveryCodeData } from './codes.js';
import { createTestContext, type TestContext } from '../../../../test/helpers/context.js';
import { addOrganisation, addUser } from '../../directory.js';
import { applyPolicyText, DEFAULT_POLICY_DOCUMENT } from '../../policy.js';
import type { ChallengeContext, ChallengeResponse } from '../strategy.js';
import type { EnrolmentInput } from '../unit.js';
import type { ActiveSession } from '../../sessions.js';
import type { MethodRow, UserRow } from '../../../store/schema.js';
import { createPageRenderer } from '../../../server/plugins/views.js';

const actor = { kind: 'cli', name: 'test' } as const;
const signIn: ChallengeContext = { purpose: 'sign-in', binding: 'flow', ip: '192.0.2.1' };
const code = (text: string): ChallengeResponse => ({ type: 'code', code: text });

describe('recovery codes (sqlite)', () => {
  let ctx: TestContext;
  let user: UserRow;
  let counter = 0;

  beforeAll(async () => {
    ctx = await createTestContext('sqlite');
    await addOrganisation(ctx, 'Recovery Trust', actor);
  });

  afterAll(async () => {
    await ctx?.destroy();
  });

  async function newUser(): Promise<UserRow> {
    counter += 1;
    return (await addUser(ctx, { email: `recovery${counter}@example.org`, displayName: `Person ${counter}`, organisation: 'Recovery Trust', roles: [] }, actor)).user;
  }

  const methodRow = async (id: string): Promise<MethodRow> => (await ctx.store.methods.find(id))!;

  /** Begins and finishes a set through the strategy: the codes shown, and the active method. */
  async function activeSet(owner: UserRow): Promise<{ codes: string[]; method: MethodRow }> {
    const started = await recoveryCodeStrategy.beginEnrolment!(ctx, owner, {}, { purpose: 'enrolment', binding: 'enrolment', ip: '192.0.2.1' });
    const pending = await methodRow(started.methodId);
    expect(await recoveryCodeStrategy.finishEnrolment!(ctx, owner, pending, null, code('saved'), { purpose: 'enrolment', binding: `enrolment:${pending.id}`, ip: '192.0.2.1' })).toEqual({ ok: true });
    return { codes: started.shown!.codes as string[], method: await methodRow(started.methodId) };
  }

  beforeAll(async () => {
    user = await newUser();
  });

  it('begins with a pending method holding ten keyed hashes and no code itself', async () => {
    const started = await recoveryCodeStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'enrolment', ip: '192.0.2.1' });
    expect(started.challengeId).toBeNull();
    const codes = started.shown!.codes as string[];
    expect(codes).toHaveLength(10);
    const row = await methodRow(started.methodId);
    expect(row).toMatchObject({ kind: 'recovery-code', status: 'pending', user_id: user.id, secret_sealed: null, lookup_key: null, phone_e164: null });
    expect(Date.parse(row.pending_expires_at!) - Date.parse(row.created_at)).toBe(15 * 60 * 1000);
    const data = parseRecoveryCodeData(row.data)!;
    expect(data.codes).toHaveLength(10);
    expect(data.codes.every((c) => c.used === null)).toBe(true);
    expect(new Set(data.codes.map((c) => c.h)).size).toBe(10);
    // No code, in either form, anywhere in the row.
    const stored = JSON.stringify(row).toUpperCase();
    for (const shown of codes) {
      expect(stored).not.toContain(shown);
      expect(stored).not.toContain(normaliseRecoveryCode(shown)!);
    }
    expect(recoveryCodeStrategy.detail(row)).toBe('10 of 10 left');
  });

  it('activates only when the person says they saved the codes', async () => {
    const started = await recoveryCodeStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'enrolment', ip: '192.0.2.1' });
    const pending = await methodRow(started.methodId);
    const enrolment: ChallengeContext = { purpose: 'enrolment', binding: `enrolment:${pending.id}`, ip: '192.0.2.1' };
    for (const answer of ['', 'yes', 'SAVED', 'saved ']) {
      expect(await recoveryCodeStrategy.finishEnrolment!(ctx, user, pending, null, code(answer), enrolment)).toEqual({ ok: false, reason: 'code-incorrect' });
    }
    expect(await recoveryCodeStrategy.finishEnrolment!(ctx, user, pending, null, { type: 'event' }, enrolment)).toEqual({ ok: false, reason: 'code-incorrect' });
    expect((await methodRow(pending.id)).status).toBe('pending');
    expect(await recoveryCodeStrategy.finishEnrolment!(ctx, user, pending, null, code('saved'), enrolment)).toEqual({ ok: true });
    expect((await methodRow(pending.id)).status).toBe('active');
    expect((await ctx.store.audit.list({ subjectUserId: user.id, type: 'recovery-codes.created' })).map((e) => JSON.parse(e.details))).toContainEqual({ methodId: pending.id, codes: 10 });
  });

  it('accepts each code once, however it is typed, and refuses it again', async () => {
    const owner = await newUser();
    const { codes, method } = await activeSet(owner);
    for (const [index, shown] of codes.entries()) {
      const current = await methodRow(method.id);
      const typed = index % 2 ? shown.toLowerCase().replace('-', ' ') : shown;
      expect(await recoveryCodeStrategy.verify(ctx, owner, current, null, code(typed), signIn)).toEqual({ ok: true });
      const after = await methodRow(method.id);
      expect(recoveryCodeStrategy.detail(after)).toBe(`${9 - index} of 10 left`);
      expect(await recoveryCodeStrategy.verify(ctx, owner, after, null, code(shown), signIn)).toEqual({ ok: false, reason: 'code-reused' });
    }
    // Every code is spent: none works again.
    const spent = await methodRow(method.id);
    for (const shown of codes) expect(await recoveryCodeStrategy.verify(ctx, owner, spent, null, code(shown), signIn)).toEqual({ ok: false, reason: 'code-reused' });
    expect(parseRecoveryCodeData(spent.data)!.codes.every((c) => c.used !== null)).toBe(true);
  });

  it('refuses a wrong code, a code of another set and what is not a code', async () => {
    const owner = await newUser();
    const { method } = await activeSet(owner);
    const other = await activeSet(await newUser());
    for (const typed of ['ABCDE-FGHJK', other.codes[0]!, '', '123456', 'not a code at all', 'ABCDE-FGHJ0']) {
      expect(await recoveryCodeStrategy.verify(ctx, owner, method, null, code(typed), signIn)).toEqual({ ok: false, reason: 'code-incorrect' });
    }
    expect(await recoveryCodeStrategy.verify(ctx, owner, method, null, { type: 'event' }, signIn)).toEqual({ ok: false, reason: 'code-incorrect' });
    expect((await methodRow(method.id)).data).toBe(method.data);
  });

  it('lets exactly one of two requests racing with the same code through', async () => {
    const owner = await newUser();
    const { codes, method } = await activeSet(owner);
    for (const shown of codes.slice(0, 3)) {
      const row = await methodRow(method.id);
      const results = await Promise.all([
        recoveryCodeStrategy.verify(ctx, owner, row, null, code(shown), signIn),
        recoveryCodeStrategy.verify(ctx, owner, row, null, code(shown), signIn),
      ]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'code-reused' }]);
    }
    expect(recoveryCodeStrategy.detail(await methodRow(method.id))).toBe('7 of 10 left');
    expect(await ctx.store.audit.list({ subjectUserId: owner.id, type: 'recovery-code.used' })).toHaveLength(3);
  });

  it('audits a use and emails the person how many codes are left', async () => {
    const owner = await newUser();
    const { codes, method } = await activeSet(owner);
    expect(await recoveryCodeStrategy.verify(ctx, owner, method, null, code(codes[4]!), signIn)).toEqual({ ok: true });
    const events = await ctx.store.audit.list({ subjectUserId: owner.id, type: 'recovery-code.used' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ip: '192.0.2.1', actor_type: 'user', actor_id: owner.id });
    expect(JSON.parse(events[0]!.details)).toEqual({ methodId: method.id, left: 9 });
    const mail = await ctx.delivery.listOutbox({ to: owner.email });
    const notice = mail.find((m) => m.subject === 'A recovery code was used to sign in');
    expect(notice).toMatchObject({ channel: 'email', purpose: 'security-notice' });
    expect(notice!.text).toContain('You have 9 recovery codes left.');
    expect(notice!.text).toContain('get new recovery codes from Security info');
    // The email never carries a code.
    for (const shown of codes) expect(notice!.text).not.toContain(shown);
  });

  it('refuses a code while the set is still pending', async () => {
    const owner = await newUser();
    const started = await recoveryCodeStrategy.beginEnrolment!(ctx, owner, {}, { purpose: 'enrolment', binding: 'enrolment', ip: '192.0.2.1' });
    const pending = await methodRow(started.methodId);
    const shown = (started.shown!.codes as string[])[0]!;
    expect(await recoveryCodeStrategy.verify(ctx, owner, pending, null, code(shown), signIn)).toEqual({ ok: false, reason: 'code-incorrect' });
    expect(await ctx.store.audit.list({ subjectUserId: owner.id, type: 'recovery-code.used' })).toHaveLength(0);
    expect((await methodRow(pending.id)).data).toBe(pending.data);
  });

  it('asks for a code on a code page, and says what deleting means', async () => {
    const page = await recoveryCodeStrategy.challengePage(ctx, { user: { id: user.id, email: user.email }, method: {} as MethodRow, detail: '10 of 10 left', challengeId: null, context: signIn });
    expect(page).toMatchObject({ template: 'sign-in/verify.njk', data: { heading: 'Enter a recovery code', isPass: true, codeLabel: 'Recovery code', canResend: false } });
    expect(recoveryCodeStrategy.deletionNote).toBe('Your recovery codes will stop working.');
    expect(recoveryCodeStrategy.replacesExisting).toBe(true);
    expect(await recoveryCodeStrategy.beginChallenge(ctx, user, {} as MethodRow, signIn)).toEqual({ challengeId: null });
  });

  describe('the unit on Security info', () => {
    const enrolment = recoveryCodeUnit.enrolment!;

    beforeAll(async () => {
      // The default policy does not enable recovery codes: this one does.
      await applyPolicyText(ctx, JSON.stringify({ ...DEFAULT_POLICY_DOCUMENT, methods: { ...DEFAULT_POLICY_DOCUMENT.methods, 'recovery-code': { enabled: true } } }), actor);
    });

    function inputFor(owner: UserRow, form: Record<string, string> = {}, offered = true): EnrolmentInput {
      const session: ActiveSession = {
        id: 'session-not-stored',
        user: owner,
        createdAt: ctx.clock(),
        methods: [{ method: 'totp', at: ctx.clock().toISOString() }],
        restricted: null,
        registrationGrantUntil: null,
      };
      return { ctx, session, client: { ip: '192.0.2.1', userAgent: null }, form, query: {}, offers: (kind) => offered && kind === 'recovery-code', recommended: null };
    }

    it('is offered only beside another method, when the policy offers it', async () => {
      const owner = await newUser();
      expect(units).toContain(recoveryCodeUnit);
      expect(recoveryCodeUnit.slug).toBe('recovery-codes');
      expect(enrolment.value).toBe('recovery-codes');
      expect(await enrolment.choice(inputFor(owner), false)).toBeNull();
      expect(await enrolment.choice(inputFor(owner, {}, false), true)).toBeNull();
      expect(await enrolment.choice(inputFor(owner), true)).toEqual({
        text: 'Recovery codes',
        hint: 'Ten codes to keep safe, for when you cannot use your phone. Setting up new codes stops your old ones working.',
        group: 'recovery-codes',
        kind: 'recovery-code',
      });
    });

    it('shows the codes once, needs the box ticked, and a new set replaces the old one', async () => {
      const owner = await newUser();
      const first = await enrolment.start(inputFor(owner));
      expect(first.type).toBe('page');
      if (first.type !== 'page') return;
      expect(first.page.template).toBe('security-info/add-recovery-codes.njk');
      const { methodId, codes, backHref } = first.page.data as { methodId: string; codes: string[]; backHref: string };
      expect(backHref).toBe('/security-info/add');
      expect(codes).toHaveLength(10);
      const pendingRow = await methodRow(methodId);
      // The codes cannot be shown again.
      expect(await enrolment.pending!(inputFor(owner), pendingRow)).toEqual({ type: 'redirect', to: '/security-info/add' });
      expect(await enrolment.finish!(inputFor(owner, { saved: '' }), pendingRow)).toEqual({ type: 'refused', error: { code: 'recovery-codes-not-saved', field: 'saved' } });
      expect(await enrolment.finish!(inputFor(owner, { saved: 'yes' }), pendingRow)).toEqual({ type: 'added', methodId, proved: null, to: '/security-info?done=added' });
      expect((await methodRow(methodId)).status).toBe('active');

      const second = await enrolment.start(inputFor(owner));
      if (second.type !== 'page') throw new Error('expected the codes page');
      const next = second.page.data as { methodId: string; codes: string[] };
      expect(await enrolment.finish!(inputFor(owner, { saved: 'yes' }), await methodRow(next.methodId))).toMatchObject({ type: 'added', methodId: next.methodId });
      // The old set is gone in the same transaction: its codes stop working.
      expect(await ctx.store.methods.find(methodId)).toBeUndefined();
      const active = (await ctx.store.methods.activeForUser(owner.id)).filter((m) => m.kind === 'recovery-code');
      expect(active.map((m) => m.id)).toEqual([next.methodId]);
      expect(await recoveryCodeStrategy.verify(ctx, owner, active[0]!, null, code(next.codes[0]!), signIn)).toEqual({ ok: true });
    });
    it('renders the page: the codes once, the box to tick, and its error', () => {
      const render = createPageRenderer('Test Trust');
      const codes = ['ABCDE-FGHJK', 'MNPQR-STUVW'];
      const html = render('security-info/add-recovery-codes.njk', { backHref: '/security-info/add', methodId: 'm-1', codes, csrfToken: 'token-1' });
      expect(html).toContain('Save your recovery codes');
      for (const shown of codes) expect(html).toContain(`<code class="portcullis-key">${shown}</code>`);
      expect(html).toContain('action="/security-info/add/m-1"');
      expect(html).toContain('name="_csrf" value="token-1"');
      expect(html).toMatch(/<input[^>]*name="saved"[^>]*value="yes"/);
      expect(html).toContain('I have saved my recovery codes');
      expect(html).toContain('shown only once');
      const refused = render('security-info/add-recovery-codes.njk', {
        methodId: 'm-1',
        codes,
        csrfToken: 'token-1',
        fieldErrors: { saved: 'Confirm that you have saved your recovery codes' },
        errors: [{ text: 'Confirm that you have saved your recovery codes', href: '#saved' }],
      });
      expect(refused).toContain('There is a problem');
      expect(refused).toContain('nhsuk-error-message');
      expect(refused).toMatch(/id="saved"/);
    });
  });
});
