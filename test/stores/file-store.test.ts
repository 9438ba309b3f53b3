import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/codec.js";
import { sha256 } from "../../src/core/record.js";
import { FileStore } from "../../src/stores/file/file-store.js";
import type { CheckpointRecord, OutputRecord, StoredMetadata } from "../../src/stores/types.js";

let root: string;
let basePath: string;
let store: FileStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-file-store-"));
  basePath = join(root, "store");
  store = new FileStore({ basePath, fsync: false });
  await store.setup();
});

afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

const body = (stage: string, state: unknown = { n: 1 }) =>
  canonicalJson({
    completed_stages: [stage],
    output_refs: {},
    pending_stages: [],
    provenance_hashes: {},
    state_data: state,
  });

function record(
  pipelineId: string,
  checkpointId: string,
  sequence: number,
  text = body("load"),
): CheckpointRecord {
  const metadata: StoredMetadata = {
    checkpoint_id: checkpointId,
    pipeline_id: pipelineId,
    pipeline_name: "etl",
    stage_name: "load",
    stage_index: sequence - 1,
    sequence,
    timestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, sequence)).toISOString(),
    status: "completed",
    checksum: "a".repeat(64),
    data_size: text.length,
    error_message: null,
    resume_count: 0,
    parent_checkpoint_id: null,
    parent_checksum: null,
    format_version: 1,
  };
  return { metadata, body: text };
}

