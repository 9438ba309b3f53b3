/**
 * Pages of the console in the real browser: a fresh page at 1280×800 that records what went
 * wrong in it (uncaught errors, console errors such as Content-Security-Policy refusals), and the
 * screenshots the README shows, written only with `CAIRN_SCREENSHOTS=1` so a CI run never dirties
 * the tree.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";

/** Where the screenshots go: `docs/screenshots/<page>.png`. */
export const SCREENSHOT_DIR = join(dirname(fileURLToPath(import.meta.url)), "../../docs/screenshots");

/** A page with the problems seen in it. */
export interface ConsolePage {
  page: Page;
  context: BrowserContext;
  /** Uncaught errors and `console.error` messages, in order. */
  problems: string[];
  close(): Promise<void>;
}

/** Opens `url` (with its `#/…` route) in a new context (own cookies) at 1280×800. */
export async function openConsole(browser: Browser, url: string): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console.error: ${message.text()}`);
  });
  await page.goto(url);
  return { page, context, problems, close: () => context.close() };
}

/** The hash of a route: `#/runs/<encoded id>?a=1`. */
export function hashOf(parts: string[], query: Record<string, string> = {}): string {
  const path = `#/${parts.map(encodeURIComponent).join("/")}`;
  const search = new URLSearchParams(query).toString();
  return search ? `${path}?${search}` : path;
}

/**
 * Goes to a hash route of a console that has rendered (its router listens for `hashchange`
 * from its first effect on; a fresh page is opened at its route with `openConsole` instead).
 */
export async function goTo(page: Page, parts: string[], query: Record<string, string> = {}): Promise<void> {
  // Runs in the page (no DOM types here).
  await page.evaluate(`location.hash = ${JSON.stringify(hashOf(parts, query))}`);
}

/** Screenshot of the viewport into docs/screenshots/<name>.png, when `CAIRN_SCREENSHOTS=1`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.CAIRN_SCREENSHOTS !== "1") return;
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  // Charts animate in; the picture should show them drawn.
  await page.waitForTimeout(800);
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

/**
 * Resolves with the page's answer to a trivial script, or rejects when the page's main thread
 * does not answer within `ms`: a frozen page (a 1 MB output rendered at once) cannot answer.
 */
export async function respondsWithin(page: Page, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the page did not answer a trivial script within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([page.evaluate(() => 1 + 1), late]);
  } finally {
    clearTimeout(timer);
  }
}
