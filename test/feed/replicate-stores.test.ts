/**
 * `replicate` across store kinds and through outages: sqlite and file sources (with or without a
 * feed), an object store as the target (its cursor in `meta/`), and a source that goes away
 * while the replicator follows it (reported, retried with backoff, caught up, nothing skipped).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import {
  CheckpointManager,
  type ReplicationProblem,
  type ReplicationProgress,
  replicate,
} from "../../src/index.js";
import { MemoryStore, sharedMemoryStore } from "../../src/stores/memory/memory-store.js";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { expectSameRuns, until, writeRun } from "../support/replica.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-replicate-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const managers: CheckpointManager[] = [];
const stores: CheckpointStore[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function manager(store: string | CheckpointStore): CheckpointManager {
  const m = new CheckpointManager({ store });
  managers.push(m);
  return m;
}

async function opened(url: string): Promise<CheckpointStore> {
  const store = await openStore(url);
  stores.push(store);
  return store;
}

const tag = () => randomBytes(4).toString("hex");

/** A store that throws `StoreUnavailableError` from every call while `down` is set. */
function flaky(inner: MemoryStore): { store: CheckpointStore; setDown(down: boolean): void } {
  let down = false;
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || property === "setup" || property === "close") return value;
      return (...args: unknown[]) =>
        down
          ? Promise.reject(new StoreUnavailableError("memory", "the test took it down"))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return { store, setDown: (value) => (down = value) };
}

describe("replicate across stores", () => {
  it("sqlite to memory: copies everything; a second pass (feed or full compare) converges", async () => {
    const from = `sqlite:${join(dir, `${tag()}.db`)}`;
    const to = `memory:dst-${tag()}`;
    const m = manager(from);
    const ids = await writeRun(m, "run-a", 3);
    await writeRun(m, "run-b", 2);
    const first = await replicate({ from, to });
    expect(first).toMatchObject({ checkpointsCopied: 5, corrupt: [] });
    const source = await opened(from);
    const target = await opened(to);
    await expectSameRuns(source, target);
    await m.updateCheckpointStatus(ids[1] as string, "failed", "later");
    await (await m.getStore()).deleteRun("run-b");
    await writeRun(m, "run-c", 2);
    const second = await replicate({ from, to });
    expect(second).toMatchObject({ checkpointsCopied: 2, statusesCopied: 1, runsDeleted: 1 });
    await expectSameRuns(source, target);
  });

  it("a checkpoint the source can no longer parse stays on the replica (its copy may be the only good one)", async () => {
    const path = join(dir, `${tag()}.db`);
    const from = `sqlite:${path}`;
    const target = new MemoryStore();
    const ids = await writeRun(manager(from), "run-c", 3);
    await replicate({ from, to: target });
    const db = new Database(path);
    db.prepare("UPDATE cairn_checkpoints SET status = 'bogus' WHERE checkpoint_id = ?").run(ids[1]);
    db.close();
    // A full compare (a new replication: its own cursor) sees the unparseable entry.
    const report = await replicate({ from, to: target, pipelineId: "run-c" });
    expect(report.corrupt.map((p) => p.pipelineId)).toEqual(["run-c"]);
    expect(report.checkpointsDeleted).toBe(0);
    expect(await target.getCheckpoint(ids[1] as string)).toBeDefined();
    expect(await target.listCheckpoints("run-c")).toHaveLength(3);
  });

  it("file to an object store: the object store keeps the cursor (meta/), a restart continues", async () => {
    const from = `file:${join(dir, `files-${tag()}`)}`;
    const objects = new MemoryObjects();
    const target = new ObjectStore({ strategy: "memobj", client: objects });
    const m = manager(from);
    await writeRun(m, "run-o", 3);
    expect(await replicate({ from, to: target })).toMatchObject({ checkpointsCopied: 3 });
    expect(objects.keys("meta/")).toHaveLength(1);
    const source = await opened(from);
    await expectSameRuns(source, target);
    await writeRun(m, "run-p", 2);
    expect(await replicate({ from, to: target })).toMatchObject({ checkpointsCopied: 2 });
    await expectSameRuns(source, target);
  });

  it("an object store as the source (no feed): follow compares in full every pollMs", async () => {
    const objects = new MemoryObjects();
    const source = new ObjectStore({ strategy: "memobj", client: objects });
    const target = new MemoryStore();
    const m = manager(source);
    await writeRun(m, "run-1", 2);
    const controller = new AbortController();
    const running = replicate({
      from: source,
      to: target,
      follow: true,
      pollMs: 50,
      signal: controller.signal,
    });
    await until(async () => (await target.listCheckpoints("run-1")).length === 2);
    await writeRun(m, "run-2", 2);
    await until(async () => (await target.listCheckpoints("run-2")).length === 2);
    controller.abort();
    const report = await running;
    expect(report.syncs).toBeGreaterThanOrEqual(2);
    expect(report.cursor).toBeUndefined();
    await expectSameRuns(source, target);
  });

  it("a source that goes away while following: reported, retried with backoff, caught up", async () => {
    const inner = sharedMemoryStore(`flaky-${tag()}`);
    const { store: source, setDown } = flaky(inner);
    const target = new MemoryStore();
    const m = manager(inner);
    await writeRun(m, "run-before", 2);
    const problems: ReplicationProblem[] = [];
    const phases: ReplicationProgress["phase"][] = [];
    const controller = new AbortController();
    const running = replicate({
      from: source,
      to: target,
      follow: true,
      signal: controller.signal,
      onProblem: (p) => problems.push(p),
      onProgress: (p) => phases.push(p.phase),
    });
    await until(async () => (await target.listCheckpoints("run-before")).length === 2);
    setDown(true);
    // Written while the replicator cannot reach the source.
    await writeRun(m, "run-during", 3);
    await until(() => problems.filter((p) => p.kind === "outage").length >= 3);
    setDown(false);
    await until(async () => (await target.listCheckpoints("run-during")).length === 3);
    controller.abort();
    const report = await running;
    expect(phases).toContain("retrying");
    expect(problems.every((p) => p.kind === "outage")).toBe(true);
    expect(problems[0]?.message).toMatch(/the test took it down; retrying in 250 ms/);
    expect(problems[1]?.message).toMatch(/retrying in 500 ms/);
    expect(report.checkpointsCopied).toBe(5);
    await expectSameRuns(inner, target);
  });

  it("a target that goes away while following: nothing is skipped", async () => {
    const source = sharedMemoryStore(`src-${tag()}`);
    const inner = new MemoryStore();
    const { store: target, setDown } = flaky(inner);
    const m = manager(source);
    const controller = new AbortController();
    const problems: ReplicationProblem[] = [];
    const running = replicate({
      from: source,
      to: target,
      follow: true,
      signal: controller.signal,
      onProblem: (p) => problems.push(p),
    });
    await writeRun(m, "run-1", 1);
    await until(async () => (await inner.listCheckpoints("run-1")).length === 1);
    setDown(true);
    await writeRun(m, "run-2", 4);
    await until(() => problems.length >= 2);
    setDown(false);
    await until(async () => (await inner.listCheckpoints("run-2")).length === 4);
    controller.abort();
    await running;
    await expectSameRuns(source, inner);
  });

  it("without follow, an outage is the caller's error (nothing half-saved)", async () => {
    const inner = sharedMemoryStore(`down-${tag()}`);
    const { store: source, setDown } = flaky(inner);
    await writeRun(manager(inner), "run-x", 1);
    setDown(true);
    await expect(replicate({ from: source, to: new MemoryStore() })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });
});
