/**
 * Reading records of older formats: a synthetic format 0 registered below the real 1 and 2
 * proves the upcaster chain (order, each step once), checksums by the old format's rule, and that
 * an upcast record validates, exports, imports elsewhere and resumes a Pipeline run; a real
 * format 1 record (an export cairn 1.x wrote) loads with default versions.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/codec.js";
import {
  bodyText,
  computeChecksum,
  FORMAT_V1,
  FORMAT_V2,
  parseJsonBody,
  type RecordFormat,
  readBody,
  type StoredBody,
  useRecordFormats,
} from "../../src/core/formats.js";
import type { CheckpointRecord, StoredMetadata } from "../../src/core/record.js";
import { CheckpointManager, FORMAT_VERSION, Pipeline, StageFailedError } from "../../src/index.js";
import { Readdresser } from "../../src/manager/readdress.js";
import { rawStore } from "../../src/manager/sealed-transfer.js";
import { inspectRecord, type VerifiedRecord } from "../../src/manager/verify.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures");

/** Every upcaster call, in order, with the fields of the body it was given. */
let calls: { step: string; fields: string[] }[] = [];

/** Format 0's checksum rule: like format 1's, but without `parent_checksum` and with `|`. */
function v0Checksum(m: StoredMetadata, body: string): string {
  const { checksum: _c, status: _s, error_message: _e, resume_count: _r, parent_checksum: _p, ...header } = m;
  return createHash("sha256")
    .update(`${canonicalJson(header)}|${body}`)
    .digest("hex");
}

/** A synthetic format 0: `stages_done` for `completed_stages`, its own checksum rule. */
const V0: RecordFormat = {
  version: 0,
  description: "synthetic, for tests: stages_done, checksum without parent_checksum",
  checksum: v0Checksum,
  parseBody(checkpointId, text) {
    const body = parseJsonBody(checkpointId, text);
    if (!Array.isArray(body.stages_done) || "completed_stages" in body)
      throw new Error(`checkpoint ${checkpointId} is not a format 0 body`);
    return body;
  },
  fields: ["pending_stages", "provenance_hashes", "stages_done"],
  upcast(body) {
    calls.push({ step: "0→1", fields: Object.keys(body).sort() });
    const { stages_done, ...rest } = body;
    return { ...rest, completed_stages: stages_done };
  },
};

/** Format 1 with its real upcaster, traced. */
const V1_TRACED: RecordFormat = {
  ...FORMAT_V1,
  upcast(body, metadata) {
    calls.push({ step: "1→2", fields: Object.keys(body).sort() });
    return (FORMAT_V1.upcast as NonNullable<RecordFormat["upcast"]>)(body, metadata);
  },
};

/** The body of a current record rewritten in an older format (0 or 1), as that format stored it. */
function olderBody(current: StoredBody, version: 0 | 1): string {
  const { pipeline_version: _pv, output_versions: _ov, output_migrations: _om, ...v1 } = current;
  if (version === 1) return bodyText(v1, canonicalJson(v1.state_data));
  const { completed_stages, ...rest } = v1;
  return bodyText({ ...rest, stages_done: completed_stages }, canonicalJson(v1.state_data));
}

/** A run's records rewritten in an older format, the chain re-linked by that format's checksums. */
function downgrade(records: readonly CheckpointRecord[], version: 0 | 1): CheckpointRecord[] {
  const checksums = new Map<string, string>();
  return records.map(({ metadata, body }) => {
    const text = olderBody(readBody(metadata, body).stored, version);
    const parent = metadata.parent_checkpoint_id;
    const m: StoredMetadata = {
      ...metadata,
      format_version: version,
      data_size: metadata.data_size,
      parent_checksum: parent === null ? null : (checksums.get(parent) ?? metadata.parent_checksum),
    };
    m.checksum = version === 0 ? v0Checksum(m, text) : computeChecksum(m, text);
    checksums.set(m.checkpoint_id, m.checksum);
    return { metadata: m, body: text };
  });
}

