/**
 * The replicator SIGKILLed mid-stream, again and again, while a writer keeps writing, then run
 * to the end: the target equals the source, and every checkpoint was written to the target once
 * (the target's own feed, where it has one, records one `checkpoint` change per id).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { expectSameRuns, until, writeRun } from "../support/replica.js";

const RUNNER = fileURLToPath(new URL("./fixtures/replicate-runner.mjs", import.meta.url));

let dir: string;
const children = new Set<ChildProcess>();
const closing: { close(): Promise<void> }[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-replicate-kill-"));
});
afterEach(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  await Promise.all(closing.splice(0).map((c) => c.close()));
  await rm(dir, { recursive: true, force: true });
});

/** Starts the runner; resolves its lines as they come. */
function start(config: Record<string, unknown>) {
  const child = spawn(process.execPath, [RUNNER, JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const lines: Record<string, unknown>[] = [];
  let pending = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      lines.push(JSON.parse(pending.slice(0, nl)) as Record<string, unknown>);
      pending = pending.slice(nl + 1);
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  return { child, lines, exited, stderr: () => stderr };
}

async function checkpointCount(store: CheckpointStore): Promise<number> {
  let n = 0;
  for (const id of await store.listPipelineIds()) n += (await store.listCheckpoints(id)).length;
  return n;
}

async function kill(run: ReturnType<typeof start>): Promise<void> {
  run.child.kill("SIGKILL");
  await run.exited;
}

describe("replicate: SIGKILL and restart", () => {
  it("sqlite to sqlite: killed during the sync and while following, then run to the end", async () => {
    const from = `sqlite:${join(dir, "source.db")}`;
    const to = `sqlite:${join(dir, "target.db")}`;
    const writer = new CheckpointManager({ store: from });
    closing.push(writer);
    for (let i = 0; i < 12; i++) await writeRun(writer, `run-${i}`, 6);
    const target = await openStore(to);
    closing.push(target);

    const first = start({ from, to, follow: true });
    await until(async () => (await checkpointCount(target).catch(() => 0)) >= 12);
    await kill(first);

    const second = start({ from, to, follow: true });
    // Written while it catches up and follows.
    for (let i = 12; i < 18; i++) await writeRun(writer, `run-${i}`, 6);
    await until(async () => (await checkpointCount(target)) >= 80);
    await kill(second);
    for (let i = 18; i < 20; i++) await writeRun(writer, `run-${i}`, 3);

    const last = start({ from, to });
    await last.exited;
    const result = last.lines.find((l) => l.event === "result");
    expect(result, `${JSON.stringify(last.lines.slice(-3))} ${last.stderr()}`).toBeDefined();
    expect((result?.report as { corrupt: unknown[] } | undefined)?.corrupt).toEqual([]);
    const source = await openStore(from);
    closing.push(source);
    await expectSameRuns(source, target);
    if (target.readChanges) {
      const writes = new Map<string, number>();
      for (const change of await target.readChanges(undefined, 10_000))
        if (change.type === "checkpoint" && change.checkpointId)
          writes.set(change.checkpointId, (writes.get(change.checkpointId) ?? 0) + 1);
      expect(writes.size).toBe(18 * 6 + 2 * 3);
      expect([...writes.values()].every((n) => n === 1)).toBe(true);
    }
  });
});
