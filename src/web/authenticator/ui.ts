/**
 * DOM building for the app's views, with the markup of the NHS.UK frontend's components (v10), made
 * with createElement and textContent only: nothing the server or the user supplies is ever parsed as
 * HTML, and no inline style or script is needed (the CSP allows neither).
 */

export type Child = Node | string | null | undefined | false;
type Attributes = Record<string, string | boolean | undefined | null>;

/** An element with attributes (a `true` value sets an empty attribute) and children (text or nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    element.setAttribute(name, value === true ? '' : value);
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

let nextId = 0;
/** A unique id for labels and descriptions. */
export function uniqueId(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

export function visuallyHidden(text: string): HTMLSpanElement {
  return h('span', { class: 'nhsuk-u-visually-hidden' }, text);
}

export function heading(text: string, level: 1 | 2 | 3 = 1, size: 'xl' | 'l' | 'm' | 's' = level === 1 ? 'l' : level === 2 ? 'm' : 's'): HTMLHeadingElement {
  const tag = `h${level}` as 'h1' | 'h2' | 'h3';
  // The h1 takes focus when a view opens (tabindex -1), so screen readers announce the new view.
  return h(tag, { class: `nhsuk-heading-${size}`, tabindex: level === 1 ? '-1' : undefined }, text);
}

export function paragraph(...children: Child[]): HTMLParagraphElement {
  return h('p', {}, ...children);
}

export function link(href: string, ...children: Child[]): HTMLAnchorElement {
  return h('a', { href }, ...children);
}

export type ButtonStyle = 'primary' | 'secondary' | 'warning' | 'reverse';

export function button(text: string, options: { style?: ButtonStyle; type?: 'submit' | 'button'; name?: string; value?: string } = {}): HTMLButtonElement {
  const style = options.style ?? 'primary';
  return h(
    'button',
    { class: style === 'primary' ? 'nhsuk-button' : `nhsuk-button nhsuk-button--${style}`, 'data-module': 'nhsuk-button', type: options.type ?? 'submit', name: options.name, value: options.value },
    text,
  );
}

/** A link styled as a button (NHS.UK "button as a link"). */
export function buttonLink(text: string, href: string, style: ButtonStyle = 'primary'): HTMLAnchorElement {
  return h('a', { href, role: 'button', draggable: 'false', class: style === 'primary' ? 'nhsuk-button' : `nhsuk-button nhsuk-button--${style}`, 'data-module': 'nhsuk-button' }, text);
}

export function backLink(href: string, text = 'Back'): HTMLElement {
  return h('a', { class: 'nhsuk-back-link', href }, text);
}

export function insetText(...children: Child[]): HTMLDivElement {
  return h('div', { class: 'nhsuk-inset-text' }, visuallyHidden('Information: '), ...children);
}

export function tag(text: string, colour?: 'green' | 'grey' | 'blue' | 'red' | 'yellow'): HTMLElement {
  return h('strong', { class: colour ? `nhsuk-tag nhsuk-tag--${colour}` : 'nhsuk-tag' }, text);
}

export function summaryList(rows: Array<{ key: string; value: Child | Child[] }>): HTMLDListElement {
  return h(
    'dl',
    { class: 'nhsuk-summary-list' },
    ...rows.map((row) =>
      h('div', { class: 'nhsuk-summary-list__row' }, h('dt', { class: 'nhsuk-summary-list__key' }, row.key), h('dd', { class: 'nhsuk-summary-list__value' }, ...(Array.isArray(row.value) ? row.value : [row.value]))),
    ),
  );
}

export function panel(title: string, ...body: Child[]): HTMLDivElement {
  const titleElement = h('h1', { class: 'nhsuk-panel__heading', tabindex: '-1' }, title);
  return h('div', { class: 'nhsuk-panel' }, titleElement, h('div', { class: 'nhsuk-panel__body' }, ...body));
}

/** A notification banner: `success` ones are announced (role alert), others are a labelled region. */
export function notificationBanner(content: Child[], options: { success?: boolean; title?: string } = {}): HTMLDivElement {
  const titleId = uniqueId('banner-title');
  return h(
    'div',
    {
      class: options.success ? 'nhsuk-notification-banner nhsuk-notification-banner--success' : 'nhsuk-notification-banner',
      role: options.success ? 'alert' : 'region',
      'aria-labelledby': titleId,
    },
    h('div', { class: 'nhsuk-notification-banner__header' }, h('h2', { class: 'nhsuk-notification-banner__title', id: titleId }, options.title ?? (options.success ? 'Success' : 'Important'))),
    h('div', { class: 'nhsuk-notification-banner__content' }, ...content.map((c) => (typeof c === 'string' ? h('p', { class: 'nhsuk-notification-banner__heading' }, c) : c))),
  );
}

export function details(summary: string, ...content: Child[]): HTMLDetailsElement {
  return h('details', { class: 'nhsuk-details' }, h('summary', { class: 'nhsuk-details__summary' }, h('span', { class: 'nhsuk-details__summary-text' }, summary)), h('div', { class: 'nhsuk-details__text' }, ...content));
}

export interface FieldOptions {
  id: string;
  label: string;
  hint?: string;
  error?: string;
  type?: 'text' | 'password' | 'file';
  value?: string;
  inputmode?: 'numeric' | 'text' | 'url';
  autocomplete?: string;
  widthClass?: string;
  /** A label styled as the page heading (NHS.UK "label as page heading"). */
  labelIsHeading?: boolean;
  accept?: string;
  spellcheck?: boolean;
}

/** An NHS.UK text input with its label, hint and error message, all tied by aria-describedby. */
export function field(options: FieldOptions): { group: HTMLDivElement; input: HTMLInputElement } {
  const described = [options.hint ? `${options.id}-hint` : '', options.error ? `${options.id}-error` : ''].filter(Boolean).join(' ');
  const input = h('input', {
    class: [options.type === 'file' ? 'nhsuk-file-upload__input' : 'nhsuk-input', options.error && options.type !== 'file' ? 'nhsuk-input--error' : '', options.widthClass ?? ''].filter(Boolean).join(' '),
    id: options.id,
    name: options.id,
    type: options.type ?? 'text',
    inputmode: options.inputmode,
    autocomplete: options.autocomplete ?? 'off',
    spellcheck: options.spellcheck === undefined ? undefined : String(options.spellcheck),
    accept: options.accept,
    'aria-describedby': described || undefined,
  });
  if (options.value !== undefined) input.value = options.value;
  const label = h('label', { class: options.labelIsHeading ? 'nhsuk-label nhsuk-label--l' : 'nhsuk-label', for: options.id }, options.label);
  const group = h(
    'div',
    { class: options.error ? 'nhsuk-form-group nhsuk-form-group--error' : 'nhsuk-form-group' },
    options.labelIsHeading ? h('h1', { class: 'nhsuk-label-wrapper', tabindex: '-1' }, label) : label,
    options.hint ? h('div', { class: 'nhsuk-hint', id: `${options.id}-hint` }, options.hint) : null,
    options.error ? h('span', { class: 'nhsuk-error-message', id: `${options.id}-error` }, visuallyHidden('Error: '), options.error) : null,
    input,
  );
  return { group, input };
}

/** The error summary at the top of a form; its links move focus to the field without changing the view. */
export function errorSummary(errors: Array<{ text: string; href: string }>): HTMLDivElement {
  return h(
    'div',
    { class: 'nhsuk-error-summary', tabindex: '-1' },
    h(
      'div',
      { role: 'alert' },
      h('h2', { class: 'nhsuk-error-summary__heading' }, 'There is a problem'),
      h('div', { class: 'nhsuk-error-summary__body' }, h('ul', { class: 'nhsuk-list nhsuk-error-summary__list' }, ...errors.map((e) => h('li', {}, h('a', { href: e.href }, e.text))))),
    ),
  );
}

export function list(items: Child[][]): HTMLUListElement {
  return h('ul', { class: 'nhsuk-list nhsuk-list--bullet' }, ...items.map((children) => h('li', {}, ...children)));
}
