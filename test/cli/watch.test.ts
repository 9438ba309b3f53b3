/**
 * `cairn watch` run as a subprocess against sqlite and file stores this (other) process writes:
 * JSON lines with their cursors, a restart with `--since` continuing after a line, filters,
 * readable lines, a clean stop on SIGTERM/SIGINT, typed errors, a store that goes away and comes
 * back (PostgreSQL behind a proxy); and `cairn monitor` woken by the feed instead of waiting out
 * its interval.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn, startCairn } from "../support/cli.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";
import { startProxy } from "../support/tcp-proxy.js";

interface Line {
  type: string;
  pipelineId: string;
  pipelineName: string;
  checkpointId: string | null;
  sequence: number | null;
  at: string;
  cursor: string;
}

let dir: string;
const children = new Set<ChildProcess>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-watch-"));
});
afterEach(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  await rm(dir, { recursive: true, force: true });
});

/** A long-running `cairn` process, with its output as JSON lines and a wait for a line count. */
function start(args: string[]) {
  const started = startCairn(args, { cwd: dir, children });
  const json = () => started.lines().map((l) => JSON.parse(l) as Line);
  const linesAtLeast = (count: number) =>
    started.until(`${count} lines`, () => started.lines().length >= count);
  return { ...started, json, linesAtLeast };
}

/** Writes one checkpoint of `pipelineId` (pipeline `etl`) through a manager of `store`; returns its id. */
async function write(
  store: string,
  pipelineId: string,
  stageIndex: number,
  pipelineName = "etl",
): Promise<string> {
  const manager = new CheckpointManager({ store });
  try {
    return await manager.createCheckpoint({
      pipelineId,
      pipelineName,
      stageName: `stage${stageIndex}`,
      stageIndex,
      stateData: { n: stageIndex },
    });
  } finally {
    await manager.close();
  }
}

describe("cairn watch --json", () => {
  it("prints each change of another process as a JSON line with its cursor; --since continues after one", async () => {
    const store = `sqlite:${join(dir, "c.db")}`;
    const first = await write(store, "run-a", 0);
    const watcher = start(["watch", "--json", "--from-start", "--store", store]);
    await watcher.linesAtLeast(1);
    const second = await write(store, "run-a", 1);
    await write(store, "run-b", 0, "other");
    const manager = new CheckpointManager({ store });
    await manager.updateCheckpointStatus(second, "failed", "boom");
    await manager.cleanupPipelines(["run-b"], { force: true });
    await manager.close();
    await watcher.linesAtLeast(5);
    watcher.child.kill("SIGTERM");
    expect(await watcher.exited).toBe(0);
    expect(watcher.out.stderr).toBe("");
    const lines = watcher.json();
    expect(lines.map((l) => [l.type, l.pipelineId, l.checkpointId, l.sequence])).toEqual([
      ["checkpoint", "run-a", first, 1],
      ["checkpoint", "run-a", second, 2],
      ["checkpoint", "run-b", expect.any(String), 1],
      ["status", "run-a", second, 2],
      ["deleted", "run-b", null, null],
    ]);
    expect(lines.map((l) => l.pipelineName)).toEqual(["etl", "etl", "other", "etl", "other"]);
    expect(new Set(lines.map((l) => l.cursor)).size).toBe(5);
    for (const line of lines) expect(Object.keys(line)).toEqual(Object.keys(lines[0] as Line));

    // Restarted after the second line: the same changes, with the same cursors, from the third on.
    const again = start(["watch", "--json", "--since", (lines[1] as Line).cursor, "--store", store]);
    await again.linesAtLeast(3);
    again.child.kill("SIGINT");
    expect(await again.exited).toBe(0);
    expect(again.json()).toEqual(lines.slice(2));

    // Filters: one run, or one pipeline name.
    const byRun = start(["watch", "--json", "--from-start", "--pipeline-id", "run-a", "--store", store]);
    const byName = start(["watch", "--json", "--from-start", "--name", "other", "--store", store]);
    await byRun.linesAtLeast(3);
    await byName.linesAtLeast(2);
    const third = await write(store, "run-a", 2);
    await byRun.linesAtLeast(4);
    byRun.child.kill("SIGTERM");
    byName.child.kill("SIGTERM");
    expect(await byRun.exited).toBe(0);
    expect(await byName.exited).toBe(0);
    expect(byRun.json().map((l) => [l.type, l.checkpointId])).toEqual([
      ["checkpoint", first],
      ["checkpoint", second],
      ["status", second],
      ["checkpoint", third],
    ]);
    expect(byName.json()).toEqual(lines.filter((l) => l.pipelineName === "other"));
  });

  it("starts from now by default", async () => {
    const store = `sqlite:${join(dir, "c.db")}`;
    await write(store, "before", 0);
    const watcher = start(["watch", "--json", "--store", store]);
    // It starts at some point after the spawn: written until it prints one, the run shows it has.
    for (let i = 0; watcher.lines().length === 0; i++) {
      if (i > 200) throw new Error(`the watcher printed nothing: ${watcher.out.stderr}`);
      await write(store, "marker", i);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    watcher.child.kill("SIGTERM");
    expect(await watcher.exited).toBe(0);
    const runs = watcher.json().map((l) => l.pipelineId);
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.every((run) => run === "marker")).toBe(true);
  });
});