/** A three-stage pipeline; `failLoad` makes its last stage throw. */
function etl(manager: CheckpointManager, ran: string[], failLoad = false) {
  return new Pipeline({
    name: "etl",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      {
        name: "extract",
        agent: () => {
          ran.push("extract");
          return { rows: [1, 2, 3] };
        },
      },
      {
        name: "transform",
        agent: (inputs) => {
          ran.push("transform");
          return { doubled: (inputs.rows as number[]).map((r) => r * 2) };
        },
        inputs: { rows: "$extract.rows" },
      },
      {
        name: "load",
        agent: (inputs) => {
          ran.push("load");
          if (failLoad) throw new Error("load broke");
          return { sum: (inputs.doubled as number[]).reduce((a, b) => a + b, 0) };
        },
        inputs: { doubled: "$transform.doubled" },
      },
    ],
  });
}

/**
 * Runs etl until its load fails (in a scratch store), rewrites the run in `version` and stores it
 * in `manager`'s store as a run an older cairn wrote; returns its records.
 */
async function oldRun(manager: CheckpointManager, version: 0 | 1) {
  const scratch = new CheckpointManager({ strategy: "memory" });
  const error = await etl(scratch, [], true)
    .execute({ runId: "old" })
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StageFailedError);
  const from = rawStore(await scratch.getStore());
  const records: CheckpointRecord[] = [];
  for (const entry of await from.listCheckpoints("old")) {
    if (!entry.ok) throw new Error("unreadable entry");
    records.push((await from.getCheckpoint(entry.metadata.checkpoint_id)) as CheckpointRecord);
  }
  const older = downgrade(records, version);
  const hashes = await from.listOutputHashes("old");
  const outputs = [...(await from.getOutputs("old", hashes))].map(([hash, body]) => ({ hash, body }));
  await rawStore(await manager.getStore()).importRun(
    "old",
    older.map((record, i) => ({ record, outputs: i === 0 ? outputs : [] })),
    { replace: false },
  );
  await scratch.close();
  return older;
}

let dir: string;
let restore: () => void;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-upcast-"));
  calls = [];
  restore = useRecordFormats([V0, V1_TRACED, FORMAT_V2]);
});
afterEach(async () => {
  restore();
  await rm(dir, { recursive: true, force: true });
});

