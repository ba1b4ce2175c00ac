/**
 * The code vault: 6-digit codes (TOTP, RFC 6238) for the user's other accounts, added from an
 * `otpauth://` link (pasted or scanned) or a typed key; an encrypted export for a new phone, and import.
 * Everything here works offline: the accounts live in IndexedDB and the codes are made on the phone.
 */
import {
  checkOtpAccount,
  codeFor,
  exportVault,
  importVault,
  isAuthenticatorError,
  mergeIntoVault,
  MIN_PASSPHRASE_LENGTH,
  parseOtpauthUri,
  type OtpAccount,
  type VaultEntry,
} from '../../../authenticator/index.js';
import type { ViewContext } from '../context.js';
import { routeHash } from '../route.js';
import { accountTitle, describeCountdown, describeImport, exportFileName, formatCode } from '../format.js';
import { button, buttonLink, details, errorSummary, field, h, heading, insetText, link, notificationBanner, paragraph, visuallyHidden } from '../ui.js';

type FieldErrors = Record<string, string>;

function summaryOf(errors: FieldErrors): HTMLElement | null {
  const entries = Object.entries(errors);
  return entries.length ? errorSummary(entries.map(([id, text]) => ({ text, href: `#${id}` }))) : null;
}

// ── The codes ───────────────────────────────────────────────────────────────────────────────────────

export async function renderCodes(ctx: ViewContext, token: number): Promise<void> {
  const entries = await ctx.store.vaultEntries();
  if (!ctx.isCurrent(token)) return;
  const rows = entries.map((entry) => codeRow(ctx, entry));
  const tick = () => {
    const now = ctx.now();
    for (const row of rows) row.update(now);
  };
  tick();
  // Every second, in step with the clock; each row changes only the text that changed.
  const timer = setInterval(() => {
    if (!ctx.isCurrent(token)) return clearInterval(timer);
    tick();
  }, 1_000);
  ctx.page(
    token,
    { title: 'Codes for other accounts', back: '#' },
    heading('Codes for other accounts'),
    entries.length === 0
      ? paragraph('You have not added any accounts yet. Add one with the QR code or key that its set-up page shows.')
      : paragraph('Type the code into the other service when it asks. Each code changes every 30 seconds. Codes work without a connection.'),
    entries.length ? h('ul', { class: 'nhsuk-list portcullis-codes' }, ...rows.map((row) => row.element)) : null,
    buttonLink('Add an account', '#codes/add'),
    heading('Move your codes to a new phone', 2),
    paragraph('Export your codes to a file protected by a passphrase, then import the file on your new phone. Do this before you wipe this phone.'),
    h('ul', { class: 'nhsuk-list' }, h('li', {}, link('#codes/export', 'Export your codes')), h('li', {}, link('#codes/import', 'Import codes from a file'))),
  );
}

function codeRow(ctx: ViewContext, entry: VaultEntry): { element: HTMLLIElement; update(now: Date): void } {
  const title = accountTitle(entry);
  const titleId = `code-title-${entry.id}`;
  const code = h('span', {});
  // role=timer: read when the user reaches it, never announced by itself (its aria-live is "off").
  const countdown = h('p', { class: 'portcullis-countdown nhsuk-hint', role: 'timer' });
  const copy = button('Copy code', { type: 'button', style: 'secondary' });
  copy.append(visuallyHidden(` for ${title}`));
  copy.classList.add('nhsuk-u-margin-bottom-2');
  let current = '';
  copy.addEventListener('click', () => {
    void navigator.clipboard?.writeText(current).then(
      () => ctx.announce(`Code for ${title} copied`),
      () => ctx.announce('The code could not be copied. Type it instead.'),
    );
  });
  const element = h(
    'li',
    { class: 'nhsuk-card' },
    h(
      'div',
      { class: 'nhsuk-card__content' },
      h('h2', { class: 'nhsuk-card__heading nhsuk-heading-s', id: titleId }, title),
      h('p', { class: 'portcullis-code' }, visuallyHidden('Code: '), code),
      countdown,
      h('div', { class: 'nhsuk-button-group' }, copy, link(routeHash({ view: 'delete-code', id: entry.id }), 'Delete', visuallyHidden(` ${title}`))),
    ),
  );
  return {
    element,
    update(now) {
      const next = codeFor(entry, now);
      if (next.code !== current) {
        current = next.code;
        code.textContent = formatCode(next.code);
      }
      const text = describeCountdown(next.secondsRemaining);
      if (countdown.textContent !== text) countdown.textContent = text;
    },
  };
}