describe("cairn watch, readable", () => {
  it("prints time, type, run, checkpoint and sequence; on SIGINT says where to continue and exits 0", async () => {
    const store = `file:${join(dir, "files")}`;
    await write(store, "run-a", 0);
    const watcher = start(["watch", "--from-start", "--store", store]);
    await watcher.linesAtLeast(1);
    const manager = new CheckpointManager({ store });
    await manager.cleanupPipelines(["run-a"], { force: true });
    await manager.close();
    await watcher.linesAtLeast(2);
    watcher.child.kill("SIGINT");
    expect(await watcher.exited).toBe(0);
    const [written, deleted] = watcher.lines();
    expect(written).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ {2}checkpoint {2}run-a {2}run-a_stage0_\S+ #1$/,
    );
    expect(deleted).toMatch(/Z {2}deleted +run-a {2}\(the whole run\)$/);
    expect(watcher.out.stderr).toMatch(
      /^cairn: stopped; continue after the last change with --since \S+:\d+\n$/,
    );
    expect(watcher.out.stdout).not.toContain("\x1b[");
  });
});

describe("cairn watch errors", () => {
  it("a cursor of another store is CAIRN_FEED_TRIMMED (exit 2); a cursor that is none, exit 2", async () => {
    const a = `sqlite:${join(dir, "a.db")}`;
    const b = `sqlite:${join(dir, "b.db")}`;
    await write(a, "run-a", 0);
    await write(b, "run-b", 0);
    const watcher = start(["watch", "--json", "--from-start", "--store", a]);
    await watcher.linesAtLeast(1);
    watcher.child.kill("SIGTERM");
    await watcher.exited;
    const cursor = (watcher.json()[0] as Line).cursor;
    const other = await runCairn(["watch", "--since", cursor, "--store", b], { cwd: dir });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("CAIRN_FEED_TRIMMED");
    const garbage = await runCairn(["watch", "--since", "nope", "--store", b], { cwd: dir });
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toContain("CAIRN_INVALID_ARGUMENT");
  });
});

describe("cairn monitor on a store with a feed", () => {
  it("redraws when another process writes, without waiting out --refresh", async () => {
    const store = `sqlite:${join(dir, "c.db")}`;
    await write(store, "run-a", 0);
    const monitor = start(["monitor", "--refresh", "600", "--store", store]);
    const blocks = () => (monitor.out.stdout.match(/^--- \d{4}-/gm) ?? []).length;
    await monitor.until("a first block", () => blocks() >= 1);
    await write(store, "run-b", 0);
    await monitor.until("a block showing run-b (a wake-up by the feed)", () =>
      monitor.out.stdout.includes("run-b"),
    );
    monitor.child.kill("SIGTERM");
    expect(await monitor.exited).toBe(0);
    expect(blocks()).toBeGreaterThanOrEqual(2);
  });
});

describe.skipIf(!postgresUp)("cairn watch while the store goes away", () => {
  it("reports the outage, retries, and prints what was written meanwhile once the store is back", {
    timeout: 60_000,
  }, async () => {
    const schema = uniqueName("cairn_cli_watch");
    const server = new URL(POSTGRES_URL);
    const proxy = await startProxy(server.hostname, Number(server.port));
    try {
      const direct = `${POSTGRES_URL}?schema=${schema}`;
      const proxied = new URL(POSTGRES_URL);
      proxied.port = String(proxy.port);
      const first = await write(direct, "run-a", 0);
      const watcher = start([
        "watch",
        "--json",
        "--from-start",
        "--store",
        `${proxied.href}?schema=${schema}`,
      ]);
      await watcher.linesAtLeast(1);
      await proxy.down();
      await watcher.until("an outage report", () => /retrying in \d+s/.test(watcher.out.stderr));
      const second = await write(direct, "run-a", 1);
      const third = await write(direct, "run-b", 0);
      await proxy.up();
      await watcher.linesAtLeast(3);
      watcher.child.kill("SIGTERM");
      expect(await watcher.exited).toBe(0);
      expect(watcher.json().map((l) => l.checkpointId)).toEqual([first, second, third]);
      expect(watcher.out.stderr).toContain("CAIRN_STORE_UNAVAILABLE");
    } finally {
      await proxy.close();
      await dropSchemas(schema);
    }
  });
});
