/**
 * Reading our pages in integration tests: a table's body rows as text, a link's target by its text.
 */

/** The body rows of the page's table, each as its cells' text (the small-screen headings and tags dropped, entities decoded). */
export function tableRows(html: string): string[][] {
  const body = /<tbody[^>]*>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
  return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...row[1]!.matchAll(/<t[dh][^>]*>([\s\S]*?)<\/t[dh]>/g)].map((cell) =>
      decode(cell[1]!.replace(/<span class="nhsuk-table__heading"[^>]*>[\s\S]*?<\/span>/g, '').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim(),
    ),
  );
}

export function decode(text: string): string {
  return text
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** The href of the link whose text includes `text`. */
export function linkTo(html: string, text: string): string | undefined {
  for (const m of html.matchAll(/<a\b[^>]*href="([^"]*)"[^>]*>([\s\S]*?)<\/a>/g)) {
    if (m[2]!.replace(/<[^>]+>/g, ' ').includes(text)) return decode(m[1]!);
  }
  return undefined;
}
