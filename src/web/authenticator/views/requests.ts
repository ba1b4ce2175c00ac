/**
 * The sign-in side of the app: the home view (waiting requests, accounts, notifications), pairing from
 * a `#pair=` link, a request with its context and the number field (Approve, Deny, "No, it's not me"),
 * the report confirmation, and the outcome.
 */
import { AuthenticatorClient, checkDeviceName, isAuthenticatorError, MemoryKeyStore, parsePairingUrl, type Challenge, type Decision } from '../../../authenticator/index.js';
import type { ViewContext } from '../context.js';
import { routeHash } from '../route.js';
import { challengeContext, checkNumber, describeExpiry, formatTime, numberSource, outcomeOf, plural, secondsLeft } from '../format.js';
import { requestNotificationPermission } from '../push.js';
import type { StoredAccount } from '../storage.js';
import type { PendingRequest } from '../sync.js';
import { button, buttonLink, details, errorSummary, field, h, heading, insetText, link, list, notificationBanner, panel, paragraph, summaryList, visuallyHidden, type Child } from '../ui.js';

const CONNECTION_TEXT = {
  connecting: 'Checking for sign-in requests…',
  live: 'New requests appear here as soon as they are sent.',
  polling: 'This app checks for new requests every few seconds while it is open.',
  offline: 'You are offline. Sign-in requests will appear here when you are connected again.',
} as const;

const PUSH_TEXT = {
  on: 'Notifications are on. You will get a notification when a sign-in request is sent to this phone, even when this app is closed.',
  off: 'Turn on notifications to hear about sign-in requests when this app is closed.',
  denied: "Notifications are turned off for this app in your browser's settings. Keep this app open when you sign in, or allow notifications in your browser's settings.",
  failed: 'This browser could not set up notifications. Keep this app open when you sign in: requests appear here within a few seconds.',
  unsupported:
    'This browser cannot show notifications for this app. Keep this app open when you sign in: requests appear here within a few seconds. On an iPhone or iPad, add this app to your Home Screen first.',
} as const;

/** A plain-English message for an error from the SDK that is not about one field. */
export function problemText(error: unknown): string {
  if (!isAuthenticatorError(error)) return 'Something went wrong. Try again.';
  switch (error.code) {
    case 'network-error':
      return 'Cannot reach the server. Check your connection and try again.';
    case 'rate-limited':
      return 'Too many attempts. Wait a minute and try again.';
    case 'device-clock-skew':
      return "This phone's clock is wrong. Set it to the right time and try again.";
    case 'device-pending':
      return 'This phone is not set up yet. Approve the test request first, with the number shown on the Security info page.';
    default:
      return error.message;
  }
}

function requestList(ctx: ViewContext): HTMLElement {
  const now = ctx.now();
  const live = ctx.requests.filter((r) => secondsLeft(r.challenge.expiresAt, now) > 0);
  if (live.length === 0) return h('div', {}, paragraph('There are no sign-in requests waiting.'), h('p', { class: 'nhsuk-hint' }, CONNECTION_TEXT[ctx.connection]));
  return h(
    'div',
    {},
    h(
      'ul',
      { class: 'nhsuk-list portcullis-requests' },
      ...live.map(({ challenge }) =>
        h(
          'li',
          { class: 'nhsuk-card nhsuk-card--clickable' },
          h(
            'div',
            { class: 'nhsuk-card__content' },
            h('h3', { class: 'nhsuk-card__heading nhsuk-heading-s' }, link(routeHash({ view: 'challenge', id: challenge.id }), challenge.purpose === 'test' ? `Test request for ${challenge.account.email}` : `Sign-in request for ${challenge.account.email}`)),
            h('p', { class: 'nhsuk-card__description' }, `${challenge.app}, from ${challenge.location ?? challenge.ip ?? 'an unknown place'}, at ${formatTime(challenge.createdAt, now)}.`),
          ),
        ),
      ),
    ),
    h('p', { class: 'nhsuk-hint' }, CONNECTION_TEXT[ctx.connection]),
  );
}

