/**
 * Help articles: Markdown files in content/help/ with YAML front matter (title, summary, updated),
 * rendered once at start-up to HTML with NHS.UK classes. Raw HTML in the Markdown is never passed
 * through (markdown-it's `html: false` escapes it). "Last updated" is the `updated:` field, because a
 * git commit date is not there in every install and a file's mtime changes on every checkout; a test
 * holds each field to its file. Placeholders such as {{deadline:elevated}} are filled per request from
 * the policy in force (docs/help.md).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import MarkdownIt, { type Token } from 'markdown-it';
import { parse as parseYaml } from 'yaml';
import { formatDay } from '../../core/policy/dates.js';
import type { CompiledPolicy } from '../../core/policy/document.js';
import { PROJECT_ROOT } from '../../paths.js';

export const HELP_CONTENT_DIR = path.join(PROJECT_ROOT, 'content', 'help');

export interface HelpHeading {
  id: string;
  text: string;
}

export interface HelpArticle {
  slug: string;
  title: string;
  summary: string;
  /** YYYY-MM-DD, from the front matter. */
  updated: string;
  /** Orders the index (smaller first), then the title. */
  order: number;
  /** The body as HTML, with placeholders still in it. */
  html: string;
  /** The body as plain text, for search. */
  text: string;
  /** The level-2 headings, for the contents list. */
  headings: HelpHeading[];
}

/** What a placeholder may name. */
export const PLACEHOLDERS = ['deadline:elevated', 'deadline:registration'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
const PLACEHOLDER = /\{\{\s*([a-z:-]+)\s*\}\}/g;

const SLUG = /^[a-z0-9][a-z0-9-]{0,79}$/;

const CLASSES: Record<string, string> = {
  h2: 'nhsuk-heading-m',
  h3: 'nhsuk-heading-s',
  h4: 'nhsuk-heading-xs',
  p: 'nhsuk-body',
  ul: 'nhsuk-list nhsuk-list--bullet',
  ol: 'nhsuk-list nhsuk-list--number',
  table: 'nhsuk-table',
  thead: 'nhsuk-table__head',
  tbody: 'nhsuk-table__body',
  tr: 'nhsuk-table__row',
  th: 'nhsuk-table__header',
  td: 'nhsuk-table__cell',
  blockquote: 'nhsuk-inset-text',
};

function idFor(text: string, used: Set<string>): string {
  const base = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'section';
  let id = base;
  for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
  used.add(id);
  return id;
}

function createRenderer() {
  // html: false: an article can never carry a script or a style, whoever edits it.
  const md = new MarkdownIt({ html: false, linkify: false, typographer: true });
  md.core.ruler.push('nhsuk-classes', (state) => {
    const used = new Set<string>();
    const tokens = state.tokens;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (!token.type.endsWith('_open')) continue;
      // An article's own h1 would be a second one on the page: the title is the h1.
      if (token.tag === 'h1') token.tag = 'h2';
      const classes = CLASSES[token.tag];
      if (classes) token.attrJoin('class', classes);
      if (token.tag === 'h2' && token.type === 'heading_open') token.attrSet('id', idFor(tokens[i + 1]?.content ?? '', used));
    }
  });
  return md;
}

const renderer = createRenderer();

function plainText(tokens: Token[]): string {
  const parts: string[] = [];
  for (const token of tokens) {
    if (token.type === 'inline') parts.push((token.children ?? []).filter((c) => c.type === 'text' || c.type === 'code_inline').map((c) => c.content).join(''));
  }
  return parts.join('\n');
}

export class HelpContentError extends Error {}