describe("a synthetic format 0 below the real formats", () => {
  it("applies the upcasters in order, each once, each on the previous one's output", () => {
    const metadata = { checkpoint_id: "x", format_version: 0 } as StoredMetadata;
    const text = bodyText(
      { output_refs: { a: "h".repeat(64) }, pending_stages: [], provenance_hashes: {}, stages_done: ["a"] },
      "{}",
    );
    const { stored, current } = readBody(metadata, text);
    expect(stored.stages_done).toEqual(["a"]);
    expect(calls).toEqual([
      {
        step: "0→1",
        fields: ["output_refs", "pending_stages", "provenance_hashes", "stages_done", "state_data"],
      },
      {
        step: "1→2",
        fields: ["completed_stages", "output_refs", "pending_stages", "provenance_hashes", "state_data"],
      },
    ]);
    expect(current).toStrictEqual({
      completed_stages: ["a"],
      output_refs: { a: "h".repeat(64) },
      pending_stages: [],
      provenance_hashes: {},
      state_data: {},
      pipeline_version: null,
      output_versions: { a: 1 },
      output_migrations: {},
    });
    // A format 1 record takes only the second step.
    calls = [];
    const v1 = { checkpoint_id: "y", format_version: 1 } as StoredMetadata;
    readBody(v1, olderBody(current as unknown as StoredBody, 1));
    expect(calls.map((c) => c.step)).toEqual(["1→2"]);
  });

  it("validates and loads a format 0 run by format 0's checksum, upcast in memory, stored as it was", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const older = await oldRun(manager, 0);
    const store = rawStore(await manager.getStore());
    for (const record of older) {
      calls = [];
      const result = await manager.validateCheckpoint(record.metadata.checkpoint_id);
      expect(result).toMatchObject({ valid: true, problems: [] });
      expect(calls.map((c) => c.step)).toEqual(["0→1", "1→2"]);
    }
    expect((await manager.validateRun("old")).valid).toBe(true);
    const failed = older.at(-1) as CheckpointRecord;
    const loaded = await manager.loadCheckpoint(failed.metadata.checkpoint_id);
    expect(loaded.metadata.formatVersion).toBe(0);
    expect(loaded.completedStages).toEqual(["extract", "transform"]);
    expect(loaded.pendingStages).toEqual(["load"]);
    expect(loaded.outputVersions).toEqual({ extract: 1, transform: 1 });
    expect(loaded.pipelineVersion).toBeUndefined();
    expect(loaded.outputMigrations).toEqual({});
    expect(loaded.agentOutputs.transform).toEqual({ doubled: [2, 4, 6] });
    // Reading never rewrote the store.
    const stored = await store.getCheckpoint(failed.metadata.checkpoint_id);
    expect(stored?.body).toBe(failed.body);
    expect(stored?.metadata.checksum).toBe(failed.metadata.checksum);
  });

  it("calls a format 0 record corrupt when its format 0 checksum is wrong, or it only passes format 2's rule", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const older = await oldRun(manager, 0);
    const store = rawStore(await manager.getStore());
    const hashes = await store.listOutputHashes("old");
    const outputs = [...(await store.getOutputs("old", hashes))].map(([hash, body]) => ({ hash, body }));
    const first = older[0] as CheckpointRecord;
    const changed = first.body.replace('"stages_done":["extract"]', '"stages_done":["extract","x"]');
    expect(changed).not.toBe(first.body);
    for (const name of ["wrong", "v2rule"] as const) {
      const m = { ...first.metadata, pipeline_id: `bad-${name}`, checkpoint_id: `bad-${name}_1` };
      // wrong: content changed after its format 0 checksum; v2rule: checksummed by the newer rule.
      m.checksum = name === "wrong" ? v0Checksum(m, first.body) : computeChecksum(m, first.body);
      const body = name === "wrong" ? changed : first.body;
      expect(m.checksum).not.toBe(v0Checksum(m, body));
      await store.putCheckpoint({ metadata: m, body }, outputs);
      const result = await manager.validateCheckpoint(m.checkpoint_id);
      expect(result.valid, name).toBe(false);
      expect(result.problems.map((p) => p.kind)).toEqual(["checksum_mismatch"]);
      await expect(manager.loadCheckpoint(m.checkpoint_id)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    }
  });

  it("calls a format 0 record corrupt (not too new) once no registered format reads it", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const older = await oldRun(manager, 0);
    restore();
    restore = () => undefined;
    const id = (older[0] as CheckpointRecord).metadata.checkpoint_id;
    const error = await manager.loadCheckpoint(id).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CAIRN_CORRUPT" });
    expect((error as Error).message).toContain("format version 0 is not one this cairn knows");
    expect((await manager.validateCheckpoint(id)).valid).toBe(false);
  });

  it("exports a format 0 run as stored; the export imports into another store and validates there", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const older = await oldRun(manager, 0);
    const runFile = join(dir, "old.export");
    await manager.exportPipeline("old", runFile);
    const one = older.at(-1) as CheckpointRecord;
    const oneFile = join(dir, "one.export");
    await manager.exportCheckpoint(one.metadata.checkpoint_id, oneFile);

    const other = new CheckpointManager({ store: `sqlite:${join(dir, "other.db")}` });
    const third = new CheckpointManager({ strategy: "file", config: { basePath: join(dir, "files") } });
    try {
      await other.importPipeline(runFile);
      expect((await other.validateRun("old")).valid).toBe(true);
      await third.importCheckpoint(oneFile);
      expect((await third.validateCheckpoint(one.metadata.checkpoint_id)).valid).toBe(true);
      for (const target of [other, third]) {
        const stored = await rawStore(await target.getStore()).getCheckpoint(one.metadata.checkpoint_id);
        // The record moved as it was stored: format 0, its format 0 checksum, its exact body.
        expect(stored?.metadata).toMatchObject({ format_version: 0, checksum: one.metadata.checksum });
        expect(stored?.body).toBe(one.body);
        const loaded = await target.loadCheckpoint(one.metadata.checkpoint_id);
        expect(loaded.completedStages).toEqual(["extract", "transform"]);
        expect(loaded.outputVersions).toEqual({ extract: 1, transform: 1 });
      }
    } finally {
      await other.close();
      await third.close();
    }
  });

  it("resumes a Pipeline run from it: finished stages are not run again, the new checkpoints are current", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const older = await oldRun(manager, 0);
    const ran: string[] = [];
    const results = await etl(manager, ran).execute({ runId: "old" });
    expect(ran).toEqual(["load"]);
    expect(results.skippedStages).toEqual(["extract", "transform"]);
    expect(results.resumedFrom).toBe(older.at(-1)?.metadata.checkpoint_id);
    expect(results.finalOutputs.load).toEqual({ sum: 12 });
    const history = await manager.getCheckpointHistory("old");
    expect(history.map((m) => m.formatVersion)).toEqual([FORMAT_VERSION, FORMAT_VERSION, 0, 0, 0]);
    // The hash chain continues from the format 0 records.
    expect((await manager.validateRun("old")).valid).toBe(true);
    const newest = await manager.loadLatestCheckpoint("old");
    expect(newest?.outputVersions).toEqual({ extract: 1, transform: 1, load: 1 });
  });

  it("re-addresses a format 0 record (decrypted exports) in format 0, by format 0's checksum", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const older = await oldRun(manager, 0);
    const store = rawStore(await manager.getStore());
    const first = older[0] as CheckpointRecord;
    const { verified } = await inspectRecord(store, first);
    expect(verified).toBeDefined();
    // As an encrypted run holds it: the output under another address than its SHA-256.
    const { stored, outputs } = verified as VerifiedRecord;
    const [[sha, text]] = [...outputs] as [[string, string]];
    const keyed = "f".repeat(64);
    const refs = { extract: keyed };
    const keyedText = bodyText({ ...stored, output_refs: refs }, canonicalJson(stored.state_data));
    const keyedRecord = { metadata: { ...first.metadata }, body: keyedText };
    keyedRecord.metadata.checksum = v0Checksum(keyedRecord.metadata, keyedText);
    const asKeyed: VerifiedRecord = {
      record: keyedRecord,
      body: { ...(verified as VerifiedRecord).body, output_refs: refs },
      stored: { ...stored, output_refs: refs },
      outputs: new Map([[keyed, text]]),
    };
    const again = new Readdresser().readdress(asKeyed);
    expect(again.record.metadata.format_version).toBe(0);
    expect(again.record.body).toBe(first.body);
    expect(again.record.metadata.checksum).toBe(first.metadata.checksum);
    expect(again.stored.output_refs).toEqual({ extract: sha });
    const check = await inspectRecord(store, again.record);
    expect(check.problems).toEqual([]);
  });
});