/** The part of the home view that changes as requests come and go (replaced without moving focus). */
export function refreshHomeRequests(ctx: ViewContext): void {
  const region = document.getElementById('requests');
  if (region && !region.contains(document.activeElement)) region.replaceChildren(requestList(ctx));
}

function pushSection(ctx: ViewContext): HTMLElement {
  const section = h('div', { id: 'notifications' });
  const state = ctx.pushState;
  if (state === null) {
    section.append(paragraph('Checking whether this browser can show notifications…'));
    return section;
  }
  section.append(paragraph(PUSH_TEXT[state]));
  if (state === 'off') {
    const turnOn = button('Turn on notifications', { type: 'button', style: 'secondary' });
    turnOn.addEventListener('click', () => {
      turnOn.disabled = true;
      void ctx.turnOnNotifications();
    });
    section.append(turnOn);
  }
  return section;
}

function setUpLinkForm(ctx: ViewContext, error?: string): HTMLFormElement {
  const { group, input } = field({ id: 'setup-link', label: 'Set-up link', hint: 'Copy the whole link from the Security info page. It contains #pair=', error, inputmode: 'url', spellcheck: false });
  const form = h('form', { novalidate: true }, group, button('Continue', { style: 'secondary' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      const link = parsePairingUrl(input.value);
      if (link.origin !== location.origin) throw new Error('other origin');
      ctx.replace(new URL(input.value.trim()).hash);
    } catch {
      form.replaceWith(setUpLinkForm(ctx, 'Enter the set-up link shown on the Security info page of this server'));
      document.getElementById('setup-link')?.focus();
    }
  });
  return form;
}

export async function renderHome(ctx: ViewContext, token: number): Promise<void> {
  const notices = await ctx.takeNotices();
  if (!ctx.isCurrent(token)) return;
  const banners = notices.map((text) => notificationBanner([text]));
  if (ctx.accounts.length === 0) {
    ctx.page(
      token,
      { title: 'Portcullis Authenticator' },
      ...banners,
      heading('Portcullis Authenticator'),
      paragraph('This app approves your sign-ins to your organisation with a notification instead of a code. It also makes codes for your other accounts.'),
      heading('Set up this phone', 2),
      paragraph('This phone is not set up to approve sign-ins yet.'),
      h(
        'ol',
        { class: 'nhsuk-list nhsuk-list--number' },
        h('li', {}, 'On a computer, sign in and go to Security info.'),
        h('li', {}, 'Choose Add sign-in method, then Authenticator app.'),
        h('li', {}, "Scan the QR code with this phone's camera, or open the link on this phone."),
      ),
      details('I have a set-up link', setUpLinkForm(ctx)),
      heading('Codes for other accounts', 2),
      paragraph('Get 6-digit codes for your other accounts, such as email or shopping sites. They work without a connection.'),
      paragraph(link('#codes', 'Show your codes')),
    );
    return;
  }
  ctx.page(
    token,
    { title: 'Portcullis Authenticator' },
    ...banners,
    heading('Portcullis Authenticator'),
    heading('Sign-in requests', 2),
    h('div', { id: 'requests' }, requestList(ctx)),
    heading('Notifications', 2),
    pushSection(ctx),
    heading('Your accounts', 2),
    ...ctx.accounts.map((account) =>
      h(
        'div',
        { class: 'nhsuk-card' },
        h(
          'div',
          { class: 'nhsuk-card__content' },
          h('h3', { class: 'nhsuk-card__heading nhsuk-heading-s' }, account.email),
          summaryList([
            { key: 'Organisation', value: account.organisation || account.serverName },
            { key: 'This phone', value: account.deviceName },
          ]),
          paragraph(link(routeHash({ view: 'devices', deviceId: account.deviceId }), 'Manage devices', visuallyHidden(` for ${account.email}`))),
        ),
      ),
    ),
    heading('Codes for other accounts', 2),
    paragraph('Get 6-digit codes for your other accounts, such as email or shopping sites. They work without a connection.'),
    paragraph(link('#codes', 'Show your codes')),
    paragraph(link('/help/authenticator-for-other-accounts', 'How to use this app for your other accounts')),
  );
}

