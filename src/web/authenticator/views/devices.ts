/**
 * "Your devices" for one account (`GET /device/v1/devices`, this phone marked), renaming this phone,
 * and removing it after a confirmation — or, when the server will not remove it (it is the person's
 * only method meeting the policy), saying why and offering to forget the account on this phone only.
 */
import { isAuthenticatorError, isRemovalRefused, type DeviceInfo } from '../../../authenticator/index.js';
import type { ViewContext } from '../context.js';
import { routeHash } from '../route.js';
import { formatDate } from '../format.js';
import type { StoredAccount } from '../storage.js';
import { button, errorSummary, field, h, heading, insetText, link, paragraph, tag, visuallyHidden } from '../ui.js';
import { problemText } from './requests.js';

function accountOf(ctx: ViewContext, deviceId: string): StoredAccount | null {
  return ctx.accounts.find((a) => a.deviceId === deviceId) ?? null;
}

function deviceTable(devices: DeviceInfo[]): HTMLTableElement {
  const cell = (...children: Array<Node | string>) => h('td', { class: 'nhsuk-table__cell' }, ...children);
  return h(
    'table',
    { class: 'nhsuk-table' },
    h('caption', { class: 'nhsuk-table__caption nhsuk-u-visually-hidden' }, 'Devices that approve sign-ins to this account'),
    h(
      'thead',
      { class: 'nhsuk-table__head' },
      h('tr', { class: 'nhsuk-table__row' }, ...['Name', 'Added', 'Last used'].map((text) => h('th', { class: 'nhsuk-table__header', scope: 'col' }, text))),
    ),
    h(
      'tbody',
      { class: 'nhsuk-table__body' },
      ...devices.map((device) =>
        h(
          'tr',
          { class: 'nhsuk-table__row' },
          cell(device.name, ...(device.current ? [' ', tag('This phone', 'blue')] : [])),
          cell(formatDate(device.createdAt)),
          cell(formatDate(device.lastUsedAt)),
        ),
      ),
    ),
  );
}

async function handleRemoved(ctx: ViewContext, account: StoredAccount, error: unknown): Promise<boolean> {
  if (!isAuthenticatorError(error) || error.code !== 'device-unknown') return false;
  await ctx.store.forgetAccount(account.deviceId);
  await ctx.deviceRemoved(account);
  ctx.replace('#');
  return true;
}

export async function renderDevices(ctx: ViewContext, token: number, deviceId: string, problem?: { text: string; field: boolean }, typed?: string): Promise<void> {
  const account = accountOf(ctx, deviceId);
  const client = ctx.sync.client(deviceId);
  if (!account || !client) return ctx.replace('#');
  const title = 'Your devices';
  ctx.page(token, { title, back: '#', loading: true }, heading(title), paragraph('Getting your devices…'));
  let devices: DeviceInfo[] | null = null;
  let listProblem: string | null = null;
  try {
    devices = await client.devices();
  } catch (error) {
    if (await handleRemoved(ctx, account, error)) return;
    listProblem = problemText(error);
  }
  if (!ctx.isCurrent(token)) return;

  const { group, input } = field({
    id: 'device-name',
    label: 'Name of this phone',
    hint: 'You see this name on Security info. Up to 60 characters.',
    error: problem?.field ? problem.text : undefined,
    value: typed ?? account.deviceName,
  });
  const rename = h('form', { novalidate: true }, group, button('Save name', { style: 'secondary' }));
  rename.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      try {
        const renamed = await client.rename(input.value);
        await ctx.store.saveAccount({ ...account, deviceName: renamed.name });
        await ctx.reloadAccounts();
        ctx.flash(`This phone is now called ${renamed.name}.`);
        if (ctx.isCurrent(token)) ctx.replace(routeHash({ view: 'devices', deviceId }));
      } catch (error) {
        if (await handleRemoved(ctx, account, error)) return;
        const fieldProblem = isAuthenticatorError(error) && error.code === 'device-name-invalid';
        void renderDevices(ctx, token, deviceId, { text: fieldProblem ? 'Enter a name for this phone, up to 60 characters' : problemText(error), field: fieldProblem }, input.value);
      }
    })();
  });

  ctx.page(
    token,
    { title, back: '#', errors: Boolean(problem) },
    problem ? errorSummary([{ text: problem.text, href: '#device-name' }]) : null,
    heading(title),
    paragraph(`The phones and computers that approve sign-ins to ${account.email}.`),
    devices ? deviceTable(devices) : paragraph(listProblem ?? ''),
    paragraph('To add a device or remove another one, go to Security info on a computer.'),
    heading('Rename this phone', 2),
    rename,
    heading('Remove this phone', 2),
    paragraph(`This phone will no longer get sign-in requests for ${account.email}.`),
    paragraph(link(routeHash({ view: 'remove-device', deviceId }), 'Remove this phone', visuallyHidden(` from ${account.email}`))),
    // Help articles on this server (issue #16): changing or losing the phone is when people need them.
    heading('Help', 2),
    h('ul', { class: 'nhsuk-list' }, h('li', {}, link('/help/new-phone', 'Getting a new phone')), h('li', {}, link('/help/lost-phone', 'If you have lost your phone'))),
  );
}

