/**
 * The store conformance suite, part 1: the raw store contract. Every store runs it through
 * `describeStore` (see `suite.ts`); a third-party store can run it the same way.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { encode } from "../core/codec.js";
import { computeChecksum, sha256 } from "../core/record.js";
import { FORMAT_VERSION } from "../core/types.js";
import type { CheckpointRecord, CheckpointStore, OutputRecord } from "../index.js";
import { buildBody, EncodedOutput } from "../manager/build.js";
import type { StoreHarness } from "./suite.js";

let counter = 0;

/** A well-formed record for `pipelineId` with the given sequence; outputs by stage. */
export function makeRecord(
  pipelineId: string,
  sequence: number,
  options: {
    stage?: string;
    outputs?: Record<string, string>;
    timestamp?: string;
    id?: string;
    pipelineName?: string;
  } = {},
): { record: CheckpointRecord; outputs: OutputRecord[] } {
  const stage = options.stage ?? `stage${sequence}`;
  const outputs = Object.entries(options.outputs ?? {}).map(([, body]) => ({ hash: sha256(body), body }));
  const refs = Object.fromEntries(
    Object.entries(options.outputs ?? {}).map(([s, body]) => [s, sha256(body)]),
  );
  const body = buildBody({
    stateText: encode({ n: sequence }),
    completedStages: Object.keys(refs),
    pendingStages: [],
    provenanceHashes: {},
    outputs: new Map(
      Object.entries(options.outputs ?? {}).map(([s, text]) => [s, EncodedOutput.fromText(text)]),
    ),
  });
  counter++;
  const metadata = {
    checkpoint_id:
      options.id ?? `${pipelineId}_${stage}_20240101T000000000Z_${String(counter).padStart(8, "0")}`,
    pipeline_id: pipelineId,
    pipeline_name: options.pipelineName ?? "conformance",
    stage_name: stage,
    stage_index: sequence - 1,
    sequence,
    timestamp: options.timestamp ?? new Date(Date.UTC(2024, 0, 1, 0, 0, 0, sequence)).toISOString(),
    status: "completed" as const,
    checksum: "0".repeat(64),
    data_size: body.length,
    error_message: null,
    resume_count: 0,
    parent_checkpoint_id: null,
    parent_checksum: null,
    format_version: FORMAT_VERSION,
  };
  metadata.checksum = computeChecksum(metadata, body);
  return { record: { metadata, body }, outputs };
}

async function put(store: CheckpointStore, made: { record: CheckpointRecord; outputs: OutputRecord[] }) {
  await store.putCheckpoint(made.record, made.outputs);
  return made.record;
}

const ids = async (store: CheckpointStore, pipelineId: string) =>
  (await store.listCheckpoints(pipelineId)).map((e) =>
    e.ok ? e.metadata.checkpoint_id : `corrupt:${e.corrupt.location}`,
  );