// ── Pairing ─────────────────────────────────────────────────────────────────────────────────────────

export function renderPair(ctx: ViewContext, token: number, error?: string, name = ''): void {
  let link;
  try {
    link = parsePairingUrl(location.href);
  } catch {
    link = null;
  }
  if (!link || link.origin !== location.origin) {
    ctx.page(
      token,
      { title: 'This set-up link does not work', back: '#' },
      heading('This set-up link does not work'),
      paragraph('Open the link or scan the QR code exactly as the Security info page shows it.'),
      paragraph(link ? `This link is for ${link.origin}. Open it there.` : 'Part of the link may be missing.'),
      paragraph(link ? '' : 'Go back to Security info on your computer and start again to get a new QR code.'),
    );
    return;
  }
  const { group, input } = field({
    id: 'device-name',
    label: 'Name this phone',
    hint: 'You will see this name on Security info, for example "Work phone". Up to 60 characters.',
    error,
    value: name,
    autocomplete: 'off',
  });
  const form = h('form', { novalidate: true }, group, button('Connect this phone'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void pair(ctx, token, input.value, form);
  });
  ctx.page(
    token,
    { title: 'Connect this phone', back: '#', errors: Boolean(error) },
    error ? errorSummary([{ text: error, href: '#device-name' }]) : null,
    heading('Connect this phone'),
    paragraph(`This phone will approve your sign-ins to ${ctx.config.name}. When you sign in, you will type a number from the sign-in page into this app.`),
    form,
  );
}

async function pair(ctx: ViewContext, token: number, name: string, form: HTMLFormElement): Promise<void> {
  let checked: string;
  try {
    checked = checkDeviceName(name);
  } catch {
    return renderPair(ctx, token, 'Enter a name for this phone, up to 60 characters', name);
  }
  // Asked now, while the click still counts as the user's gesture (browsers require one); answered later.
  const permission = requestNotificationPermission();
  const submit = form.querySelector('button');
  if (submit) submit.disabled = true;
  ctx.announce('Connecting this phone…');
  const keyStore = new MemoryKeyStore();
  try {
    // The key pair is made here, non-extractable (WebCrypto), and saved with the account only once the
    // server has accepted it. The push subscription follows (it may take seconds, or never come).
    const { client, result } = await AuthenticatorClient.pair({ url: location.href, name: checked, keyStore, extractable: false });
    const keys = await keyStore.load();
    if (!keys) throw new Error('the key pair was not kept');
    const account: StoredAccount = {
      deviceId: result.deviceId,
      origin: client.origin,
      email: result.account.email,
      organisation: result.account.organisation,
      serverName: result.server.name || ctx.config.name,
      deviceName: checked,
      pairedAt: ctx.now().toISOString(),
      clockOffsetMs: client.clockOffsetMs,
      pushEndpoint: null,
    };
    await ctx.store.saveAccount(account, keys);
    await ctx.reloadAccounts();
    // The pairing code leaves the address bar and the history: the test request takes its place.
    ctx.replace(routeHash({ view: 'challenge', id: result.testChallengeId }));
    void permission.then(() => ctx.refreshPush());
  } catch (error) {
    if (!ctx.isCurrent(token)) return;
    if (isAuthenticatorError(error) && error.code === 'activation-code-invalid') {
      ctx.page(
        token,
        { title: 'This set-up link has expired or has been used', back: '#' },
        heading('This set-up link has expired or has been used'),
        paragraph('A set-up link works once, for 10 minutes.'),
        paragraph('Go back to Security info on your computer and start again to get a new QR code.'),
      );
      return;
    }
    if (isAuthenticatorError(error) && error.code === 'device-name-invalid') return renderPair(ctx, token, 'Enter a name for this phone, up to 60 characters', name);
    renderPair(ctx, token, problemText(error), name);
  }
}