export function renderRemoveDevice(ctx: ViewContext, token: number, deviceId: string): void {
  const account = accountOf(ctx, deviceId);
  const client = ctx.sync.client(deviceId);
  if (!account || !client) return ctx.replace('#');
  const confirm = button('Yes, remove this phone', { style: 'warning' });
  confirm.id = 'remove-confirm';
  const form = h('form', { novalidate: true }, confirm);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    confirm.disabled = true;
    ctx.announce('Removing this phone…');
    void (async () => {
      try {
        await client.remove();
      } catch (error) {
        if (isRemovalRefused(error)) return renderRemovalRefused(ctx, token, account, error.reason);
        // Already removed on the server: the result the user wanted.
        if (!(isAuthenticatorError(error) && error.code === 'device-unknown')) {
          if (!ctx.isCurrent(token)) return;
          confirm.disabled = false;
          form.prepend(errorSummary([{ text: problemText(error), href: '#remove-confirm' }]));
          return;
        }
      }
      await ctx.store.forgetAccount(deviceId);
      await ctx.reloadAccounts();
      ctx.flash(`This phone has been removed from ${account.email}. Its key has been deleted from this phone.`);
      ctx.replace('#');
    })();
  });
  ctx.page(
    token,
    { title: 'Are you sure you want to remove this phone?', back: routeHash({ view: 'devices', deviceId }) },
    heading('Are you sure you want to remove this phone?'),
    paragraph(`This phone will no longer get sign-in requests for ${account.email}, and its key will be deleted from this phone.`),
    paragraph('Make sure you have another way to sign in before you remove it.'),
    form,
    paragraph(link(routeHash({ view: 'devices', deviceId }), 'No, keep it')),
  );
}

/**
 * The server keeps a person's last sign-in method that meets their organisation's policy, as Security
 * info does (409 `method-last-compliant`): say why, and offer what this phone can do on its own —
 * forget the account here (its record and key), leaving the account on the server as it is.
 */
function renderRemovalRefused(ctx: ViewContext, token: number, account: StoredAccount, reason: string | undefined): void {
  const devices = routeHash({ view: 'devices', deviceId: account.deviceId });
  const forget = button('Forget this account on this phone', { style: 'warning' });
  forget.id = 'forget-confirm';
  const form = h('form', { novalidate: true }, forget);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    forget.disabled = true;
    ctx.announce('Forgetting this account…');
    void (async () => {
      await ctx.store.forgetAccount(account.deviceId);
      await ctx.reloadAccounts();
      ctx.flash(`${account.email} has been forgotten on this phone, and its key deleted. It is still on your account: delete this phone on Security info once you have another way to sign in.`);
      ctx.replace('#');
    })();
  });
  ctx.page(
    token,
    { title: 'You cannot remove this phone', back: devices },
    heading('You cannot remove this phone'),
    paragraph(reason ?? 'It is your only sign-in method that meets your organisation’s rules.'),
    paragraph('Nothing has been changed. You can add another way to sign in on Security info on a computer, then remove this phone.'),
    heading('Forget this account on this phone only', 2),
    paragraph(`This deletes ${account.email} and its key from this phone. Your account is not changed: this phone stays on your Security info page until you delete it there.`),
    insetText(paragraph('This phone will no longer be able to approve sign-ins. If it is your only way to sign in, you may need your helpdesk to help you sign in.')),
    form,
    paragraph(link(devices, 'Keep this account on this phone')),
  );
}
