/**
 * Retention cleanup through the console (chromium, `--allow-actions`), in a store of its own: the
 * preview lists exactly the runs the options select, the dialog asks, and executing removes
 * those runs and nothing else, recorded in the audit trail.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { chromiumPath, launchBrowser } from "../support/browser.js";
import { type ConsolePage, goTo, hashOf, openConsole } from "../support/console-page.js";
import { type ConsoleServer, consoleBuilt, startConsoleServer } from "../support/console-server.js";
import { type ConsoleFixture, fillConsoleStore } from "../support/console-stores.js";

const ready = consoleBuilt() && chromiumPath !== undefined;
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });

describe.skipIf(!ready)("cairn ui in chromium: retention cleanup", () => {
  let dir: string;
  let browser: Browser;
  let fixture: ConsoleFixture;
  let server: ConsoleServer;
  let open: ConsolePage | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-ui-cleanup-"));
    fixture = await fillConsoleStore(`sqlite:${join(dir, "c.db")}`);
    server = await startConsoleServer({
      store: fixture.url,
      cwd: dir,
      args: ["--allow-actions", "--audit-log", join(dir, "audit.jsonl")],
    });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await open?.close();
    await browser?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("previews, asks, then removes exactly the previewed runs", async () => {
    open = await openConsole(browser, `${server.url}${hashOf(["cleanup"])}`);
    const p = open.page;
    // Keep the newest run of each pipeline name; of the older ones only finished runs go.
    await p.getByTestId("cleanup-keep").fill("1");
    if (!(await p.getByTestId("cleanup-completed").isChecked()))
      await p.getByTestId("cleanup-completed").check();
    await p.getByTestId("cleanup-preview").click();
    const rows = p.locator('[data-testid="cleanup-row"]');
    await poll(() => rows.count()).toBe(3);
    // orders-etl's newest run (the failed one, written last) is the one kept; of the older runs the
    // finished ones go. big-report has one run; pricing's one run never finished.
    const previewed = await rows.evaluateAll((r) => r.map((e) => e.getAttribute("data-run-id")).sort());
    const { completed, resumed, corrupt } = fixture.runs;
    expect(previewed).toEqual([completed, corrupt, resumed].sort());

    await p.getByTestId("cleanup-run").click();
    await p.getByTestId("confirm-dialog").waitFor();
    await p.getByTestId("confirm-ok").click();
    await p.locator('[data-testid="action-result"][data-action="cleanup"]').waitFor({ timeout: 15_000 });

    const manager = new CheckpointManager({ store: fixture.url });
    try {
      const left = (await manager.listPipelines()).map((s) => s.pipelineId).sort();
      expect(left).toEqual([fixture.runs.failed, fixture.runs.large, "run-compare"].sort());
    } finally {
      await manager.close();
    }

    await goTo(p, ["audit"]);
    const done = p.locator('[data-testid="audit-row"][data-action="cleanup"][data-outcome="done"]');
    await poll(() => done.count()).toBe(1);
    expect(open.problems).toEqual([]);
  });
});