/** The raw-contract half of the conformance suite. */
export function storeContractTests(harness: () => StoreHarness): void {
  let store: CheckpointStore;
  let run: (name: string) => string;

  beforeEach(() => {
    store = harness().store;
    run = harness().runId;
  });

  describe("store contract", () => {
    it("puts, gets, lists and deletes a checkpoint", async () => {
      const p = run("basic");
      const record = await put(store, makeRecord(p, 1, { outputs: { stage1: '{"rows":[1,2,3]}' } }));
      const got = await store.getCheckpoint(record.metadata.checkpoint_id);
      expect(got).toEqual(record);
      expect(await ids(store, p)).toEqual([record.metadata.checkpoint_id]);
      expect(await store.listPipelineIds()).toContain(p);
      expect(await store.deleteCheckpoints(p, [record.metadata.checkpoint_id])).toBe(1);
      expect(await store.getCheckpoint(record.metadata.checkpoint_id)).toBeUndefined();
      expect(await store.deleteCheckpoints(p, [record.metadata.checkpoint_id])).toBe(0);
    });

    it("returns undefined and empty lists for what does not exist", async () => {
      const p = run("absent");
      expect(await store.getCheckpoint(`${p}_x_20240101T000000000Z_aaaaaaaa`)).toBeUndefined();
      expect(await store.getLatestCheckpoint(p)).toBeUndefined();
      expect(await store.listCheckpoints(p)).toEqual([]);
      expect(await store.listOutputHashes(p)).toEqual([]);
      expect((await store.getOutputs(p, [sha256("x")])).size).toBe(0);
    });

    it("lists by exact run id: run p1 never lists p10", async () => {
      const p1 = run("p1");
      const p10 = `${p1}0`;
      const a = await put(store, makeRecord(p1, 1));
      const b = await put(store, makeRecord(p10, 1));
      expect(await ids(store, p1)).toEqual([a.metadata.checkpoint_id]);
      expect(await ids(store, p10)).toEqual([b.metadata.checkpoint_id]);
      expect((await store.getLatestCheckpoint(p1))?.metadata.checkpoint_id).toBe(a.metadata.checkpoint_id);
    });

    it("orders by sequence, oldest first, whatever the write order or timestamps", async () => {
      const p = run("order");
      const same = "2024-01-01T00:00:00.000Z";
      const third = await put(store, makeRecord(p, 3, { timestamp: same }));
      const first = await put(store, makeRecord(p, 1, { timestamp: same }));
      const second = await put(store, makeRecord(p, 2, { timestamp: same }));
      expect(await ids(store, p)).toEqual([first, second, third].map((r) => r.metadata.checkpoint_id));
      expect((await store.getLatestCheckpoint(p))?.metadata.checkpoint_id).toBe(third.metadata.checkpoint_id);
    });

    it("falls back to the next newest once the newest is deleted, and sees status updates", async () => {
      const p = run("latest-delete");
      const first = await put(store, makeRecord(p, 1));
      const second = await put(store, makeRecord(p, 2));
      await store.updateCheckpoint(second.metadata.checkpoint_id, { status: "failed" });
      expect((await store.getLatestCheckpoint(p))?.metadata).toMatchObject({ sequence: 2, status: "failed" });
      await store.deleteCheckpoints(p, [second.metadata.checkpoint_id]);
      expect((await store.getLatestCheckpoint(p))?.metadata.checkpoint_id).toBe(first.metadata.checkpoint_id);
      const third = await put(store, makeRecord(p, 3));
      expect((await store.getLatestCheckpoint(p))?.metadata.checkpoint_id).toBe(third.metadata.checkpoint_id);
      await store.deleteCheckpoints(p, [first.metadata.checkpoint_id, third.metadata.checkpoint_id]);
      expect(await store.getLatestCheckpoint(p)).toBeUndefined();
    });

    it("writes only on the newest checkpoint it expects (expectedTip)", async () => {
      const p = run("tip");
      const first = makeRecord(p, 1, { outputs: { s1: '"one"' } });
      await store.putCheckpoint(first.record, first.outputs, undefined, { expectedTip: null });
      const second = makeRecord(p, 2);
      await store.putCheckpoint(second.record, second.outputs, undefined, {
        expectedTip: first.record.metadata.checkpoint_id,
      });
      // A writer still chaining to the first checkpoint, or to none, is refused; nothing is stored.
      for (const expectedTip of [first.record.metadata.checkpoint_id, null]) {
        const stale = makeRecord(p, 2, { outputs: { s2: '"stale"' } });
        await expect(
          store.putCheckpoint(stale.record, stale.outputs, undefined, { expectedTip }),
        ).rejects.toMatchObject({
          code: "CAIRN_CONFLICT",
          name: "TipMovedError",
          pipelineId: p,
          expected: expectedTip,
          actual: second.record.metadata.checkpoint_id,
        });
        expect(await store.getCheckpoint(stale.record.metadata.checkpoint_id)).toBeUndefined();
      }
      expect(await store.listOutputHashes(p)).toEqual([sha256('"one"')]);
      expect(await ids(store, p)).toEqual([first, second].map((r) => r.record.metadata.checkpoint_id));
      await expect(
        store.putCheckpoint(makeRecord(run("tip-empty"), 1).record, [], undefined, { expectedTip: "x_y_1" }),
      ).rejects.toMatchObject({ name: "TipMovedError", actual: null });
    });

    it("refuses to overwrite an existing checkpoint id and keeps the original", async () => {
      const p = run("conflict");
      const original = await put(store, makeRecord(p, 1));
      const clash = makeRecord(p, 2, { id: original.metadata.checkpoint_id, outputs: { s: '"new"' } });
      await expect(store.putCheckpoint(clash.record, clash.outputs)).rejects.toMatchObject({
        code: "CAIRN_CONFLICT",
      });
      expect(await store.getCheckpoint(original.metadata.checkpoint_id)).toEqual(original);
      expect(await ids(store, p)).toEqual([original.metadata.checkpoint_id]);
    });

    it("updates only the mutable status fields", async () => {
      const p = run("status");
      const record = await put(store, makeRecord(p, 1));
      const id = record.metadata.checkpoint_id;
      await store.updateCheckpoint(id, { status: "failed", error_message: "boom", resume_count: 2 });
      const got = await store.getCheckpoint(id);
      expect(got?.metadata).toEqual({
        ...record.metadata,
        status: "failed",
        error_message: "boom",
        resume_count: 2,
      });
      expect(got?.body).toBe(record.body);
      await store.updateCheckpoint(id, { status: "resumed" });
      expect((await store.getCheckpoint(id))?.metadata).toMatchObject({
        status: "resumed",
        error_message: "boom",
      });
      await store.updateCheckpoint(id, { error_message: null });
      expect((await store.getCheckpoint(id))?.metadata.error_message).toBeNull();
      const listed = await store.listCheckpoints(p);
      expect(listed[0]?.ok && listed[0].metadata.status).toBe("resumed");
      await expect(
        store.updateCheckpoint(`${p}_x_20240101T000000000Z_zzzzzzzz`, { status: "failed" }),
      ).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
    });

    it("stores outputs once per run and shares them between checkpoints", async () => {
      const p = run("outputs");
      const body = JSON.stringify({ rows: Array.from({ length: 50 }, (_, i) => ({ i })) });
      const hash = sha256(body);
      await put(store, makeRecord(p, 1, { outputs: { a: body } }));
      await put(store, makeRecord(p, 2, { outputs: { a: body, b: '"b"' } }));
      expect(await store.listOutputHashes(p)).toEqual([hash, sha256('"b"')].sort());
      const got = await store.getOutputs(p, [hash, sha256('"b"'), sha256("missing")]);
      expect(got.get(hash)).toBe(body);
      expect(got.size).toBe(2);
      expect(await store.deleteOutputs(p, [hash])).toBe(1);
      expect((await store.getOutputs(p, [hash])).size).toBe(0);
    });

    it("keeps outputs per run: another run does not see them", async () => {
      const a = run("outa");
      const b = run("outb");
      await put(store, makeRecord(a, 1, { outputs: { s: '"only-a"' } }));
      await put(store, makeRecord(b, 1));
      expect((await store.getOutputs(b, [sha256('"only-a"')])).size).toBe(0);
    });

    it("returns copies: mutating a returned record changes nothing stored", async () => {
      const p = run("copies");
      const made = makeRecord(p, 1);
      await store.putCheckpoint(made.record, made.outputs);
      made.record.metadata.status = "expired";
      const got = await store.getCheckpoint(made.record.metadata.checkpoint_id);
      expect(got?.metadata.status).toBe("completed");
      if (got) got.metadata.stage_name = "changed";
      const listed = await store.listCheckpoints(p);
      if (listed[0]?.ok) listed[0].metadata.sequence = 99;
      const again = await store.getCheckpoint(made.record.metadata.checkpoint_id);
      expect(again?.metadata.stage_name).toBe(made.record.metadata.stage_name);
      expect(again?.metadata.sequence).toBe(1);
    });

    it("deletes a whole run, outputs included", async () => {
      const p = run("deleterun");
      const other = run("keeprun");
      await put(store, makeRecord(p, 1, { outputs: { s: '"x"' } }));
      await put(store, makeRecord(p, 2));
      const kept = await put(store, makeRecord(other, 1));
      await store.deleteRun(p);
      expect(await store.listCheckpoints(p)).toEqual([]);
      expect(await store.listOutputHashes(p)).toEqual([]);
      expect(await store.listPipelineIds()).not.toContain(p);
      expect(await ids(store, other)).toEqual([kept.metadata.checkpoint_id]);
    });

    it("handles many checkpoints of one run", async () => {
      const p = run("many");
      const made: string[] = [];
      for (let i = 1; i <= 60; i++) made.push((await put(store, makeRecord(p, i))).metadata.checkpoint_id);
      expect(await ids(store, p)).toEqual(made);
      expect((await store.getLatestCheckpoint(p))?.metadata.sequence).toBe(60);
    });
  });

  describe("store persistence", () => {
    it("keeps everything across close and reopen (persistent stores)", async (ctx) => {
      const h = harness();
      if (!h.reopen) {
        expect(store.persistent).toBe(false);
        return ctx.skip("not persistent: the harness has no reopen hook");
      }
      const p = run("reopen");
      const record = await put(store, makeRecord(p, 1, { outputs: { s: '"persisted"' } }));
      await store.updateCheckpoint(record.metadata.checkpoint_id, { status: "failed", error_message: "x" });
      const reopened = await h.reopen();
      const got = await reopened.getCheckpoint(record.metadata.checkpoint_id);
      expect(got?.body).toBe(record.body);
      expect(got?.metadata.status).toBe("failed");
      expect((await reopened.getOutputs(p, [sha256('"persisted"')])).get(sha256('"persisted"'))).toBe(
        '"persisted"',
      );
    });
  });
}
