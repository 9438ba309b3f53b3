/**
 * Export and import of encrypted runs (format 1.2): sealed exports hold no plaintext and need the
 * key to import, which checks everything before storing anything; decrypted exports re-address
 * outputs by SHA-256 and import into plaintext stores; plaintext exports import into encrypting ones.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isEnvelope } from "../../src/core/sealed.js";
import { CheckpointManager, type CheckpointManagerOptions, keyFileOptions } from "../../src/index.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures");
const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const RING = { keys: { k1: K1 }, activeKeyId: "k1" };
const MARKER = "MARKER-7f3a";
const STAGES = ["extract", "transform", "load"];

let dir: string;
const managers: CheckpointManager[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-encrypted-transfer-"));
});
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await rm(dir, { recursive: true, force: true });
});

/** The target store kinds available here: each gets a fresh store. */
const TARGETS = {
  memory: (): CheckpointManagerOptions => ({ store: "memory:" }),
  sqlite: (): CheckpointManagerOptions => ({
    store: `sqlite:${join(dir, `t-${randomBytes(4).toString("hex")}.db`)}`,
  }),
};

function manager(options: CheckpointManagerOptions): CheckpointManager {
  const m = new CheckpointManager(options);
  managers.push(m);
  return m;
}

/** The encrypted source store (sqlite, so managers with other keys can open it too). */
const sourceDb = () => ({ store: `sqlite:${join(dir, "source.db")}` });

async function makeRun(m: CheckpointManager, pipelineId: string): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await m.createCheckpoint({
        pipelineId,
        stageName: stage,
        stageIndex: i,
        stateData: { secret: `${MARKER}-state-${i}`, when: new Date("2024-01-01T00:00:00Z") },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(
          STAGES.slice(0, i + 1).map((s) => [s, { rows: [`${MARKER}-${s}`, i] }]),
        ),
        status: "completed",
      }),
    );
  }
  return ids;
}

/** Flips one character of the first ciphertext (`"d":"…"`) after `after` in the file. */
async function tamperCiphertext(path: string, after = 0): Promise<void> {
  const text = await readFile(path, "utf8");
  const found = text.indexOf('\\"d\\":\\"', after);
  expect(found).toBeGreaterThan(after);
  const at = found + 12;
  const flipped = text[at] === "A" ? "B" : "A";
  await writeFile(path, text.slice(0, at) + flipped + text.slice(at + 1));
}

async function expectNothingStored(m: CheckpointManager, pipelineId: string): Promise<void> {
  expect(await m.listPipelines()).toEqual([]);
  const store = await m.getStore();
  expect(await store.getRunKey?.(pipelineId)).toBeUndefined();
}

