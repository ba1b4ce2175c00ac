/**
 * What a newcomer sees, in real Chromium (issue #17, point 4): pages are set in the NHS font stack
 * ("Frutiger W01" where installed, then Arial, then sans-serif), never in the browser's default serif;
 * the header names the service once, to the eye and to a screen reader; no request (no web font)
 * leaves the machine.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const NHS_STACK = '"Frutiger W01", arial, sans-serif';

/**
 * The fonts Chromium actually drew an element's text with (DevTools' "Rendered Fonts"), found by CSS
 * selector: what the computed font-family resolves to on this machine.
 */
async function renderedFonts(page: Page, selector: string): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('DOM.enable');
    await cdp.send('CSS.enable');
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
    const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
    return fonts.map((font) => font.familyName);
  } finally {
    await cdp.detach();
  }
}

describe('the look of the pages in Chromium', () => {
  let server: LiveServer;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    server = await startLiveServer();
    ({ browser, origin } = server);
  });
  afterAll(async () => server?.close());

  it('sets the sign-in page in the NHS font stack, not a serif, with nothing fetched from outside', async () => {
    const page = await (await browser.newContext()).newPage();
    const outside = await blockOutsideRequests(page, origin);
    await page.goto(`${origin}/sign-in`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();

    // Before the fix the body had no font-family, so Chromium used its default: Times New Roman.
    const bodyFont = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
    expect(bodyFont.startsWith(NHS_STACK)).toBe(true);
    expect(bodyFont).not.toMatch(/times/i);
    expect(bodyFont.split(',').map((family) => family.trim())).not.toContain('serif');
    await expect(page.evaluate(() => getComputedStyle(document.querySelector('h1') ?? document.body).fontFamily)).resolves.toBe(bodyFont);

    // What was drawn: a reference in the browser's serif, beside the heading in the page's font.
    await page.evaluate(() => {
      const reference = document.createElement('span');
      reference.id = 'serif-reference';
      reference.textContent = 'Sign in';
      // Through the CSSOM, which the page's CSP (no inline style attributes) allows.
      reference.style.fontFamily = 'serif';
      document.body.append(reference);
    });
    const serif = await renderedFonts(page, '#serif-reference');
    const heading = await renderedFonts(page, 'h1');
    expect(serif.length).toBeGreaterThan(0);
    expect(heading.length).toBeGreaterThan(0);
    for (const font of heading) {
      expect(serif, `the heading is drawn in ${font}`).not.toContain(font);
      expect(font).not.toMatch(/\bserif\b|times/i);
    }
    expect(outside).toEqual([]);
  });

  it('names the service once in the header, to the eye and to a screen reader', async () => {
    const page = await (await browser.newContext()).newPage();
    const outside = await blockOutsideRequests(page, origin);
    await page.goto(`${origin}/sign-in`);
    const banner = page.getByRole('banner');
    await banner.waitFor();
    const seen = await banner.innerText();
    expect(seen.split('Portcullis').length - 1, seen).toBe(1);
    // The home link's accessible name: it was "Portcullis Portcullis homepage".
    await expect(banner.getByRole('link', { name: 'Portcullis homepage', exact: true }).count()).resolves.toBe(1);
    await expect(banner.getByRole('img').count()).resolves.toBe(0); // the mark is decorative (alt "")
    await expectAccessible(page);
    expect(outside).toEqual([]);
  });
});