const output = (text: string): OutputRecord => ({ hash: sha256(text), body: text });

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe("FileStore", () => {
  it("writes valid JSON with the body embedded raw and gives back the exact body bytes", async () => {
    const text = body("load", { name: "é\u2028", nested: { list: [1, 2.5, null], "\n": true } });
    const rec = record("run1", "run1_load_1", 1, text);
    await store.putCheckpoint(rec, []);
    const file = join(basePath, "run1", "0000000001-run1_load_1.json");
    const content = await readFile(file, "utf8");
    expect(content).toBe(`{"metadata":${JSON.stringify(rec.metadata)},"body":${text}}\n`);
    expect(JSON.parse(content).body).toEqual(JSON.parse(text));
    expect(await store.getCheckpoint("run1_load_1")).toEqual(rec);

    // A file reformatted by hand still reads, through re-canonicalization.
    await writeFile(file, JSON.stringify(JSON.parse(content), null, 2));
    expect((await store.getCheckpoint("run1_load_1"))?.body).toBe(text);
  });

  it("stores outputs once as their exact bytes", async () => {
    const a = output('{"rows":[1,2]}');
    const b = output('"b"');
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [a, b, a]);
    await store.putCheckpoint(record("run1", "run1_b_2", 2), [a]);
    expect(await readFile(join(basePath, "run1", "outputs", `${a.hash}.json`), "utf8")).toBe(a.body);
    expect(await store.listOutputHashes("run1")).toEqual([a.hash, b.hash].sort());
    const missing = "0".repeat(64);
    const got = await store.getOutputs("run1", [a.hash, missing]);
    expect([...got]).toEqual([[a.hash, a.body]]);
    expect(await codeOf(store.getOutputs("run1", ["../x"]))).toBe("CAIRN_INVALID_ARGUMENT");
  });

  it("reports truncated and garbage files as corrupt entries with their path", async () => {
    await store.putCheckpoint(record("run1", "run1_a_1", 1), []);
    await store.putCheckpoint(record("run1", "run1_b_2", 2), []);
    await store.putCheckpoint(record("run1", "run1_c_3", 3), []);
    const dir = join(basePath, "run1");
    const truncated = join(dir, "0000000002-run1_b_2.json");
    const content = await readFile(truncated, "utf8");
    await writeFile(truncated, content.slice(0, content.length / 2));
    await writeFile(join(dir, "junk.json"), "{}");
    await writeFile(join(dir, "notes"), "hello");

    const listed = await store.listCheckpoints("run1");
    expect(listed.map((e) => (e.ok ? e.metadata.checkpoint_id : `corrupt:${e.corrupt.location}`))).toEqual([
      "run1_a_1",
      `corrupt:${truncated}`,
      "run1_c_3",
      `corrupt:${join(dir, "junk.json")}`,
      `corrupt:${join(dir, "notes")}`,
    ]);
    const entry = listed[1];
    expect(entry?.ok).toBe(false);
    if (entry && !entry.ok) {
      expect(entry.corrupt).toMatchObject({ pipelineId: "run1", checkpointId: "run1_b_2" });
      expect(entry.corrupt.reason).toMatch(/not valid JSON/);
    }
    const junk = listed[3];
    if (junk && !junk.ok) expect(junk.corrupt.checkpointId).toBeUndefined();

    const error = await store.getCheckpoint("run1_b_2").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CAIRN_CORRUPT" });
    expect((error as Error).message).toContain(truncated);
    expect(await codeOf(store.updateCheckpoint("run1_b_2", { status: "failed" }))).toBe("CAIRN_CORRUPT");
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_c_3");
  });

  it("treats a file whose metadata disagrees with its name or folder as corrupt", async () => {
    await store.putCheckpoint(record("run1", "run1_a_1", 1), []);
    const moved = join(basePath, "run1", "0000000007-run1_a_1.json");
    await writeFile(moved, await readFile(join(basePath, "run1", "0000000001-run1_a_1.json")));
    await mkdir(join(basePath, "run2"));
    await writeFile(
      join(basePath, "run2", "0000000001-run2_a_1.json"),
      JSON.stringify({ metadata: record("run1", "run2_a_1", 1).metadata, body: {} }),
    );
    // Files added by hand: the run's indexes are rebuilt, as the README asks.
    await store.rebuildIndexes("run1");
    expect(await codeOf(store.getLatestCheckpoint("run1"))).toBe("CAIRN_CORRUPT");
    expect(await codeOf(store.getCheckpoint("run2_a_1"))).toBe("CAIRN_CORRUPT");
    const listed = await store.listCheckpoints("run2");
    expect(listed).toHaveLength(1);
    expect(listed[0]?.ok).toBe(false);
  });

  it("ignores temp files", async () => {
    await store.putCheckpoint(record("run1", "run1_a_1", 1), []);
    await writeFile(join(basePath, "run1", ".x.tmp"), "partial");
    await writeFile(join(basePath, "run1", ".0000000009-run1_z_9.json.abc.tmp"), "{");
    const listed = await store.listCheckpoints("run1");
    expect(listed).toEqual([{ ok: true, metadata: record("run1", "run1_a_1", 1).metadata }]);
    expect((await store.getLatestCheckpoint("run1"))?.metadata.sequence).toBe(1);
  });

  it("refuses an existing id and leaves the original file unchanged", async () => {
    await store.putCheckpoint(record("run1", "run1_a_1", 1), []);
    const file = join(basePath, "run1", "0000000001-run1_a_1.json");
    const before = await readFile(file, "utf8");
    const again = record("run1", "run1_a_1", 1, body("other"));
    expect(await codeOf(store.putCheckpoint(again, [output('"x"')]))).toBe("CAIRN_CONFLICT");
    // The same id under another sequence would make the id ambiguous within the run.
    expect(await codeOf(store.putCheckpoint(record("run1", "run1_a_1", 2), []))).toBe("CAIRN_CONFLICT");
    expect(await readFile(file, "utf8")).toBe(before);
    expect(await store.listOutputHashes("run1")).toEqual([]);
    expect(await tree(join(basePath, "run1"))).toEqual([
      "0000000001-run1_a_1.json",
      "outputs",
      "outputs/.head",
      "outputs/.indexed",
      "outputs/.run-head",
    ]);
  });

  it("lets exactly one of several concurrent puts of one id succeed", async () => {
    const results = await Promise.allSettled(
      [1, 2, 3, 1].map((seq) => store.putCheckpoint(record("run1", "run1_a_1", seq), [output(`"${seq}"`)])),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await tree(join(basePath, "run1"))).toEqual([
      "0000000001-run1_a_1.json",
      "outputs",
      "outputs/.head",
      "outputs/.indexed",
      "outputs/.run-head",
      `outputs/${sha256('"1"')}.json`,
    ]);
  });

  it("refuses, even without the name checks of GuardedStore, names that leave a plain folder of its own", async () => {
    // Paths out of the base folder, the base folder itself, and the store's own dot-folders.
    for (const bad of ["../x", "a/b", "..", ".", ".hidden", ".runs", ".leases", "", "/etc"]) {
      expect(await codeOf(store.putCheckpoint(record(bad, "ok_1", 1), []))).toBe("CAIRN_INVALID_NAME");
      expect(await codeOf(store.listCheckpoints(bad))).toBe("CAIRN_INVALID_NAME");
      expect(await codeOf(store.deleteRun(bad))).toBe("CAIRN_INVALID_NAME");
      expect(await codeOf(store.listRuns({ pipelineName: bad }))).toBe("CAIRN_INVALID_NAME");
      const named = record("run1", "run1_a_1", 1);
      named.metadata.pipeline_name = bad;
      expect(await codeOf(store.putCheckpoint(named, []))).toBe("CAIRN_INVALID_NAME");
    }
    for (const bad of ["../../x", "a/b", ""]) {
      expect(await codeOf(store.putCheckpoint(record("run1", bad, 1), []))).toBe("CAIRN_INVALID_NAME");
    }
    // Nothing at all is created: the store's folder only appears with its first write.
    expect(await readdir(root)).toEqual([]);
  });

  it("breaks a run lock left by a dead process at once, and never removes another holder's lock", async () => {
    const lock = join(basePath, ".leases", "run1.lock");
    await mkdir(join(basePath, ".leases"), { recursive: true });
    // A pid far above pid_max on Linux: certainly not alive.
    await writeFile(lock, JSON.stringify({ host: hostname(), pid: 99_999_999, nonce: "dead" }));
    // Only breaking the lock lets this succeed: a live holder's lock would make it time out.
    const attempt = await store.acquireLease("run1", "runner-a", 10_000);
    expect(attempt.acquired).toBe(true);
    expect(await readdir(join(basePath, ".leases"))).toEqual(["run1.json"]);
  });

  it("breaks a run lock left by a dead process for a checkpoint write too, which takes the lock", async () => {
    await mkdir(join(basePath, ".leases"), { recursive: true });
    await writeFile(
      join(basePath, ".leases", "run1.lock"),
      JSON.stringify({ host: hostname(), pid: 99_999_999, nonce: "dead" }),
    );
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [], undefined, { expectedTip: null });
    expect(await readdir(join(basePath, ".leases"))).toEqual([]);
    expect(
      await codeOf(store.putCheckpoint(record("run1", "run1_b_2", 2), [], undefined, { expectedTip: null })),
    ).toBe("CAIRN_CONFLICT");
  });

  it("keeps data across close and reopen", async () => {
    const out = output('{"v":1}');
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [out]);
    await store.updateCheckpoint("run1_a_1", { status: "failed", error_message: "boom" });
    await store.close();
    const reopened = new FileStore({ basePath, fsync: true });
    await reopened.setup();
    expect(reopened.persistent).toBe(true);
    expect(reopened.location).toBe(`file:${basePath}`);
    expect(await reopened.listPipelineIds()).toEqual(["run1"]);
    const got = await reopened.getCheckpoint("run1_a_1");
    expect(got?.metadata).toMatchObject({ status: "failed", error_message: "boom" });
    expect(got?.body).toBe(body("load"));
    expect(await reopened.getOutputs("run1", [out.hash])).toEqual(new Map([[out.hash, out.body]]));
    await reopened.close();
  });

  it("leaves no temp files behind, with or without fsync", async () => {
    const durable = new FileStore({ basePath, fsync: true });
    await durable.putCheckpoint(record("run1", "run1_a_1", 1), [output('"a"')]);
    await store.putCheckpoint(record("run1", "run1_b_2", 2), [output('"b"'), output('"a"')]);
    await durable.updateCheckpoint("run1_b_2", { resume_count: 1 });
    await codeOf(store.putCheckpoint(record("run1", "run1_b_2", 2), []));
    expect((await tree(basePath)).filter((p) => p.endsWith(".tmp"))).toEqual([]);
  });

  it("updates status fields and keeps the body bytes", async () => {
    const text = body("load", { big: "x".repeat(1000) });
    await store.putCheckpoint(record("run1", "run1_a_1", 1, text), []);
    await store.updateCheckpoint("run1_a_1", { status: "resumed", resume_count: 2 });
    const got = await store.getCheckpoint("run1_a_1");
    expect(got?.body).toBe(text);
    expect(got?.metadata).toMatchObject({ status: "resumed", resume_count: 2, error_message: null });
    expect(await codeOf(store.updateCheckpoint("run1_zz_9", { status: "failed" }))).toBe("CAIRN_NOT_FOUND");
  });

  it("finds a checkpoint in a run id with underscores, and by scanning when the id does not name its run", async () => {
    const runId = "my_etl_20240101T000000000Z_abcdef";
    const id = `${runId}_load_stage_20240101T000001000Z_abcdefgh`;
    await store.putCheckpoint(record(runId, id, 1), []);
    await store.putCheckpoint(record("other", "zzz_elsewhere_1", 1), []);
    expect((await store.getCheckpoint(id))?.metadata.pipeline_id).toBe(runId);
    expect((await store.getCheckpoint("zzz_elsewhere_1"))?.metadata.pipeline_id).toBe("other");
    expect(await store.getCheckpoint("missing_id_1")).toBeUndefined();
  });

  it("reads only the latest file, orders listings by sequence, and lists runs", async () => {
    for (const seq of [3, 1, 12, 2]) await store.putCheckpoint(record("run1", `run1_s_${seq}`, seq), []);
    await store.putCheckpoint(record("run10", "run10_s_1", 1), []);
    await mkdir(join(basePath, ".hidden"));
    // Corrupting an older checkpoint does not affect reading the latest one.
    await writeFile(join(basePath, "run1", "0000000001-run1_s_1.json"), "{");
    expect((await store.getLatestCheckpoint("run1"))?.metadata.sequence).toBe(12);
    const listed = await store.listCheckpoints("run1");
    expect(listed.map((e) => (e.ok ? e.metadata.sequence : "corrupt"))).toEqual(["corrupt", 2, 3, 12]);
    expect(await store.listCheckpoints("run")).toEqual([]);
    expect(await store.getLatestCheckpoint("nope")).toBeUndefined();
    expect(await store.listPipelineIds()).toEqual(["run1", "run10"]);
  });

  it("deletes checkpoints, outputs and runs, and removes a run folder once it is empty", async () => {
    const out = output('"o"');
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [out]);
    await store.putCheckpoint(record("run1", "run1_b_2", 2), []);
    expect(await store.deleteCheckpoints("run1", ["run1_a_1", "run1_a_1", "run1_none_3"])).toBe(1);
    expect(await store.deleteCheckpoints("run1", ["run1_b_2"])).toBe(1);
    expect(await store.listPipelineIds()).toEqual(["run1"]);
    expect(await store.deleteOutputs("run1", [out.hash, "f".repeat(64)])).toBe(1);
    expect(await store.listPipelineIds()).toEqual([]);
    const runFolders = async () => (await readdir(basePath)).filter((n) => !n.startsWith("."));
    expect(await runFolders()).toEqual([]);
    expect(await codeOf(store.deleteOutputs("run1", ["F".repeat(64)]))).toBe("CAIRN_INVALID_ARGUMENT");

    await store.putCheckpoint(record("run2", "run2_a_1", 1), [out]);
    await writeFile(join(basePath, "run2", "junk"), "x");
    await store.deleteRun("run2");
    await store.deleteRun("run2");
    expect(await runFolders()).toEqual([]);
  });

  it("gives nothing for a base folder that does not exist", async () => {
    const missing = new FileStore({ basePath: join(root, "absent"), fsync: false });
    expect(await missing.listPipelineIds()).toEqual([]);
    expect(await missing.getCheckpoint("a_b_1")).toBeUndefined();
    expect(await missing.listCheckpoints("a")).toEqual([]);
  });
});