describe("sealed run export", () => {
  it("holds no plaintext, and imports into a fresh store of each kind, equal and with its data key", async () => {
    const source = manager({ ...sourceDb(), encryption: RING });
    const ids = await makeRun(source, "etl");
    const path = join(dir, "run.json");
    const report = await source.exportPipeline("etl", path);
    expect(report).toMatchObject({ checkpointIds: ids, form: "sealed" });
    const text = await readFile(path, "utf8");
    expect(text).not.toContain(MARKER);
    const file = JSON.parse(text) as Record<string, unknown>;
    const runKey = await (await source.getStore()).getRunKey?.("etl");
    expect(file).toMatchObject({ export_version: "1.2", kind: "run", sealed: true, run_key: runKey });

    for (const [kind, options] of Object.entries(TARGETS)) {
      const target = manager({ ...options(), encryption: RING });
      const imported = await target.importPipeline(path);
      expect(imported, kind).toEqual({ kind: "run", pipelineId: "etl", checkpointIds: ids, replaced: 0 });
      expect(await target.getCheckpointHistory("etl")).toEqual(await source.getCheckpointHistory("etl"));
      for (const id of ids)
        expect(await target.loadCheckpoint(id)).toStrictEqual(await source.loadCheckpoint(id));
      expect((await target.validateRun("etl")).valid).toBe(true);
      const store = await target.getStore();
      expect(await store.getRunKey?.("etl")).toBe(runKey);
      // Stored as exported: sealed, never in the clear.
      const raw = await store.inner.getCheckpoint(ids[2] as string);
      expect(isEnvelope(raw?.body ?? "")).toBe(true);
      expect(raw?.body).not.toContain(MARKER);
      // The export wrote the very texts it read and verified (not sealed again, with new nonces).
      const from = await source.getStore();
      for (const id of ids)
        expect((await store.inner.getCheckpoint(id))?.body).toBe((await from.inner.getCheckpoint(id))?.body);
      const hashes = await from.inner.listOutputHashes("etl");
      expect(await store.inner.getOutputs("etl", hashes)).toEqual(await from.inner.getOutputs("etl", hashes));
      // The run goes on under its own key.
      await target.createCheckpoint({
        pipelineId: "etl",
        stageName: "after",
        stageIndex: 3,
        stateData: { more: true },
        completedStages: [...STAGES, "after"],
        agentOutputs: { extract: { rows: [`${MARKER}-extract`, 2] } },
      });
      expect((await target.validateRun("etl")).valid).toBe(true);
    }
  });

  it("needs the key-encryption key to export and to import; without it nothing is stored", async () => {
    const source = manager({ ...sourceDb(), encryption: RING });
    await makeRun(source, "etl");
    const path = join(dir, "run.json");
    await source.exportPipeline("etl", path);

    const keyless = manager(sourceDb());
    const nowhere = join(dir, "keyless.json");
    await expect(keyless.exportPipeline("etl", nowhere)).rejects.toMatchObject({
      code: "CAIRN_KEY_MISSING",
      keyId: "k1",
    });
    await expect(keyless.exportPipeline("etl", nowhere, { decrypt: true })).rejects.toMatchObject({
      code: "CAIRN_KEY_MISSING",
      keyId: "k1",
    });
    await expect(stat(nowhere)).rejects.toMatchObject({ code: "ENOENT" });

    for (const options of Object.values(TARGETS)) {
      const plain = manager(options());
      await expect(plain.importPipeline(path)).rejects.toMatchObject({
        code: "CAIRN_KEY_MISSING",
        keyId: "k1",
      });
      await expectNothingStored(plain, "etl");
      const other = manager({ ...options(), encryption: { keys: { k2: K2 }, activeKeyId: "k2" } });
      await expect(other.importPipeline(path)).rejects.toMatchObject({
        code: "CAIRN_KEY_MISSING",
        keyId: "k1",
      });
      await expectNothingStored(other, "etl");
      // A ring with a wrong key under the same id: the data key does not unwrap.
      const wrong = manager({ ...options(), encryption: { keys: { k1: K2 }, activeKeyId: "k1" } });
      await expect(wrong.importPipeline(path)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
      await expectNothingStored(wrong, "etl");
    }
  });

  it("refuses a tampered file (ciphertext of a body or an output, metadata) and stores nothing", async () => {
    const source = manager({ ...sourceDb(), encryption: RING });
    const ids = await makeRun(source, "etl");
    const path = join(dir, "run.json");
    await source.exportPipeline("etl", path);
    const original = await readFile(path, "utf8");
    const lastLine = original.lastIndexOf(ids[2] as string);
    const cases: [string, () => Promise<void>, string][] = [
      ["an output of the first line", () => tamperCiphertext(path), "fails authentication"],
      [
        "the body of the last line",
        () => tamperCiphertext(path, original.indexOf('"sealed_body"', lastLine)),
        "fails authentication",
      ],
      [
        "the stage index of the last line",
        () =>
          writeFile(
            path,
            original.replace('"stage_name":"load","stage_index":2', '"stage_name":"load","stage_index":7'),
          ),
        "checksum mismatch",
      ],
    ];
    for (const [what, tamper, message] of cases) {
      await writeFile(path, original);
      await tamper();
      expect(await readFile(path, "utf8"), what).not.toBe(original);
      const target = manager({ ...TARGETS.memory(), encryption: RING });
      const error = await target.importPipeline(path).catch((e: unknown) => e);
      expect(error, what).toMatchObject({ code: "CAIRN_CORRUPT" });
      expect(String((error as Error).message), what).toContain(message);
      await expectNothingStored(target, "etl");
    }
  });

  it("replaces a run with overwrite, taking the file's data key", async () => {
    const source = manager({ ...sourceDb(), encryption: RING });
    const ids = await makeRun(source, "etl");
    const path = join(dir, "run.json");
    await source.exportPipeline("etl", path);
    const target = manager({ ...TARGETS.sqlite(), encryption: RING });
    await makeRun(target, "etl");
    await expect(target.importPipeline(path)).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
    expect(await target.importPipeline(path, { overwrite: true })).toMatchObject({
      checkpointIds: ids,
      replaced: 3,
    });
    expect(await (await target.getStore()).getRunKey?.("etl")).toBe(
      await (await source.getStore()).getRunKey?.("etl"),
    );
    expect((await target.validateRun("etl")).valid).toBe(true);
  });
});

describe("sealed export of a mixed history", () => {
  it("seals the records stored in the clear or compressed only too: no plaintext at all", async () => {
    // One checkpoint in the clear, one compressed, then encrypted and compressed: one run.
    const plain = manager(sourceDb());
    const first = await plain.createCheckpoint({
      pipelineId: "etl",
      stageName: "extract",
      stageIndex: 0,
      stateData: { secret: `${MARKER}-clear` },
      completedStages: ["extract"],
      agentOutputs: { extract: { rows: [`${MARKER}-clear-output`] } },
    });
    const compressed = manager({ ...sourceDb(), compression: { algorithm: "gzip", minBytes: 1 } });
    await compressed.createCheckpoint({
      pipelineId: "etl",
      stageName: "transform",
      stageIndex: 1,
      stateData: { secret: `${MARKER}-gzip`.repeat(50) },
      completedStages: ["extract", "transform"],
      agentOutputs: { transform: { rows: [`${MARKER}-gzip-output`.repeat(50)] } },
    });
    const sealed = manager({
      ...sourceDb(),
      encryption: RING,
      compression: { algorithm: "gzip", minBytes: 1 },
    });
    await sealed.createCheckpoint({
      pipelineId: "etl",
      stageName: "load",
      stageIndex: 2,
      stateData: { secret: `${MARKER}-sealed` },
      completedStages: ["extract", "transform", "load"],
      agentOutputs: { load: { rows: [`${MARKER}-sealed-output`] } },
    });
    const raw = await (await sealed.getStore()).inner.getCheckpoint(first);
    expect(raw?.body).toContain(MARKER);
    const path = join(dir, "mixed.json");
    expect(await sealed.exportPipeline("etl", path)).toMatchObject({ form: "sealed" });
    expect(await readFile(path, "utf8")).not.toContain(MARKER);
    const target = manager({ ...TARGETS.memory(), encryption: RING });
    await target.importPipeline(path);
    expect((await target.validateRun("etl")).valid).toBe(true);
    expect(await target.getCheckpointHistory("etl")).toEqual(await sealed.getCheckpointHistory("etl"));
    const [a, b] = [await sealed.loadCheckpoint(first), await target.loadCheckpoint(first)];
    expect(b.stateData).toEqual(a.stateData);
    expect(b.agentOutputs).toEqual(a.agentOutputs);
  });
});

describe("decrypted export", () => {
  it("re-addresses outputs by SHA-256, re-seals the chain, and imports into a plaintext store", async () => {
    const source = manager({ ...sourceDb(), encryption: RING });
    const ids = await makeRun(source, "etl");
    const path = join(dir, "plain.json");
    expect(await source.exportPipeline("etl", path, { decrypt: true })).toMatchObject({ form: "decrypted" });
    const text = await readFile(path, "utf8");
    expect(text).toContain(MARKER);
    expect(JSON.parse(text)).toMatchObject({ export_version: "1.2", readdressed: true });
    expect(text).not.toContain('"sealed"');

    for (const options of Object.values(TARGETS)) {
      const target = manager(options());
      expect((await target.importPipeline(path)).checkpointIds).toEqual(ids);
      expect((await target.validateRun("etl")).valid).toBe(true);
      const before = await source.getCheckpointHistory("etl");
      const after = await target.getCheckpointHistory("etl");
      // Everything but the checksums, which the re-addressed bodies change.
      const keep = ({ checksum: _c, parentChecksum: _p, ...rest }: (typeof before)[number]) => rest;
      expect(after.map(keep)).toEqual(before.map(keep));
      expect(after.map((m) => m.checksum)).not.toEqual(before.map((m) => m.checksum));
      for (const id of ids) {
        const [a, b] = [await source.loadCheckpoint(id), await target.loadCheckpoint(id)];
        expect(b.stateData).toEqual(a.stateData);
        expect({ ...b.agentOutputs }).toEqual({ ...a.agentOutputs });
        expect(b.metadata.timestamp).toEqual(a.metadata.timestamp);
      }
    }
  });

  it("exports a plaintext run as it always did, with or without decrypt", async () => {
    const source = manager(sourceDb());
    await makeRun(source, "etl");
    const [a, b] = [join(dir, "a.json"), join(dir, "b.json")];
    await source.exportPipeline("etl", a);
    expect(await source.exportPipeline("etl", b, { decrypt: true })).toMatchObject({ form: "plain" });
    const strip = (t: string) => JSON.parse(t).checkpoints.map((c: { metadata: unknown }) => c.metadata);
    expect(strip(await readFile(b, "utf8"))).toEqual(strip(await readFile(a, "utf8")));
    expect(JSON.parse(await readFile(a, "utf8"))).not.toHaveProperty("readdressed");
  });
});

describe("plaintext exports into an encrypting store", () => {
  it("seal the run under a new data key; outputs keep their SHA-256 addresses and verify", async () => {
    const source = manager(sourceDb());
    const ids = await makeRun(source, "etl");
    const path = join(dir, "plain.json");
    await source.exportPipeline("etl", path);
    for (const options of Object.values(TARGETS)) {
      const target = manager({ ...options(), encryption: RING });
      await target.importPipeline(path);
      expect((await target.validateRun("etl")).valid).toBe(true);
      expect(await target.getCheckpointHistory("etl")).toEqual(await source.getCheckpointHistory("etl"));
      const store = await target.getStore();
      expect(await store.getRunKey?.("etl")).toBeDefined();
      const raw = await store.inner.getCheckpoint(ids[1] as string);
      expect(raw?.body).not.toContain(MARKER);
      // And it exports sealed in turn, and back.
      const again = join(dir, `again-${randomBytes(3).toString("hex")}.json`);
      expect(await target.exportPipeline("etl", again)).toMatchObject({ form: "sealed" });
      expect(await readFile(again, "utf8")).not.toContain(MARKER);
      const back = manager({ ...TARGETS.memory(), encryption: RING });
      await back.importPipeline(again);
      expect((await back.validateRun("etl")).valid).toBe(true);
    }
  });

  it("still imports 1.0, 1.1 and plain 1.2 fixtures, run and single checkpoint", async () => {
    for (const encryption of [undefined, RING]) {
      const target = manager({ ...TARGETS.memory(), ...(encryption ? { encryption } : {}) });
      for (const version of ["1.0", "1.1", "1.2"]) {
        const run = join(dir, `run-${version}.json`);
        await copyFile(join(FIXTURES, `run-v${version}.export`), run);
        const report = await target.importPipeline(run);
        expect((await target.validateRun(report.pipelineId)).valid).toBe(true);
        const single = await target.importCheckpoint(join(FIXTURES, `checkpoint-v${version}.export`));
        expect((await target.validateCheckpoint(single)).valid).toBe(true);
      }
    }
  });

  it("imports sealed 1.2 fixtures, run and single checkpoint, with their key and only with it", async () => {
    const keys = join(FIXTURES, "TEST-ONLY-sealed-v1.2.keyfile");
    const ring = keyFileOptions(await readFile(keys, "utf8"), keys);
    const [run, single] = ["run-v1.2-sealed.export", "checkpoint-v1.2-sealed.export"].map((f) =>
      join(FIXTURES, f),
    );
    for (const [name, options] of Object.entries(TARGETS)) {
      // A ring without the fixture's key id (k1 here is another key under the same id).
      const keyless = manager({ ...options(), encryption: { keys: { k2: K2 }, activeKeyId: "k2" } });
      await expect(keyless.importPipeline(run as string), name).rejects.toMatchObject({
        code: "CAIRN_KEY_MISSING",
      });
      await expectNothingStored(keyless, "etl_v12_sealed");
      const target = manager({ ...options(), encryption: ring });
      const report = await target.importPipeline(run as string);
      expect(report).toMatchObject({ kind: "run", pipelineId: "etl_v12_sealed" });
      expect(report.checkpointIds).toHaveLength(3);
      expect((await target.validateRun("etl_v12_sealed")).valid).toBe(true);
      const last = await target.loadCheckpoint(report.checkpointIds[2] as string);
      expect(last.agentOutputs.load).toEqual({ rows: ["load", 9], at: new Map([["load", new Set([2])]]) });
      expect(last.stateData).toEqual({ total: 102, when: new Date("2024-01-01T00:00:00Z"), big: 10n ** 20n });
      const one = await target.importCheckpoint(single as string);
      expect((await target.validateCheckpoint(one)).valid).toBe(true);
      const store = await target.getStore();
      expect(await store.getRunKey?.("etl_v12_sealed")).toBeDefined();
    }
  });
});