describe("a real format 1 record", () => {
  it("loads from an export cairn 1.x wrote with every output at version 1 and no pipeline version", async () => {
    restore();
    restore = () => undefined;
    const manager = new CheckpointManager({ strategy: "memory" });
    const report = await manager.importPipeline(join(FIXTURES, "run-v1.1.export"));
    expect(report).toMatchObject({ pipelineId: "etl_v11" });
    expect((await manager.validateRun("etl_v11")).valid).toBe(true);
    const newest = await manager.loadLatestCheckpoint("etl_v11");
    expect(newest?.metadata.formatVersion).toBe(1);
    expect(newest?.pipelineVersion).toBeUndefined();
    expect(newest?.outputMigrations).toEqual({});
    const stages = Object.keys(newest?.agentOutputs ?? {});
    expect(stages.length).toBeGreaterThan(0);
    expect(newest?.outputVersions).toEqual(Object.fromEntries(stages.map((s) => [s, 1])));
    const resumed = await manager.resumePipeline("etl_v11");
    expect(resumed).toMatchObject({ pipelineVersion: undefined, outputMigrations: {} });
    expect(resumed?.outputVersions).toEqual(newest?.outputVersions);
    // Exported again, it is still format 1 and imports into another store.
    const again = join(dir, "again.export");
    await manager.exportPipeline("etl_v11", again);
    const other = new CheckpointManager({ strategy: "memory" });
    await other.importPipeline(again);
    expect((await other.validateRun("etl_v11")).valid).toBe(true);
    const copy = await other.loadLatestCheckpoint("etl_v11");
    expect(copy?.metadata).toMatchObject({ formatVersion: 1, checksum: newest?.metadata.checksum });
  });

  it("resumes a Pipeline run written in format 1", async () => {
    restore();
    restore = () => undefined;
    const manager = new CheckpointManager({ strategy: "memory" });
    await oldRun(manager, 1);
    expect((await manager.validateRun("old")).valid).toBe(true);
    const ran: string[] = [];
    const results = await etl(manager, ran).execute({ runId: "old" });
    expect(ran).toEqual(["load"]);
    expect(results.finalOutputs.load).toEqual({ sum: 12 });
    expect((await manager.validateRun("old")).valid).toBe(true);
  });
});