// ── Adding an account ───────────────────────────────────────────────────────────────────────────────

/** The Shape Detection API's BarcodeDetector (WICG), in Chrome on Android and macOS; not in the DOM types. */
interface DetectedBarcode {
  rawValue: string;
}
interface BarcodeDetectorInstance {
  detect(source: HTMLVideoElement): Promise<DetectedBarcode[]>;
}
interface BarcodeDetectorClass {
  new (options: { formats: string[] }): BarcodeDetectorInstance;
  getSupportedFormats(): Promise<string[]>;
}

function barcodeDetector(): BarcodeDetectorClass | null {
  const candidate = (window as unknown as { BarcodeDetector?: BarcodeDetectorClass }).BarcodeDetector;
  return candidate && typeof navigator.mediaDevices?.getUserMedia === 'function' ? candidate : null;
}

async function addAccounts(ctx: ViewContext, accounts: OtpAccount[]): Promise<void> {
  const merged = mergeIntoVault(await ctx.store.vaultEntries(), accounts, ctx.now());
  await ctx.store.addVaultEntries(merged.added);
  const [added] = merged.added;
  ctx.flash(added ? `${accountTitle(added)} has been added.` : 'This account is already in this app.');
  ctx.go('#codes');
}

function scanner(ctx: ViewContext, token: number, onFound: (uri: string) => void): HTMLElement {
  const Detector = barcodeDetector();
  if (!Detector) {
    return insetText(paragraph('Scanning QR codes is not available in this browser. Paste the set-up link or enter the key instead.'));
  }
  const status = h('p', { role: 'status' });
  const video = h('video', { class: 'portcullis-scanner', muted: true, playsinline: true, 'aria-label': 'Camera view', hidden: true });
  const start = button('Scan a QR code', { type: 'button', style: 'secondary' });
  const stop = button('Stop scanning', { type: 'button', style: 'secondary' });
  stop.hidden = true;
  let stream: MediaStream | null = null;
  const end = () => {
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    video.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  };
  start.addEventListener('click', () => {
    void (async () => {
      try {
        // The camera is allowed on this surface only (Permissions-Policy camera=(self)).
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      } catch {
        status.textContent = 'The camera could not be opened. Allow this app to use the camera, or paste the set-up link instead.';
        return;
      }
      video.srcObject = stream;
      video.hidden = false;
      start.hidden = true;
      stop.hidden = false;
      status.textContent = 'Point the camera at the QR code.';
      await video.play().catch(() => {});
      const detector = new Detector({ formats: ['qr_code'] });
      while (stream && ctx.isCurrent(token)) {
        const found = await detector.detect(video).catch(() => [] as DetectedBarcode[]);
        const value = found.find((barcode) => barcode.rawValue.toLowerCase().startsWith('otpauth://'))?.rawValue;
        if (value) {
          end();
          onFound(value);
          return;
        }
        if (found.length) status.textContent = 'This QR code is not for setting up codes. Point the camera at the set-up QR code.';
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      end();
    })();
  });
  stop.addEventListener('click', () => {
    end();
    status.textContent = 'Scanning stopped.';
  });
  return h('div', {}, start, stop, video, status);
}

export function renderAddCode(ctx: ViewContext, token: number, errors: FieldErrors = {}, typed: Record<string, string> = {}): void {
  const message = (error: unknown) => (isAuthenticatorError(error) ? error.message : 'This is not a valid set-up link.');
  const uri = field({ id: 'otpauth-uri', label: 'Set-up link', hint: 'It starts with otpauth://totp/', error: errors['otpauth-uri'], value: typed['otpauth-uri'], inputmode: 'url', spellcheck: false });
  const fromLink = h('form', { novalidate: true }, uri.group, button('Add account'));
  fromLink.addEventListener('submit', (event) => {
    event.preventDefault();
    if (uri.input.value.trim() === '') return renderAddCode(ctx, token, { 'otpauth-uri': 'Enter the set-up link' }, { 'otpauth-uri': '' });
    try {
      void addAccounts(ctx, [parseOtpauthUri(uri.input.value)]);
    } catch (error) {
      renderAddCode(ctx, token, { 'otpauth-uri': message(error) }, { 'otpauth-uri': uri.input.value });
    }
  });

  const issuer = field({ id: 'key-issuer', label: 'Service name (optional)', hint: 'For example, the name of the website', value: typed['key-issuer'] });
  const label = field({ id: 'key-account', label: 'Account name', hint: 'Usually your email address or user name', error: errors['key-account'], value: typed['key-account'], spellcheck: false });
  const secret = field({ id: 'key-secret', label: 'Key', hint: 'The letters and numbers the service shows you. Spaces do not matter.', error: errors['key-secret'], value: typed['key-secret'], spellcheck: false });
  const fromKey = h('form', { novalidate: true }, issuer.group, label.group, secret.group, button('Add account with this key'));
  fromKey.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = { 'key-issuer': issuer.input.value, 'key-account': label.input.value, 'key-secret': secret.input.value };
    const problems: FieldErrors = {};
    if (values['key-account'].trim() === '') problems['key-account'] = 'Enter the account name';
    if (values['key-secret'].trim() === '') problems['key-secret'] = 'Enter the key';
    if (Object.keys(problems).length) return renderAddCode(ctx, token, problems, values);
    try {
      void addAccounts(ctx, [checkOtpAccount({ issuer: values['key-issuer'], label: values['key-account'], secret: values['key-secret'] })]);
    } catch (error) {
      renderAddCode(ctx, token, { 'key-secret': message(error) }, values);
    }
  });

  const keyErrors = Boolean(errors['key-account'] || errors['key-secret']);
  const keySection = details('Enter a key instead', paragraph('If you cannot scan the QR code, the service can show a key to type instead.'), fromKey);
  if (keyErrors) keySection.open = true;
  ctx.page(
    token,
    { title: 'Add an account', back: '#codes', errors: Object.keys(errors).length > 0 },
    summaryOf(errors),
    heading('Add an account'),
    paragraph('Use the set-up QR code, link or key that the other service shows you, usually on its security settings page.'),
    heading('Scan the QR code', 2),
    scanner(ctx, token, (value) => {
      try {
        void addAccounts(ctx, [parseOtpauthUri(value)]);
      } catch (error) {
        renderAddCode(ctx, token, { 'otpauth-uri': message(error) }, { 'otpauth-uri': value });
      }
    }),
    heading('Paste a set-up link', 2),
    fromLink,
    keySection,
  );
}

