/**
 * The console in a real browser (Debian's chromium through playwright-core) against the built
 * `cairn ui` on stores filled by real pipeline runs: the issue's scenarios, from the runs table
 * to a quarantine through the confirmation dialog and the audit page, live updates from another
 * process, and the 1 MB output. With `CAIRN_SCREENSHOTS=1` it also writes docs/screenshots/*.png.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { chromiumPath, launchBrowser } from "../support/browser.js";
import {
  type ConsolePage,
  goTo,
  hashOf,
  openConsole,
  respondsWithin,
  screenshot,
} from "../support/console-page.js";
import { type ConsoleServer, consoleBuilt, startConsoleServer } from "../support/console-server.js";
import { type ConsoleFixture, fillConsoleStore } from "../support/console-stores.js";
import { LIVE_PIPELINE, writeRunInAnotherProcess } from "../support/console-writer.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

const built = consoleBuilt();
if (!built && process.env.CI) throw new Error("the console is not built: run `npm run build` (tsc + vite)");
if (!built)
  console.warn("\n⚠⚠⚠ SKIPPING console browser tests: run `npm run build` first (dist/ui/web). ⚠⚠⚠\n");
const ready = built && chromiumPath !== undefined;

let browser: Browser;
const open: ConsolePage[] = [];
const servers: ConsoleServer[] = [];
let dir: string;

beforeAll(async () => {
  if (!ready) return;
  dir = await mkdtemp(join(tmpdir(), "cairn-ui-e2e-"));
  browser = await launchBrowser();
});
afterEach(async () => {
  // Every page must have run without an uncaught error or a refused resource (CSP).
  const seen = open.splice(0);
  for (const p of seen) await p.close();
  for (const p of seen) expect(p.problems).toEqual([]);
});
afterAll(async () => {
  await browser?.close();
  for (const s of servers.splice(0)) await s.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function serve(store: string, args: string[] = []): Promise<ConsoleServer> {
  const server = await startConsoleServer({ store, cwd: dir, args });
  servers.push(server);
  return server;
}

async function page(server: ConsoleServer, parts: string[] = ["runs"], query: Record<string, string> = {}) {
  // Opened at its route: a hash set right after the load could come before the router listens.
  const p = await openConsole(browser, `${server.url}${hashOf(parts, query)}`);
  open.push(p);
  return p.page;
}

/** `expect.poll` with room for a page to fetch and render (the default second is tight on a busy machine). */
const poll = <T>(fn: () => T | Promise<T>, timeout = 10_000) => expect.poll(fn, { timeout });

const row = (p: Page, runId: string) => p.locator(`[data-testid="run-row"][data-run-id="${runId}"]`);

/** The runs table shows each run of the fixture with its status, stages and resumes. */
async function expectRunsTable(p: Page, fixture: ConsoleFixture): Promise<void> {
  const { runs } = fixture;
  await row(p, runs.completed).waitFor();
  const expected: [string, string][] = [
    [runs.completed, "completed"],
    [runs.resumed, "completed"],
    [runs.failed, "failed"],
    [runs.corrupt, "completed"],
    [runs.large, "completed"],
  ];
  for (const [id, status] of expected) await poll(() => row(p, id).getAttribute("data-status")).toBe(status);
  await poll(() => row(p, runs.completed).textContent()).toContain(fixture.etlName);
  await poll(() => row(p, runs.completed).textContent()).toContain("3/3");
  await poll(() => row(p, runs.failed).textContent()).toContain("1/3");
  // The resumed run says it was resumed once; the others were never resumed.
  const cells = async (id: string) => (await row(p, id).locator("td").allTextContents()).map((t) => t.trim());
  expect((await cells(runs.resumed)).at(-1)).toBe("1");
  expect((await cells(runs.completed)).at(-1)).toBe("0");
}

