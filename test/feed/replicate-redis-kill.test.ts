/**
 * Source down during `--follow`: the source is a private `redis-server` (append-only file synced
 * on every write) that the test SIGKILLs while the replicator follows it, then starts again on
 * the same port and data folder. The replicator reports the outage, goes to `retrying` and keeps
 * running; once the server is back it catches up with what the writer wrote since (checkpoints,
 * a status change, a checkpoint deletion, a run deletion): the target equals the source, nothing
 * is corrupt or copied twice. The same when the kill lands in the first sync. The same through `cairn replicate --follow --json`, stopped by
 * SIGTERM with exit 0.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  compareStores,
  type ReplicationProblem,
  type ReplicationProgress,
  replicate,
} from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { CLI_PATH } from "../support/cli.js";
import { type PrivateRedis, redisServerMissing, startRedisServer } from "../support/redis-server.js";
import { expectSameRuns, until, writeRun, writeStage } from "../support/replica.js";
import { uniqueName } from "../support/services.js";

const missing = redisServerMissing();
if (missing) {
  if (process.env.CI)
    throw new Error(`CI needs a private redis-server for the replication tests: ${missing}`);
  console.warn(`\n⚠⚠⚠ SKIPPING replicate-with-redis-killed tests: ${missing} ⚠⚠⚠\n`);
}

const STAGES = ["stage1", "stage2", "stage3", "stage4", "stage5"];

let server: PrivateRedis | undefined;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-replicate-redis-kill-"));
  if (!missing) server = await startRedisServer({ persistent: true });
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});
const closing: { close(): Promise<void> }[] = [];
afterEach(async () => {
  // A test that failed half-way may have left the server down: the next one needs it.
  await server?.start().catch(() => undefined);
  await Promise.all(closing.splice(0).map((c) => c.close()));
});

/** Retries `fn` while the store is unavailable (its client reconnecting after the restart). */
async function whenAvailable<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if ((error as { code?: string }).code !== "CAIRN_STORE_UNAVAILABLE" || Date.now() > deadline)
        throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A fresh source on the private server (own key prefix) and a fresh sqlite target. */
function stores(label: string): { from: string; to: string } {
  const prefix = `${uniqueName(`cairn-${label}`)}:`;
  return {
    from: `${(server as PrivateRedis).url}?keyPrefix=${encodeURIComponent(prefix)}`,
    to: `sqlite:${join(dir, `${uniqueName(label)}.db`)}`,
  };
}

async function opened(url: string): Promise<CheckpointStore> {
  const store = await openStore(url);
  closing.push(store);
  return store;
}

/** Checkpoints of every run of a store, as listed. */
async function countCheckpoints(store: CheckpointStore): Promise<number> {
  let n = 0;
  for (const id of await store.listPipelineIds()) n += (await store.listCheckpoints(id)).length;
  return n;
}

/** True once the target holds exactly what the source holds (as stored). */
async function caughtUp(source: CheckpointStore, target: CheckpointStore): Promise<boolean> {
  try {
    await expectSameRuns(source, target);
    return true;
  } catch {
    return false;
  }
}

/**
 * Before the kill: runs `run-a` (3) and `run-b` (2), and 2 of the 5 stages of `run-stream`, which
 * the writer finishes after the restart. Returns the ids written so far, by run.
 */
async function writeBefore(writer: CheckpointManager): Promise<Record<string, string[]>> {
  const a = await writeRun(writer, "run-a", 3);
  const b = await writeRun(writer, "run-b", 2);
  const stream = [
    await writeStage(writer, "run-stream", STAGES, 0),
    await writeStage(writer, "run-stream", STAGES, 1),
  ];
  return { a, b, stream };
}

/**
 * After the restart: the rest of `run-stream`, a new run, a status change, a checkpoint deletion
 * and a run deletion. Returns how many checkpoints were written.
 */
