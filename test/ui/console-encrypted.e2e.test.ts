/**
 * Encrypted runs in the console (chromium): without the key the checkpoint page says the data is
 * encrypted and the page never holds the secret; with `--key-file` the same page shows the
 * decrypted state.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chromiumPath, launchBrowser } from "../support/browser.js";
import { type ConsolePage, hashOf, openConsole } from "../support/console-page.js";
import { type ConsoleServer, consoleBuilt, startConsoleServer } from "../support/console-server.js";
import { type EncryptedFixture, fillEncryptedStore } from "../support/console-stores.js";

const ready = consoleBuilt() && chromiumPath !== undefined;
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });

describe.skipIf(!ready)("cairn ui in chromium: encrypted runs", () => {
  let dir: string;
  let browser: Browser;
  let fixture: EncryptedFixture;
  let keyFile: string;
  const servers: ConsoleServer[] = [];
  const open: ConsolePage[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-ui-encrypted-"));
    fixture = await fillEncryptedStore(`sqlite:${join(dir, "c.db")}`);
    keyFile = join(dir, "keys.json");
    await writeFile(keyFile, fixture.keyFile, { mode: 0o600 });
    browser = await launchBrowser();
  }, 60_000);
  afterEach(async () => {
    const seen = open.splice(0);
    for (const p of seen) await p.close();
    for (const p of seen) expect(p.problems).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    for (const s of servers.splice(0)) await s.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function checkpointPage(args: string[]) {
    const server = await startConsoleServer({
      store: fixture.url,
      cwd: dir,
      args,
      env: { CAIRN_KEY_FILE: undefined },
    });
    servers.push(server);
    const p = await openConsole(browser, `${server.url}${hashOf(["checkpoints", fixture.checkpointId])}`);
    open.push(p);
    return p.page;
  }

  it("without the key: shown as encrypted, the secret never reaches the page", async () => {
    const p = await checkpointPage([]);
    await p.getByTestId("encrypted").waitFor();
    expect(await p.getByTestId("encrypted").textContent()).toContain("encrypted");
    expect(await p.getByTestId("values").count()).toBe(0);
    expect(await p.content()).not.toContain(fixture.marker);
  });

  it("with --key-file: the decrypted state is there", async () => {
    const p = await checkpointPage(["--key-file", keyFile]);
    const values = p.getByTestId("values");
    await values.waitFor();
    expect(await p.getByTestId("encrypted").count()).toBe(0);
    // The state is collapsed: open it, then its `inputs`, which hold the secret.
    await values.getByTestId("json-toggle").first().click();
    await values.locator('[data-testid="json-toggle"]', { hasText: '"inputs"' }).click();
    await poll(() => values.textContent()).toContain(fixture.marker);
  });
});