export async function renderDeleteCode(ctx: ViewContext, token: number, id: string): Promise<void> {
  const entry = (await ctx.store.vaultEntries()).find((e) => e.id === id);
  if (!ctx.isCurrent(token)) return;
  if (!entry) return ctx.replace('#codes');
  const title = accountTitle(entry);
  const form = h('form', { novalidate: true }, button('Yes, delete it', { style: 'warning' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      await ctx.store.deleteVaultEntry(id);
      ctx.flash(`${title} has been deleted from this app.`);
      ctx.replace('#codes');
    })();
  });
  ctx.page(
    token,
    { title: `Are you sure you want to delete ${title}?`, back: '#codes' },
    heading(`Are you sure you want to delete ${title}?`),
    paragraph('This app will no longer make codes for this account. Make sure you can sign in to it another way first.'),
    form,
    paragraph(link('#codes', 'No, keep it')),
  );
}

// ── Export and import ───────────────────────────────────────────────────────────────────────────────

function download(text: string, name: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const anchor = h('a', { href: url, download: name, hidden: true });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  // Long enough for the browser to start the download.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function renderExport(ctx: ViewContext, token: number, errors: FieldErrors = {}, done?: string): Promise<void> {
  const entries = await ctx.store.vaultEntries();
  if (!ctx.isCurrent(token)) return;
  const title = 'Export your codes';
  if (entries.length === 0) {
    ctx.page(token, { title, back: '#codes' }, heading(title), paragraph('You have no codes to export.'), paragraph(link('#codes/add', 'Add an account')));
    return;
  }
  const passphrase = field({
    id: 'passphrase',
    label: 'Passphrase',
    hint: `At least ${MIN_PASSPHRASE_LENGTH} characters. A few unrelated words are easy to remember and hard to guess.`,
    error: errors.passphrase,
    type: 'password',
    autocomplete: 'new-password',
  });
  const confirm = field({ id: 'passphrase-confirm', label: 'Confirm passphrase', error: errors['passphrase-confirm'], type: 'password', autocomplete: 'new-password' });
  const submit = button('Export');
  const form = h('form', { novalidate: true }, passphrase.group, confirm.group, submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = passphrase.input.value;
    const problems: FieldErrors = {};
    if (value === '') problems.passphrase = 'Enter a passphrase';
    else if (value.normalize('NFC').length < MIN_PASSPHRASE_LENGTH) problems.passphrase = `Passphrase must be ${MIN_PASSPHRASE_LENGTH} characters or more`;
    else if (confirm.input.value !== value) problems['passphrase-confirm'] = 'The passphrases do not match';
    if (Object.keys(problems).length) return void renderExport(ctx, token, problems);
    submit.disabled = true;
    ctx.announce('Exporting your codes…');
    void (async () => {
      try {
        const text = await exportVault(entries, value, { now: ctx.now() });
        const name = exportFileName(ctx.now());
        download(text, name);
        if (ctx.isCurrent(token)) void renderExport(ctx, token, {}, `Your codes have been exported to ${name}. Move the file to your new phone and import it there with your passphrase.`);
      } catch (error) {
        if (ctx.isCurrent(token)) void renderExport(ctx, token, { passphrase: isAuthenticatorError(error) ? error.message : 'The codes could not be exported. Try again.' });
      }
    })();
  });
  ctx.page(
    token,
    { title, back: '#codes', errors: Object.keys(errors).length > 0 },
    done ? notificationBanner([done], { success: true }) : null,
    summaryOf(errors),
    heading(title),
    paragraph(`This saves your ${entries.length === 1 ? 'code' : `${entries.length} codes`} to a file protected by a passphrase. To import them on your new phone, you need the file and the passphrase.`),
    insetText(paragraph('Keep the passphrase safe and apart from the file. Anyone with both can make your codes.')),
    form,
  );
}