// ── A request ───────────────────────────────────────────────────────────────────────────────────────

function showOutcome(ctx: ViewContext, result: string, challenge: Pick<Challenge, 'purpose'>): void {
  ctx.outcome = { outcome: outcomeOf(result, challenge.purpose), purpose: challenge.purpose };
  ctx.replace('#result');
}

export async function renderChallenge(ctx: ViewContext, token: number, id: string): Promise<void> {
  if (ctx.accounts.length === 0) return ctx.replace('#');
  ctx.page(token, { title: 'Sign-in request', back: '#', loading: true }, heading('Sign-in request'), paragraph('Getting the request…'));
  const found = await ctx.sync.lookUp(id);
  if (!ctx.isCurrent(token)) return;
  if (!found) return showOutcome(ctx, 'challenge-not-found', { purpose: 'sign-in' });
  const { challenge } = found;
  if (challenge.status !== 'pending') return showOutcome(ctx, challenge.status, challenge);
  if (secondsLeft(challenge.expiresAt, ctx.now()) === 0) return showOutcome(ctx, 'expired', challenge);
  renderDecisionForm(ctx, token, found);
}

function renderDecisionForm(ctx: ViewContext, token: number, request: PendingRequest, error?: { text: string; field: boolean }, typed = ''): void {
  const { challenge, account } = request;
  const title = challenge.purpose === 'test' ? 'Approve the test request' : 'Are you trying to sign in?';
  const { group, input } = field({
    id: 'number',
    label: `Enter the number shown on ${numberSource(challenge)}`,
    hint: `It has ${plural(challenge.numberLength, 'digit')}.`,
    error: error?.field ? error.text : undefined,
    inputmode: 'numeric',
    widthClass: 'nhsuk-input--width-4',
    value: typed,
  });
  const expiry = h('p', { class: 'nhsuk-hint', id: 'expiry' }, describeExpiry(challenge.expiresAt, ctx.now()));
  const approve = button('Approve');
  const deny = button('Deny', { type: 'button', style: 'secondary' });
  const report = button("No, it's not me", { type: 'button', style: 'warning' });
  const form = h('form', { novalidate: true }, group, h('div', { class: 'nhsuk-button-group' }, approve, deny, report));
  const buttons = [approve, deny, report];

  const decide = async (decision: Decision, number?: string) => {
    for (const b of buttons) b.disabled = true;
    ctx.announce(decision === 'approve' ? 'Approving…' : 'Denying…');
    const client = ctx.sync.client(account.deviceId);
    try {
      if (!client) throw new Error('no client for this account');
      const result = await client.decide(challenge.id, { decision, number });
      ctx.sync.forget(challenge.id);
      // Set up now: the server takes this phone's push subscription only from a device that is.
      if (challenge.purpose === 'test' && result.status === 'approved') void ctx.refreshPush();
      if (ctx.isCurrent(token)) showOutcome(ctx, result.status, challenge);
    } catch (failure) {
      if (!ctx.isCurrent(token)) return;
      const code = isAuthenticatorError(failure) ? failure.code : '';
      if (code === 'wrong-number' || code === 'challenge-expired' || code === 'challenge-decided' || code === 'challenge-not-found') {
        ctx.sync.forget(challenge.id);
        return showOutcome(ctx, code, challenge);
      }
      if (code === 'device-unknown') {
        await ctx.store.forgetAccount(account.deviceId);
        await ctx.deviceRemoved(account);
        return ctx.replace('#');
      }
      renderDecisionForm(ctx, token, request, { text: problemText(failure), field: false }, input.value);
    }
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const checked = checkNumber(input.value, challenge);
    if ('error' in checked) return renderDecisionForm(ctx, token, request, { text: checked.error, field: true }, input.value);
    void decide('approve', checked.digits);
  });
  deny.addEventListener('click', () => void decide('deny'));
  report.addEventListener('click', () => ctx.go(routeHash({ view: 'report', id: challenge.id })));

  // The time left, refreshed each second in a plain paragraph: read when the user reaches it, never
  // announced by itself (a live region here would interrupt the user every second).
  const ticker = setInterval(() => {
    if (!ctx.isCurrent(token) || !expiry.isConnected) return clearInterval(ticker);
    if (secondsLeft(challenge.expiresAt, ctx.now()) === 0) {
      clearInterval(ticker);
      return showOutcome(ctx, 'expired', challenge);
    }
    expiry.textContent = describeExpiry(challenge.expiresAt, ctx.now());
  }, 1_000);

  // A problem with the number links to its field; any other (no connection) links there too, to retry.
  const errors = error ? [{ text: error.text, href: '#number' }] : [];
  ctx.page(
    token,
    { title, back: '#', errors: Boolean(error) },
    error ? errorSummary(errors) : null,
    heading(title),
    challenge.purpose === 'test'
      ? paragraph('This checks that this phone is set up. Type the number shown on the Security info page on your computer.')
      : paragraph('Only approve this if you are signing in now. Type the number shown on the sign-in page.'),
    summaryList(challengeContext(challenge, ctx.now()).map((row) => ({ key: row.key, value: row.value }))),
    expiry,
    form,
    challenge.purpose === 'sign-in' ? insetText(paragraph('If you did not try to sign in, choose "No, it\'s not me". Someone may know your password.')) : null,
  );
}