describe("FileStore head hint", () => {
  const headPath = (run: string) => join(basePath, run, "outputs", ".head");
  const fence = async (run: string) => {
    const attempt = await store.acquireLease(run, "runner-a", 60_000);
    if (!attempt.acquired) throw new Error("lease not acquired");
    return attempt.lease;
  };

  it("is kept by fenced writes and names the newest checkpoint, with or without new outputs", async () => {
    const lease = await fence("run1");
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [output('"a"')], lease);
    expect(await readFile(headPath("run1"), "utf8")).toBe("0000000001-run1_a_1.json\n");
    await store.putCheckpoint(record("run1", "run1_b_2", 2), [], lease);
    expect(await readFile(headPath("run1"), "utf8")).toBe("0000000002-run1_b_2.json\n");
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_b_2");
    // Not an output: output listings never see it.
    expect(await store.listOutputHashes("run1")).toEqual([sha256('"a"')]);
  });

  it("is what the newest lookup reads: the folder is not listed while it names a checkpoint", async () => {
    const lease = await fence("run1");
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [], lease);
    await store.putCheckpoint(record("run1", "run1_b_2", 2), [], lease);
    // Pointed at the older checkpoint by hand, the hint wins: proof the lookup trusts it.
    await writeFile(headPath("run1"), "0000000001-run1_a_1.json\n");
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_a_1");
    // Which is why an operator who edits checkpoint files by hand rebuilds the indexes.
    expect(await store.rebuildIndexes("run1")).toEqual([expect.stringContaining("removed")]);
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_b_2");
    expect(await store.rebuildIndexes("run1")).toEqual([]);
  });

  it("falls back to listing the folder when it names a missing file or is garbage", async () => {
    const lease = await fence("run1");
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [], lease);
    await store.putCheckpoint(record("run1", "run1_b_2", 2), [], lease);
    // A crash after the hint was written but before its checkpoint was: it names nothing.
    await writeFile(headPath("run1"), "0000000003-run1_c_3.json\n");
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_b_2");
    for (const garbage of ["", "0000000002-run1_b_2.json", "../../etc/passwd\n", "\n"]) {
      await writeFile(headPath("run1"), garbage);
      expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_b_2");
    }
    // Deleting the newest checkpoint leaves the hint naming a missing file: the next newest is found.
    await writeFile(headPath("run1"), "0000000002-run1_b_2.json\n");
    await store.deleteCheckpoints("run1", ["run1_b_2"]);
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_a_1");
  });

  it("is kept by unfenced writes too (they hold the run lock as well), and removed by one out of order", async () => {
    const lease = await fence("run1");
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [output('"a"')], lease);
    await store.putCheckpoint(record("run1", "run1_c_3", 3), [output('"b"')]);
    expect(await readFile(headPath("run1"), "utf8")).toBe("0000000003-run1_c_3.json\n");
    // A lower sequence is not the newest: the hint goes rather than name it.
    await store.putCheckpoint(record("run1", "run1_b_2", 2), []);
    await expect(readFile(headPath("run1"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
    expect((await store.getLatestCheckpoint("run1"))?.metadata.checkpoint_id).toBe("run1_c_3");
  });

  it("never names a checkpoint a refused fenced write did not make", async () => {
    const lease = await fence("run1");
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [], lease);
    expect(await codeOf(store.putCheckpoint(record("run1", "run1_a_1", 1), [], lease))).toBe(
      "CAIRN_CONFLICT",
    );
    expect(await readFile(headPath("run1"), "utf8")).toBe("0000000001-run1_a_1.json\n");
  });

  it("does not keep an emptied run's folder alive", async () => {
    const lease = await fence("run1");
    await store.putCheckpoint(record("run1", "run1_a_1", 1), [output('"a"')], lease);
    await store.deleteOutputs("run1", [sha256('"a"')]);
    await store.deleteCheckpoints("run1", ["run1_a_1"]);
    expect(await store.listPipelineIds()).toEqual([]);
  });
});
