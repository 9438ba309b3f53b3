/**
 * `replicate` never empties a replica by mistake: the source is opened read-only (a mistyped
 * location is StoreNotFoundError and nothing is created), a source without a feed is compared in
 * full, and a full sync from a source holding no run deletes nothing on a populated target —
 * while deletions that come through the feed are still applied.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { StoreNotFoundError } from "../../src/core/errors.js";
import { CheckpointManager, type ReplicationProblem, replicate } from "../../src/index.js";
import { sharedMemoryStore } from "../../src/stores/memory/memory-store.js";
import { openStore } from "../../src/stores/registry.js";
import { freshStores } from "../support/fresh-stores.js";
import { runsWithCheckpoints, until, writeRun } from "../support/replica.js";
import { postgresUp, redisUp } from "../support/services.js";

const fresh = freshStores("repl-safety");

const managers: CheckpointManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

function manager(store: string): CheckpointManager {
  const m = new CheckpointManager({ store });
  managers.push(m);
  return m;
}

const tag = () => randomBytes(4).toString("hex");

/** A memory target holding two runs, and its URL. */
async function populatedTarget() {
  const name = `dst-${tag()}`;
  const m = manager(`memory:${name}`);
  await writeRun(m, "run-a", 2);
  await writeRun(m, "run-b", 1);
  return { to: `memory:${name}`, target: sharedMemoryStore(name) };
}