/** Parses one article file. Throws HelpContentError naming the file and what is wrong. */
export function parseArticle(slug: string, source: string): HelpArticle {
  const match = /^---\r?\n([\s\S]*?)\r?\n---\r?\n([\s\S]*)$/.exec(source);
  if (!match) throw new HelpContentError(`${slug}.md: needs front matter between --- lines`);
  const front = parseYaml(match[1]!) as Record<string, unknown> | null;
  const title = front?.title;
  const summary = front?.summary;
  // YAML reads an unquoted 2024-01-31 as a date; either form is accepted.
  const updatedValue = front?.updated instanceof Date ? front.updated.toISOString().slice(0, 10) : front?.updated;
  const order = front?.order ?? 100;
  if (!SLUG.test(slug)) throw new HelpContentError(`${slug}.md: file names are lower-case letters, digits and dashes`);
  if (typeof title !== 'string' || !title.trim()) throw new HelpContentError(`${slug}.md: needs a title`);
  if (typeof summary !== 'string' || !summary.trim()) throw new HelpContentError(`${slug}.md: needs a summary`);
  if (typeof updatedValue !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(updatedValue) || Number.isNaN(Date.parse(updatedValue))) {
    throw new HelpContentError(`${slug}.md: needs updated: YYYY-MM-DD`);
  }
  if (typeof order !== 'number') throw new HelpContentError(`${slug}.md: order must be a number`);
  const body = match[2]!;
  for (const [, name] of body.matchAll(PLACEHOLDER)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name!)) throw new HelpContentError(`${slug}.md: unknown placeholder {{${name}}}`);
  }
  const env = {};
  const tokens = renderer.parse(body, env);
  const headings: HelpHeading[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.type === 'heading_open' && token.tag === 'h2') headings.push({ id: String(token.attrGet('id') ?? ''), text: tokens[i + 1]?.content ?? '' });
  }
  return {
    slug,
    title: title.trim(),
    summary: summary.trim(),
    updated: updatedValue,
    order,
    html: renderer.renderer.render(tokens, renderer.options, env),
    text: plainText(tokens),
    headings,
  };
}

/** Every article in a folder, by slug. */
export function loadArticles(dir = HELP_CONTENT_DIR): Map<string, HelpArticle> {
  const articles = new Map<string, HelpArticle>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.md')).sort()) {
    const slug = file.slice(0, -3);
    articles.set(slug, parseArticle(slug, readFileSync(path.join(dir, file), 'utf8')));
  }
  return articles;
}

/** The policy's dates an article may name. `null`: the policy sets none. */
export function policyDeadlines(policy: CompiledPolicy): Record<Placeholder, Date | null> {
  const earliest = (dates: Date[]) => (dates.length ? new Date(Math.min(...dates.map((d) => d.getTime()))) : null);
  // "Elevated": an enforced requirement on elevated roles (or one named role), as the source article's
  // push requirement for people with elevated rights.
  const elevated = policy.requirements.filter((r) => r.mode === 'enforce' && r.include.some((t) => t === 'elevated' || t.startsWith('role:')));
  const registration = policy.registration.filter((r) => r.mode === 'enforce');
  return {
    'deadline:elevated': earliest(elevated.map((r) => r.effective)),
    'deadline:registration': earliest(registration.map((r) => r.by)),
  };
}

export const NO_DATE_TEXT = 'no date has been set';

/** The article's HTML with its placeholders filled (the values are dates in words: nothing to escape). */
export function fillPlaceholders(html: string, policy: CompiledPolicy): string {
  const deadlines = policyDeadlines(policy);
  return html.replace(PLACEHOLDER, (whole, name: string) => {
    if (!(name in deadlines)) return whole;
    const date = deadlines[name as Placeholder];
    return date ? formatDay(date, policy.timeZone) : NO_DATE_TEXT;
  });
}

export interface SearchResult {
  article: HelpArticle;
  score: number;
}

/** Articles holding every word of the query, titles weighing more than text. Server-side, no JavaScript. */
export function searchArticles(articles: Iterable<HelpArticle>, query: string): SearchResult[] {
  const words = query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 1).slice(0, 10);
  if (!words.length) return [];
  const results: SearchResult[] = [];
  for (const article of articles) {
    const title = article.title.toLowerCase();
    const text = `${article.summary}\n${article.text}`.toLowerCase();
    let score = 0;
    let all = true;
    for (const word of words) {
      const inTitle = title.includes(word);
      const inText = text.split(word).length - 1;
      if (!inTitle && !inText) {
        all = false;
        break;
      }
      score += (inTitle ? 10 : 0) + Math.min(inText, 5);
    }
    if (all) results.push({ article, score });
  }
  return results.sort((a, b) => b.score - a.score || a.article.title.localeCompare(b.article.title));
}
