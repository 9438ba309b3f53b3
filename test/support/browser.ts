/**
 * The real browser the console tests drive: Debian's `chromium` package through playwright-core
 * (no downloaded browser build). When no chromium is installed the browser tests are skipped with
 * a loud message, except under CI (`CI` set), where a missing browser fails the run instead of
 * silently testing less — the same rule as the database servers in services.ts.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** The flags the issue asks for: headless, no sandbox (root in containers), nothing from the network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
] as const;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The chromium to use: `CAIRN_TEST_CHROMIUM`, else `/usr/bin/chromium`, else `chromium` on the PATH. */
export function findChromium(): string | undefined {
  const candidates = [
    process.env.CAIRN_TEST_CHROMIUM,
    "/usr/bin/chromium",
    ...(process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "chromium")),
  ];
  return candidates.find((path): path is string => path !== undefined && path !== "" && executable(path));
}

/**
 * The chromium path when there is one. Otherwise: under CI, throws (the suite fails); elsewhere,
 * prints a warning and returns undefined so the caller skips its tests.
 */
function chromiumOrSkip(): string | undefined {
  const path = findChromium();
  if (path) return path;
  const message = "no chromium found (/usr/bin/chromium or `chromium` on the PATH)";
  if (process.env.CI) throw new Error(`${message}: CI requires it (apt-get install chromium; .ci/run does)`);
  console.warn(
    `\n⚠⚠⚠ SKIPPING browser tests: ${message}. Install Debian's chromium package to run them. ⚠⚠⚠\n`,
  );
  return undefined;
}

/** Resolved once at import, so `describe.skipIf(!chromiumPath)` stays synchronous. */
export const chromiumPath = chromiumOrSkip();

/** Launches the headless chromium with the flags (throws when there is none). */
export async function launchBrowser(): Promise<Browser> {
  if (!chromiumPath) throw new Error("launchBrowser: no chromium (the tests should have been skipped)");
  return chromium.launch({ executablePath: chromiumPath, args: [...CHROMIUM_ARGS] });
}
