/**
 * `manager.upgrade` on every store: runs written in format 1 get one new checkpoint each in the
 * current format, chained to their old tip, with the tip's content, stage and status; the old
 * records and outputs stay as they are; a finished run stays finished and a failed one still
 * resumes and completes; a dry run and a second upgrade write nothing; a run in use or with a
 * tip that fails verification is skipped and reported.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, FORMAT_VERSION, Pipeline } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { STORE_KINDS } from "../support/at-rest-stores.js";
import { rewriteAsFormat1 } from "../support/old-format.js";
import { deleteKeyPrefixes, dropSchemas, POSTGRES_URL, REDIS_URL, uniqueName } from "../support/services.js";
import { type StorePlace, snapshot } from "../support/too-new.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-upgrade-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function open(kind: string): { place: StorePlace; spec: string | MemoryStore; close(): Promise<void> } {
  if (kind === "memory") {
    const instance = new MemoryStore({ name: uniqueName("upgrade") });
    return { place: { kind, instance }, spec: instance, close: async () => {} };
  }
  if (kind === "file") {
    const basePath = join(dir, "files");
    return { place: { kind, basePath }, spec: `file:${basePath}`, close: async () => {} };
  }
  if (kind === "sqlite") {
    const dbPath = join(dir, "c.db");
    return { place: { kind, dbPath }, spec: `sqlite:${dbPath}`, close: async () => {} };
  }
  if (kind === "postgres") {
    const schema = uniqueName("cairn_upgrade");
    return {
      place: { kind, schema },
      spec: `${POSTGRES_URL}?schema=${schema}`,
      close: () => dropSchemas(schema),
    };
  }
  const prefix = `${uniqueName("cairn-upgrade")}:`;
  return {
    place: { kind: "redis", prefix },
    spec: `${REDIS_URL}?keyPrefix=${encodeURIComponent(prefix)}`,
    close: () => deleteKeyPrefixes(prefix),
  };
}

/** `demo`: stages a, b, c; c fails while `failing.on`; every agent call is recorded. */
function demo(manager: CheckpointManager, calls: string[], failing: { on: boolean }) {
  const stage = (name: string) => () => {
    calls.push(name);
    if (name === "c" && failing.on) throw new Error("c is down");
    return { stage: name, rows: [1, 2, 3] };
  };
  return new Pipeline({
    name: "demo",
    checkpointEnabled: true,
    checkpointStore: manager,
    autoResume: false,
    steps: ["a", "b", "c"].map((name) => ({ name, agent: stage(name) })),
  });
}

const ids = (listing: Awaited<ReturnType<CheckpointManager["listRun"]>>) =>
  listing.map((e) => (e.ok ? e.metadata.checkpoint_id : "?"));