describe.skipIf(!ready)("cairn ui in chromium (sqlite store)", () => {
  let fixture: ConsoleFixture;
  let plain: ConsoleServer;
  let acting: ConsoleServer;
  beforeAll(async () => {
    fixture = await fillConsoleStore(`sqlite:${join(dir, "c.db")}`);
    [plain, acting] = await Promise.all([
      serve(fixture.url),
      serve(fixture.url, ["--allow-actions", "--audit-log", join(dir, "audit.jsonl")]),
    ]);
  }, 60_000);

  it("lists the runs with the right statuses", async () => {
    const p = await page(plain);
    await expectRunsTable(p, fixture);
    await screenshot(p, "runs");
  });

  it("clicking the failed run shows the failed stage, its error and the resume command", async () => {
    const p = await page(plain);
    await row(p, fixture.runs.failed).locator("a").first().click();
    await p.waitForFunction(
      `decodeURIComponent(location.hash) === ${JSON.stringify(`#/runs/${fixture.runs.failed}`)}`,
    );
    const stage = p.locator(`[data-testid="stage-row"][data-stage="${fixture.failedStage}"]`);
    await poll(() => stage.getAttribute("data-status")).toBe("failed");
    await poll(() => stage.textContent()).toContain(fixture.failedError);
    const command = p.getByTestId("resume-command");
    // The command `cairn run` takes (its flag is --run-id), for this run, on this store.
    await poll(() => command.textContent()).toContain(`--run-id ${fixture.runs.failed}`);
    expect(await command.textContent()).toMatch(/^cairn run /);
    expect(await command.textContent()).toContain("--store");
    await p.getByTestId("run-graph").first().waitFor();
    await screenshot(p, "run");
  });

  it("the failed-then-resumed run shows the failed attempt and its resume", async () => {
    const p = await page(plain);
    await row(p, fixture.runs.resumed).locator("a").first().click();
    const stage = p.locator(`[data-testid="stage-row"][data-stage="${fixture.failedStage}"]`);
    await poll(() => stage.getAttribute("data-status")).toBe("completed");
    // Two attempts of the stage across the two executions: the failed one and the resumed one.
    const cells = (await stage.locator("td").allTextContents()).map((t) => t.trim());
    expect(cells[4]).toBe("2");
    // The checkpoint the resume continued from is in the chain, marked resumed.
    const resumedFrom = p.locator('[data-testid="chain-row"]', { has: p.locator('[data-status="resumed"]') });
    await poll(() => resumedFrom.count()).toBe(1);
    expect(await resumedFrom.textContent()).toContain(fixture.failedStage);
    await poll(() => p.locator('[data-testid="chain-row"]').count()).toBe(5);
    // The timeline (Gantt) of the attempts across the first run and its resume.
    // Below the sticky top bar: the stage table's heading row stays visible.
    await p.getByTestId("stages-table").evaluate((el) => {
      el.scrollIntoView({ block: "start" });
      el.ownerDocument.defaultView?.scrollBy(0, -90);
    });
    await screenshot(p, "run-timeline");
  });

  it("the corrupt checkpoint shows its problem, on its page and on its run's", async () => {
    const p = await page(plain, ["checkpoints", fixture.corruptCheckpointId]);
    const validation = p.getByTestId("validation");
    await poll(() => validation.getAttribute("data-status")).toMatch(/^(invalid|corrupt)$/);
    await poll(() => validation.locator('[data-testid="problem"]').count()).toBeGreaterThan(0);
    expect(await validation.textContent()).toMatch(/checksum/i);
    await screenshot(p, "checkpoint");

    await goTo(p, ["runs", fixture.runs.corrupt]);
    const chainRow = p.locator(
      `[data-testid="chain-row"][data-checkpoint-id="${fixture.corruptCheckpointId}"]`,
    );
    await poll(() => chainRow.getAttribute("data-check")).toMatch(/^(invalid|corrupt)$/);
    await poll(async () =>
      Number(await p.getByTestId("problems").getAttribute("data-count")),
    ).toBeGreaterThan(0);
    expect(await p.getByTestId("problems").textContent()).toContain(fixture.corruptCheckpointId);
    // The summary counts it too (the store's own count, unreadable entries, would say 0).
    expect(await p.getByTestId("run-invalid").textContent()).toContain("1");
  });

  it("compare shows the one changed state key", async () => {
    const { a, b, changedKey, before, after } = fixture.compare;
    const p = await page(plain, ["compare"], { a, b });
    const changed = p.locator(`[data-testid="diff-row"][data-section="state"]`);
    await poll(() => changed.count()).toBe(1);
    expect(await changed.getAttribute("data-path")).toBe(changedKey);
    expect(await changed.getAttribute("data-kind")).toBe("changed");
    const text = (await changed.locator("td").allTextContents()).map((t) => t.trim());
    expect(text).toEqual([changedKey, "changed", String(before), String(after)]);
    await screenshot(p, "compare");
  });

  it("shows the statistics as charts", async () => {
    const p = await page(plain, ["stats"]);
    await p.getByTestId("totals").waitFor();
    await poll(() => p.locator("canvas").count()).toBeGreaterThanOrEqual(2);
    await screenshot(p, "statistics");
  });

  it("without --allow-actions there is no action button, and action POSTs are 404", async () => {
    const p = await page(plain, ["runs", fixture.runs.corrupt]);
    await p.getByTestId("chain").waitFor();
    expect(await p.getByTestId("actions").count()).toBe(0);
    expect(await p.locator('[data-testid^="action-"]').count()).toBe(0);
    const statuses = await p.evaluate(async (pipelineId) => {
      const session = (await (await fetch("/api/session")).json()) as { csrfToken: string };
      const out: number[] = [];
      for (const action of ["validate", "quarantine", "cleanup/preview", "cleanup", "export"]) {
        const res = await fetch(`/api/actions/${action}`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Cairn-CSRF": session.csrfToken },
          body: JSON.stringify({ pipelineId }),
        });
        out.push(res.status);
      }
      return out;
    }, fixture.runs.corrupt);
    expect(statuses).toEqual([404, 404, 404, 404, 404]);
    // The browser logs each of those refused requests; they are this test's own, not the page's.
    const own = (open.at(-1) as ConsolePage).problems;
    const refused = own.filter((m) => m.includes("status of 404"));
    expect(refused).toHaveLength(5);
    own.splice(0, own.length, ...own.filter((m) => !refused.includes(m)));
  });

  it("with --allow-actions, quarantine asks first, then works and appears in the audit trail", async () => {
    const p = await page(acting, ["runs", fixture.runs.corrupt]);
    const quarantine = p.getByTestId("action-quarantine");
    // Cancelled: nothing happens, nothing is audited.
    await quarantine.click();
    await p.getByTestId("confirm-dialog").waitFor();
    await p.getByTestId("confirm-cancel").click();
    await p.getByTestId("confirm-dialog").waitFor({ state: "detached" });
    expect(await p.getByTestId("action-result").count()).toBe(0);

    await quarantine.click();
    await p.getByTestId("confirm-ok").click();
    const result = p.locator('[data-testid="action-result"][data-action="quarantine"]');
    await poll(() => result.textContent(), 15_000).toContain(fixture.corruptCheckpointId);
    const manager = new CheckpointManager({ store: fixture.url });
    try {
      const history = await manager.getCheckpointHistory(fixture.runs.corrupt);
      expect(history.find((m) => m.checkpointId === fixture.corruptCheckpointId)?.status).toBe("expired");
    } finally {
      await manager.close();
    }

    await goTo(p, ["audit"]);
    const entries = p.locator('[data-testid="audit-row"][data-action="quarantine"]');
    await poll(() => entries.count()).toBe(2);
    expect(await entries.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-outcome")))).toEqual([
      "done",
      "requested",
    ]);
    expect(await entries.first().textContent()).toContain(fixture.runs.corrupt);
    await screenshot(p, "audit");
  });

  it("shows a run written by another process within 2 s", async () => {
    const p = await page(plain);
    await row(p, fixture.runs.completed).waitFor();
    await p.getByTestId("live-indicator").first().waitFor();
    const runId = uniqueName("run-live").replace(/_/g, "-");
    expect(await row(p, runId).count()).toBe(0);
    await writeRunInAnotherProcess(fixture.url, runId);
    await row(p, runId).waitFor({ timeout: 2000 });
    expect(await row(p, runId).getAttribute("data-status")).toBe("completed");
    expect(await row(p, runId).textContent()).toContain(LIVE_PIPELINE);
  });

  it("expands the 1 MB output without freezing the page", async () => {
    const p = await page(plain, ["checkpoints", fixture.largeCheckpointId]);
    const output = p.locator(`[data-testid="lazy-json"][data-name="output: ${fixture.largeStage}"]`);
    await output.getByTestId("json-toggle").first().click();
    expect(await respondsWithin(p, 1000)).toBe(2);
    // Expanded and loaded: its `rows` node is there, collapsed; its 8,000 rows render in chunks.
    await poll(() => output.textContent(), 15_000).toContain('"rows"');
    expect(await respondsWithin(p, 1000)).toBe(2);
    await output.locator('[data-testid="json-toggle"]', { hasText: '"rows"' }).click();
    expect(await respondsWithin(p, 1000)).toBe(2);
    await output.getByTestId("json-more").first().waitFor();
    expect(await output.locator('[data-testid="json-toggle"]').count()).toBeLessThan(500);
  });

  it("logs the browser in through the one-time link on a non-loopback bind", async () => {
    const exposed = await serve(fixture.url, ["--host", "0.0.0.0"]);
    const link = new URL(exposed.loginUrl as string);
    const p = await openConsole(browser, `http://127.0.0.1:${exposed.port}${link.pathname}${link.search}`);
    open.push(p);
    // The link redirects to `/`: the runs page.
    await row(p.page, fixture.runs.completed).waitFor();
    // The link is spent: a second browser with it gets no session.
    const again = await browser.newContext();
    const res = await again.request.get(`http://127.0.0.1:${exposed.port}${link.pathname}${link.search}`, {
      maxRedirects: 0,
    });
    expect(res.status()).toBe(401);
    await again.close();
  });
});

describe.skipIf(!ready || !postgresUp)("cairn ui in chromium (postgres store)", () => {
  const schema = uniqueName("cairn_ui_e2e");
  afterAll(async () => {
    await dropSchemas(schema);
  });

  it("lists the runs with the right statuses", async () => {
    const fixture = await fillConsoleStore(`${POSTGRES_URL}?schema=${schema}`);
    const server = await serve(fixture.url);
    const p = await page(server);
    await expectRunsTable(p, fixture);
    await row(p, fixture.runs.failed).locator("a").first().click();
    await poll(() => p.getByTestId("resume-command").textContent()).toContain(
      `--run-id ${fixture.runs.failed}`,
    );
  }, 60_000);
});