async function writeAfter(writer: CheckpointManager, ids: Record<string, string[]>): Promise<number> {
  for (let i = 2; i < STAGES.length; i++)
    await whenAvailable(() => writeStage(writer, "run-stream", STAGES, i));
  await whenAvailable(() => writeRun(writer, "run-c", 2));
  await whenAvailable(() => writer.updateCheckpointStatus(ids.a?.[2] as string, "failed", "boom"));
  const store = await writer.getStore();
  await whenAvailable(() => store.deleteCheckpoints("run-a", [ids.a?.[0] as string]));
  await whenAvailable(() => store.deleteRun("run-b"));
  return STAGES.length - 2 + 2;
}

describe.skipIf(missing !== undefined)(
  "replicate --follow while the source redis-server is SIGKILLed",
  () => {
    it("reports the outage, retries, keeps running and catches up once it is back", {
      timeout: 90_000,
    }, async () => {
      const { from, to } = stores("kill-api");
      const writer = new CheckpointManager({ store: from });
      closing.push(writer);
      const ids = await writeBefore(writer);
      const problems: ReplicationProblem[] = [];
      const phases: ReplicationProgress["phase"][] = [];
      const controller = new AbortController();
      let settled = false;
      const running = replicate({
        from,
        to,
        follow: true,
        signal: controller.signal,
        onProblem: (p) => problems.push(p),
        onProgress: (p) => phases.push(p.phase),
      }).finally(() => {
        settled = true;
      });
      const source = await opened(from);
      const target = await opened(to);
      // Killed once the first sync is done and the replicator waits on the feed (mid-sync, the
      // sync starts over after the restart and copies the run as it is then: other counts).
      await until(async () => phases.includes("follow") && (await caughtUp(source, target)), 30_000);

      await (server as PrivateRedis).kill();
      await until(() => problems.filter((p) => p.kind === "outage").length >= 2, 30_000);
      expect(phases).toContain("retrying");
      expect(settled).toBe(false);

      await (server as PrivateRedis).start();
      const written = await writeAfter(writer, ids);
      await until(() => caughtUp(source, target), 30_000);
      expect(settled).toBe(false);
      controller.abort();
      const report = await running;

      await expectSameRuns(source, target);
      expect(await compareStores(from, to)).toMatchObject({ equal: true, runsCompared: 3 });
      expect(problems.every((p) => p.kind === "outage")).toBe(true);
      expect(report).toMatchObject({
        corrupt: [],
        diverged: [],
        statusesCopied: 1,
        checkpointsDeleted: 1,
        runsDeleted: 1,
      });
      // Each checkpoint copied once, the outage notwithstanding: 7 before the kill, `written` after.
      expect(report.checkpointsCopied).toBe(7 + written);
      expect(await countCheckpoints(target)).toBe(await countCheckpoints(source));
      const checker = new CheckpointManager({ store: to });
      closing.push(checker);
      const validations = await checker.validateAllRuns();
      expect(validations.map((v) => [v.pipelineId, v.valid])).toEqual([
        ["run-a", true],
        ["run-c", true],
        ["run-stream", true],
      ]);
    });

    it("killed during the first sync: the sync starts over once it is back, each checkpoint copied once", {
      timeout: 90_000,
    }, async () => {
      const { from, to } = stores("kill-sync");
      const writer = new CheckpointManager({ store: from });
      closing.push(writer);
      // More runs than the sync works on at a time (16), so most are still to come at the kill.
      const runs = Array.from({ length: 40 }, (_, i) => `run-${String(i).padStart(2, "0")}`);
      for (const id of runs) await writeRun(writer, id, 2);
      const target = await opened(to);
      // The target kills the source once it has imported its first run: mid-sync, for certain.
      let imported = 0;
      const killing = new Proxy(target, {
        get(store, key) {
          const value = Reflect.get(store, key, store);
          if (key === "importRun")
            return async (...args: Parameters<CheckpointStore["importRun"]>) => {
              const result = await store.importRun(...args);
              if (++imported === 1) await (server as PrivateRedis).kill();
              return result;
            };
          return typeof value === "function" ? value.bind(store) : value;
        },
      });
      const problems: ReplicationProblem[] = [];
      const controller = new AbortController();
      const running = replicate({
        from,
        to: killing,
        follow: true,
        signal: controller.signal,
        onProblem: (p) => problems.push(p),
      });
      await until(() => problems.some((p) => p.kind === "outage"), 30_000);
      await (server as PrivateRedis).start();
      await whenAvailable(() => writeRun(writer, "run-late", 2));
      const source = await opened(from);
      await until(() => caughtUp(source, target), 30_000);
      controller.abort();
      const report = await running;

      expect(problems.every((p) => p.kind === "outage")).toBe(true);
      // The interrupted sync and the one made after the restart.
      expect(report.syncs).toBe(2);
      expect(report).toMatchObject({ corrupt: [], diverged: [], checkpointsCopied: runs.length * 2 + 2 });
      expect(await compareStores(from, to)).toMatchObject({ equal: true, runsCompared: runs.length + 1 });
    });

    it("cairn replicate --follow --json: the outage as a problem line, then caught up; SIGTERM exits 0", {
      timeout: 90_000,
    }, async () => {
      const { from, to } = stores("kill-cli");
      const writer = new CheckpointManager({ store: from });
      closing.push(writer);
      const ids = await writeBefore(writer);
      const child: ChildProcess = spawn(
        process.execPath,
        [CLI_PATH, "replicate", "--from", from, "--to", to, "--follow", "--json"],
        {
          cwd: dir,
          env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined },
        },
      );
      let stdout = "";
      let stderr = "";
      child.stdout?.setEncoding("utf8").on("data", (d: string) => {
        stdout += d;
      });
      child.stderr?.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
      });
      const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
      closing.push({
        close: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        },
      });
      type Line = { type: string; kind?: string; phase?: string; behind?: number; [k: string]: unknown };
      const lines = (): Line[] =>
        stdout
          .split("\n")
          .filter((l) => l.trim() !== "")
          .map((l) => JSON.parse(l) as Line);
      const context = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
      const source = await opened(from);
      const target = await opened(to);
      const following = () => lines().some((l) => l.type === "progress" && l.phase === "follow");
      await until(async () => following() && (await caughtUp(source, target)), 30_000).catch((e) => {
        throw new Error(`${e}\n${context()}`);
      });

      await (server as PrivateRedis).kill();
      await until(() => lines().some((l) => l.type === "problem" && l.kind === "outage"), 30_000).catch(
        (e) => {
          throw new Error(`${e}\n${context()}`);
        },
      );
      expect(child.exitCode, context()).toBe(null);

      await (server as PrivateRedis).start();
      await writeAfter(writer, ids);
      await until(() => caughtUp(source, target), 30_000).catch((e) => {
        throw new Error(`${e}\n${context()}`);
      });
      // The last progress line comes after the outage and says nothing is behind.
      await until(() => {
        const all = lines();
        const lastProblem = all.findLastIndex((l) => l.type === "problem");
        const last = all.at(-1);
        return (
          all.length - 1 > lastProblem &&
          last?.type === "progress" &&
          last.phase === "follow" &&
          last.behind === 0
        );
      }, 30_000).catch((e) => {
        throw new Error(`${e}\n${context()}`);
      });
      child.kill("SIGTERM");
      expect(await exit, context()).toBe(0);

      const all = lines();
      const problems = all.filter((l) => l.type === "problem");
      expect(problems.length).toBeGreaterThanOrEqual(1);
      expect(
        problems.every((l) => l.kind === "outage"),
        context(),
      ).toBe(true);
      expect(all.some((l) => l.type === "progress" && l.phase === "retrying")).toBe(true);
      expect(all.at(-1)).toMatchObject({ type: "report", stopped: true, corrupt: [], diverged: [] });
      await expectSameRuns(source, target);
      expect(await compareStores(from, to)).toMatchObject({ equal: true });
      expect(await countCheckpoints(target)).toBe(await countCheckpoints(source));
    });
  },
);