export async function renderReport(ctx: ViewContext, token: number, id: string): Promise<void> {
  const found = await ctx.sync.lookUp(id);
  if (!ctx.isCurrent(token)) return;
  if (!found || found.challenge.status !== 'pending') return showOutcome(ctx, found?.challenge.status ?? 'challenge-not-found', found?.challenge ?? { purpose: 'sign-in' });
  const { challenge, account } = found;
  const confirm = button('Yes, report it', { style: 'warning' });
  const form = h('form', { novalidate: true }, confirm);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    confirm.disabled = true;
    ctx.announce('Reporting…');
    void (async () => {
      const client = ctx.sync.client(account.deviceId);
      try {
        if (!client) throw new Error('no client for this account');
        const result = await client.decide(challenge.id, { decision: 'report' });
        ctx.sync.forget(challenge.id);
        if (ctx.isCurrent(token)) showOutcome(ctx, result.status, challenge);
      } catch (failure) {
        if (!ctx.isCurrent(token)) return;
        const code = isAuthenticatorError(failure) ? failure.code : '';
        if (code === 'challenge-expired' || code === 'challenge-decided' || code === 'challenge-not-found') return showOutcome(ctx, code, challenge);
        confirm.disabled = false;
        form.prepend(errorSummary([{ text: problemText(failure), href: '#report-confirm' }]));
      }
    })();
  });
  confirm.id = 'report-confirm';
  ctx.page(
    token,
    { title: 'Report this sign-in request?', back: routeHash({ view: 'challenge', id: challenge.id }) },
    heading('Report this sign-in request?'),
    paragraph(`Only do this if you did not try to sign in to ${challenge.account.email}.`),
    paragraph('When you report it:'),
    list([['the sign-in is refused'], ['your administrators are told'], ['sign-in requests to your phone may stop until your helpdesk turns them back on']]),
    paragraph('Someone may know your password. Change it as soon as you can.'),
    form,
    paragraph(link(routeHash({ view: 'challenge', id: challenge.id }), 'No, go back to the request')),
  );
}

export function renderResult(ctx: ViewContext, token: number): void {
  const result = ctx.outcome;
  if (!result) return ctx.replace('#');
  const { outcome } = result;
  const body: Child[] = outcome.body.map((text) => paragraph(text));
  ctx.page(
    token,
    { title: outcome.title },
    outcome.success ? panel(outcome.title, ...body) : heading(outcome.title),
    ...(outcome.success ? [] : body),
    buttonLink('Back to sign-in requests', '#', 'secondary'),
  );
}