describe.skipIf(FORMAT_VERSION < 2).each(STORE_KINDS)("upgrade on the %s store", (kind) => {
  it("writes one current checkpoint per old run, chained to its tip; resumes and completes after", async () => {
    const opened = open(kind);
    const manager = new CheckpointManager({ store: opened.spec });
    try {
      const finished = (await demo(manager, [], { on: false }).execute()).pipelineId;
      const failed = demo(manager, [], { on: true });
      await expect(failed.execute()).rejects.toThrow("c is down");
      const failedId = failed.pipelineId as string;
      const oldFinished = await rewriteAsFormat1(manager, finished);
      const oldFailed = await rewriteAsFormat1(manager, failedId);
      const outputsBefore = {
        [finished]: await (await manager.getStore()).listOutputHashes(finished),
        [failedId]: await (await manager.getStore()).listOutputHashes(failedId),
      };

      const before = await snapshot(opened.place);
      const dry = await manager.upgrade({ all: true }, { dryRun: true });
      expect(dry.upgraded.map((u) => u.pipelineId).sort()).toEqual([failedId, finished].sort());
      expect(dry.upgraded.every((u) => u.checkpointId === undefined && u.fromVersion === 1)).toBe(true);
      expect(await snapshot(opened.place)).toEqual(before);

      const progress: [number, number][] = [];
      const report = await manager.upgrade({ all: true }, { onProgress: (d, t) => progress.push([d, t]) });
      expect(report).toMatchObject({
        dryRun: false,
        formatVersion: FORMAT_VERSION,
        runs: 2,
        current: [],
        skipped: [],
      });
      expect(progress.at(-1)).toEqual([2, 2]);
      for (const [pipelineId, old] of [
        [finished, oldFinished],
        [failedId, oldFailed],
      ] as const) {
        const tip = old.at(-1)?.metadata;
        const listing = await manager.listRun(pipelineId);
        // The old records are all kept, as stored; one new checkpoint follows them.
        expect(ids(listing).slice(0, -1)).toEqual(old.map((r) => r.metadata.checkpoint_id));
        const store = await manager.getStore();
        for (const record of old)
          expect(await store.getCheckpoint(record.metadata.checkpoint_id)).toEqual(record);
        const added = listing.at(-1);
        const newId = added?.ok ? added.metadata.checkpoint_id : "";
        expect(report.upgraded).toContainEqual({
          pipelineId,
          fromCheckpointId: tip?.checkpoint_id,
          fromVersion: 1,
          checkpointId: newId,
        });
        expect(added?.ok && added.metadata).toMatchObject({
          format_version: FORMAT_VERSION,
          parent_checkpoint_id: tip?.checkpoint_id,
          parent_checksum: tip?.checksum,
          stage_name: tip?.stage_name,
          stage_index: tip?.stage_index,
          status: tip?.status,
        });
        const copy = await manager.loadCheckpoint(newId);
        const original = await manager.loadCheckpoint(tip?.checkpoint_id as string);
        expect(copy.stateData).toEqual(original.stateData);
        expect(copy.completedStages).toEqual(original.completedStages);
        expect(copy.pendingStages).toEqual(original.pendingStages);
        expect(copy.provenanceHashes).toEqual(original.provenanceHashes);
        expect({ ...copy.agentOutputs }).toEqual({ ...original.agentOutputs });
        // The format-2 fields, as the upcast of a format-1 record fills them in.
        expect(copy.pipelineVersion).toBeUndefined();
        expect(copy.outputVersions).toEqual(original.outputVersions);
        expect(Object.values(copy.outputVersions).every((v) => v === 1)).toBe(true);
        expect(Object.keys(copy.outputVersions).sort()).toEqual(Object.keys(copy.agentOutputs).sort());
        expect(copy.outputMigrations).toEqual({});
        // Every output is referenced by its address: nothing new was stored.
        expect(await store.listOutputHashes(pipelineId)).toEqual(outputsBefore[pipelineId]);
        const validation = await manager.validateRun(pipelineId);
        expect(validation.valid, JSON.stringify(validation.checkpoints)).toBe(true);
      }
      expect((await manager.getRunInfo(finished))?.finished).toBe(true);

      // Nothing left to do: a second upgrade writes nothing at all.
      const after = await snapshot(opened.place);
      const again = await manager.upgrade({ all: true });
      expect(again).toMatchObject({ upgraded: [], skipped: [], runs: 2 });
      expect(again.current.sort()).toEqual([failedId, finished].sort());
      expect(await snapshot(opened.place)).toEqual(after);

      // The finished run stays finished; the failed one resumes from the new checkpoint and completes.
      const calls: string[] = [];
      expect((await demo(manager, calls, { on: false }).execute({ runId: finished })).alreadyComplete).toBe(
        true,
      );
      const resumed = await demo(manager, calls, { on: false }).execute({ runId: failedId });
      expect(resumed.status).toBe("completed");
      expect(resumed.skippedStages).toEqual(["a", "b"]);
      expect(calls).toEqual(["c"]);
      expect((await manager.validateRun(failedId)).valid).toBe(true);
    } finally {
      await manager.close();
      await opened.close();
    }
  });

  it("skips a run in use and a run whose tip fails verification, and reports both", async () => {
    const opened = open(kind);
    const manager = new CheckpointManager({ store: opened.spec });
    try {
      const busy = (await demo(manager, [], { on: false }).execute()).pipelineId;
      const broken = (await demo(manager, [], { on: false }).execute()).pipelineId;
      await rewriteAsFormat1(manager, busy);
      await rewriteAsFormat1(manager, broken, { corruptTip: true });
      const store = await manager.getStore();
      const attempt = await store.acquireLease(busy, "someone-else", 60_000);
      expect(attempt.acquired).toBe(true);
      const before = await snapshot(opened.place);
      const report = await manager.upgrade({ all: true });
      expect(report.upgraded).toEqual([]);
      expect(report.skipped).toContainEqual({
        pipelineId: busy,
        kind: "in_use",
        reason: expect.stringContaining("someone-else"),
      });
      expect(report.skipped).toContainEqual({
        pipelineId: broken,
        kind: "corrupt",
        reason: expect.stringContaining("fails verification"),
      });
      expect(await snapshot(opened.place)).toEqual(before);
      if (attempt.acquired) await store.releaseLease(attempt.lease);
      const one = await manager.upgrade({ pipelineId: busy });
      expect(one.upgraded.map((u) => u.pipelineId)).toEqual([busy]);
      await expect(manager.upgrade({ pipelineId: "no-such-run" })).rejects.toMatchObject({
        code: "CAIRN_NOT_FOUND",
      });
    } finally {
      await manager.close();
      await opened.close();
    }
  });

  it("ends the lease a killed upgrade of this host left, instead of skipping its run", async () => {
    const opened = open(kind);
    const manager = new CheckpointManager({ store: opened.spec });
    try {
      const run = (await demo(manager, [], { on: false }).execute()).pipelineId;
      await rewriteAsFormat1(manager, run);
      const store = await manager.getStore();
      // No process has this pid (above any pid_max), so the holder is known to be gone.
      const dead = `cairn-upgrade:${hostname()}:4194305:0badc0de`;
      expect((await store.acquireLease(run, dead, 60_000)).acquired).toBe(true);
      const report = await manager.upgrade({ pipelineId: run });
      expect(report.skipped).toEqual([]);
      expect(report.upgraded.map((u) => u.pipelineId)).toEqual([run]);
    } finally {
      await manager.close();
      await opened.close();
    }
  });
});