export function renderImport(ctx: ViewContext, token: number, errors: FieldErrors = {}): void {
  const file = field({ id: 'import-file', label: 'Export file', hint: 'The file you exported on your old phone (it ends in .json)', error: errors['import-file'], type: 'file', accept: '.json,application/json' });
  const passphrase = field({ id: 'import-passphrase', label: 'Passphrase', error: errors['import-passphrase'], type: 'password', autocomplete: 'current-password' });
  const submit = button('Import');
  const form = h('form', { novalidate: true }, file.group, passphrase.group, submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = file.input.files?.[0];
    const problems: FieldErrors = {};
    if (!chosen) problems['import-file'] = 'Choose the export file';
    if (passphrase.input.value === '') problems['import-passphrase'] = 'Enter the passphrase';
    if (!chosen || Object.keys(problems).length) return renderImport(ctx, token, problems);
    submit.disabled = true;
    ctx.announce('Importing your codes…');
    void (async () => {
      try {
        // An export is a few kilobytes; anything far larger is not one.
        if (chosen.size > 1024 * 1024) throw Object.assign(new Error('too large'), { code: 'vault-format' });
        const accounts = await importVault(await chosen.text(), passphrase.input.value);
        const merged = mergeIntoVault(await ctx.store.vaultEntries(), accounts, ctx.now());
        await ctx.store.addVaultEntries(merged.added);
        ctx.flash(describeImport(merged.added.length, merged.skipped.length));
        if (ctx.isCurrent(token)) ctx.go('#codes');
      } catch (error) {
        if (!ctx.isCurrent(token)) return;
        const code = (error as { code?: unknown }).code;
        if (code === 'vault-passphrase-wrong') return renderImport(ctx, token, { 'import-passphrase': 'The passphrase is not right for this file' });
        if (code === 'vault-damaged') return renderImport(ctx, token, { 'import-file': 'The file has been changed or damaged, so it cannot be read' });
        renderImport(ctx, token, { 'import-file': 'The file is not a Portcullis code export. Choose the file you exported from this app' });
      }
    })();
  });
  ctx.page(
    token,
    { title: 'Import codes', back: '#codes', errors: Object.keys(errors).length > 0 },
    summaryOf(errors),
    heading('Import codes'),
    paragraph('Choose the file you exported from the Portcullis Authenticator on your old phone, and enter its passphrase.'),
    form,
  );
}