describe("replicate: a source that is not there", () => {
  for (const kind of ["file", "sqlite"] as const) {
    it(`a mistyped ${kind} source creates nothing and deletes nothing (StoreNotFoundError)`, async () => {
      const { to, target } = await populatedTarget();
      const path = join(fresh.dir(), `typo-${tag()}${kind === "sqlite" ? ".db" : ""}`);
      const problems: ReplicationProblem[] = [];
      const error = await replicate({
        from: `${kind}:${path}`,
        to,
        onProblem: (p) => problems.push(p),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreNotFoundError);
      expect((error as StoreNotFoundError).code).toBe("CAIRN_NOT_FOUND");
      expect(existsSync(path)).toBe(false);
      expect(await runsWithCheckpoints(target)).toEqual(["run-a", "run-b"]);
      expect(problems).toEqual([]);
    });
  }
  it.skipIf(!postgresUp)("a mistyped postgres schema creates nothing and deletes nothing", async () => {
    const { to, target } = await populatedTarget();
    const from = (fresh.postgres as () => string)();
    await expect(replicate({ from, to })).rejects.toBeInstanceOf(StoreNotFoundError);
    // Still no store there: a read-only look finds none either.
    const look = await openStore(from, { readOnly: true });
    try {
      await expect(look.listPipelineIds()).rejects.toBeInstanceOf(StoreNotFoundError);
    } finally {
      await look.close();
    }
    expect(await runsWithCheckpoints(target)).toEqual(["run-a", "run-b"]);
  });
});

describe("replicate: a source holding no run", () => {
  it.skipIf(!redisUp)(
    "an empty redis prefix deletes nothing on a populated target, and says so",
    async () => {
      const { to, target } = await populatedTarget();
      const from = (fresh.redis as () => string)();
      const problems: ReplicationProblem[] = [];
      const report = await replicate({ from, to, onProblem: (p) => problems.push(p) });
      expect(report).toMatchObject({ runsDeleted: 0, checkpointsDeleted: 0, syncs: 1, diverged: [] });
      expect(report.emptySource?.kind).toBe("empty-source");
      expect(report.emptySource?.message).toContain("nothing was deleted");
      // Read-only, the prefix has no feed: compared in full like a feedless source, reported once.
      expect(problems.map((p) => p.kind).sort()).toEqual(["empty-source", "no-feed"]);
      expect(await runsWithCheckpoints(target)).toEqual(["run-a", "run-b"]);

      // Following it: compared in full every pollMs, each problem reported once, nothing deleted.
      const stop = new AbortController();
      const seen: ReplicationProblem[] = [];
      let syncs = 0;
      let phase = "";
      const following = replicate({
        from,
        to,
        follow: true,
        pollMs: 20,
        signal: stop.signal,
        onProblem: (p) => seen.push(p),
        onProgress: (p) => {
          if (p.phase === "sync" && phase !== "sync") syncs++;
          phase = p.phase;
        },
      });
      await until(() => syncs >= 3);
      stop.abort();
      const followed = await following;
      expect(followed.syncs).toBeGreaterThanOrEqual(3);
      expect(followed.runsDeleted).toBe(0);
      expect(seen.map((p) => p.kind).sort()).toEqual(["empty-source", "no-feed"]);
      expect(await runsWithCheckpoints(target)).toEqual(["run-a", "run-b"]);

      // With keepDeleted nothing would be deleted anyway: no problem to report.
      const kept = await replicate({ from, to, keepDeleted: true });
      expect(kept.emptySource).toBeUndefined();
      expect(await runsWithCheckpoints(target)).toEqual(["run-a", "run-b"]);
    },
  );

  it("an empty memory source (a full sync) deletes nothing, with or without a run filter", async () => {
    const { to, target } = await populatedTarget();
    const from = `memory:src-${tag()}`;
    const first = await replicate({ from, to });
    expect(first.runsDeleted).toBe(0);
    expect(first.emptySource?.message).toContain("nothing was deleted on the target");
    // No cursor saved after a refused sync: the next call compares again, and reports again.
    const again = await replicate({ from, to });
    expect(again).toMatchObject({ runsDeleted: 0, syncs: 1, emptySource: { kind: "empty-source" } });
    expect(again.cursor).toBeUndefined();
    const filtered = await replicate({ from, to, pipelineId: "run-b" });
    expect(filtered).toMatchObject({ runsDeleted: 0, checkpointsDeleted: 0 });
    expect(await runsWithCheckpoints(target)).toEqual(["run-a", "run-b"]);
  });

  it("a source whose every run was deleted through the feed still replicates the deletions", async () => {
    const t = tag();
    const from = `memory:src-${t}`;
    const to = `memory:dst-${t}`;
    const m = manager(from);
    await writeRun(m, "run-a", 2);
    await writeRun(m, "run-b", 1);
    expect(await replicate({ from, to })).toMatchObject({ checkpointsCopied: 3, syncs: 1 });
    const source = await m.getStore();
    await source.deleteRun("run-a");
    await source.deleteRun("run-b");
    const second = await replicate({ from, to });
    expect(second).toMatchObject({ syncs: 0, runsDeleted: 2 });
    expect(second.emptySource).toBeUndefined();
    expect(await runsWithCheckpoints(sharedMemoryStore(`dst-${t}`))).toEqual([]);
  });
});

describe("replicate: a read-only source without a feed", () => {
  it("a sqlite database from before the feed is compared in full, and left as it is", async () => {
    const golden = fileURLToPath(new URL("../fixtures/golden/v1/sqlite/cairn.db", import.meta.url));
    const dbPath = join(fresh.dir(), `old-${tag()}.db`);
    await copyFile(golden, dbPath);
    const to = `memory:dst-${tag()}`;
    const problems: ReplicationProblem[] = [];
    const report = await replicate({ from: `sqlite:${dbPath}`, to, onProblem: (p) => problems.push(p) });
    const noFeed = problems.filter((p) => p.kind === "no-feed");
    expect(noFeed).toHaveLength(1);
    expect(noFeed[0]?.message).toContain("cairn migrate");
    // The fixture's deliberately corrupt runs are reported and skipped, as from any source.
    expect(new Set(report.corrupt.map((p) => p.pipelineId))).toEqual(
      new Set(["golden_corrupt", "golden_quarantined"]),
    );
    expect(problems.filter((p) => p.kind !== "no-feed" && p.kind !== "corrupt")).toEqual([]);
    expect(report).toMatchObject({ syncs: 1, diverged: [] });
    expect(report.cursor).toBeUndefined();
    expect(report.checkpointsCopied).toBeGreaterThan(0);
    expect(await runsWithCheckpoints(sharedMemoryStore(to.slice("memory:".length)))).toContain(
      "golden_completed",
    );
    // Read-only: not migrated behind the user's back.
    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'cairn_changes'").all()).toEqual([]);
    } finally {
      db.close();
    }
  });
});
