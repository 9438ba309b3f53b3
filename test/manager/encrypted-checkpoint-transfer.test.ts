/**
 * Single checkpoints of encrypted runs: exported sealed with the run's key record, imported into a
 * new run or one under the same data key (else CAIRN_CONFLICT, nothing written); `decrypt` gives
 * the checkpoint as in a decrypted run export; `import --overwrite` keeps an encrypted run's key.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";

const RING = { keys: { k1: randomBytes(32).toString("base64") }, activeKeyId: "k1" };
const MARKER = "MARKER-c41e";
const STAGES = ["extract", "transform", "load"];

let dir: string;
const managers: CheckpointManager[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-encrypted-checkpoint-"));
});
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await rm(dir, { recursive: true, force: true });
});

function manager(options: CheckpointManagerOptions): CheckpointManager {
  const m = new CheckpointManager(options);
  managers.push(m);
  return m;
}

const sqlite = (name: string) => ({ store: `sqlite:${join(dir, `${name}.db`)}` });

async function makeRun(m: CheckpointManager, pipelineId: string, tag = ""): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await m.createCheckpoint({
        pipelineId,
        stageName: stage,
        stageIndex: i,
        stateData: { secret: `${MARKER}-state-${i}${tag}` },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: { [stage]: { rows: [`${MARKER}-${stage}${tag}`, i] } },
        status: "completed",
      }),
    );
  }
  return ids;
}

describe("sealed single-checkpoint export", () => {
  it("holds no plaintext; imports into a new run with the key record, and into the same run with overwrite", async () => {
    const source = manager({ ...sqlite("source"), encryption: RING });
    const ids = await makeRun(source, "etl");
    const path = join(dir, "one.json");
    await source.exportCheckpoint(ids[1] as string, path);
    const text = await readFile(path, "utf8");
    expect(text).not.toContain(MARKER);
    const runKey = await (await source.getStore()).getRunKey?.("etl");
    expect(JSON.parse(text)).toMatchObject({ export_version: "1.2", sealed: true, run_key: runKey });

    const fresh = manager({ store: "memory:", encryption: RING });
    expect(await fresh.importCheckpoint(path)).toBe(ids[1]);
    expect(await (await fresh.getStore()).getRunKey?.("etl")).toBe(runKey);
    expect(await fresh.loadCheckpoint(ids[1] as string)).toStrictEqual(
      await source.loadCheckpoint(ids[1] as string),
    );

    // Into its own run: a conflict unless overwrite, then replaced with the run's key kept.
    await expect(source.importCheckpoint(path)).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
    expect(await source.importCheckpoint(path, { overwrite: true })).toBe(ids[1]);
    expect(await (await source.getStore()).getRunKey?.("etl")).toBe(runKey);
    expect((await source.validateRun("etl")).valid).toBe(true);

    // Into a copy of the run without the checkpoint (same data key): stored as it is.
    const copy = manager({ ...sqlite("copy"), encryption: RING });
    const runPath = join(dir, "run.json");
    await source.exportPipeline("etl", runPath);
    await copy.importPipeline(runPath);
    await (await copy.getStore()).deleteCheckpoints("etl", [ids[2] as string]);
    const last = join(dir, "last.json");
    await source.exportCheckpoint(ids[2] as string, last);
    expect(await copy.importCheckpoint(last)).toBe(ids[2]);
    expect((await copy.validateRun("etl")).valid).toBe(true);
  });

  it("is refused by a plaintext run or one under another data key, and without the key; nothing written", async () => {
    const source = manager({ ...sqlite("source"), encryption: RING });
    const ids = await makeRun(source, "etl");
    const path = join(dir, "one.json");
    await source.exportCheckpoint(ids[1] as string, path);

    const plainRun = manager({ ...sqlite("plain"), encryption: RING });
    // A plaintext run of the same id, written before encryption was on.
    const before = manager(sqlite("plain"));
    await makeRun(before, "etl", "-other");
    await before.close();
    const history = await plainRun.getCheckpointHistory("etl");
    await expect(plainRun.importCheckpoint(path, { overwrite: true })).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
      message: expect.stringContaining("not encrypted"),
    });
    expect(await plainRun.getCheckpointHistory("etl")).toEqual(history);

    const otherKey = manager({ ...sqlite("other"), encryption: RING });
    await makeRun(otherKey, "etl", "-other");
    const otherHistory = await otherKey.getCheckpointHistory("etl");
    await expect(otherKey.importCheckpoint(path, { overwrite: true })).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
      message: expect.stringContaining("another data key"),
    });
    expect(await otherKey.getCheckpointHistory("etl")).toEqual(otherHistory);

    const keyless = manager({ store: "memory:" });
    await expect(keyless.importCheckpoint(path)).rejects.toMatchObject({
      code: "CAIRN_KEY_MISSING",
      keyId: "k1",
    });
    expect(await keyless.listPipelines()).toEqual([]);

    // A flipped ciphertext byte is corrupt.
    const text = await readFile(path, "utf8");
    const at = text.indexOf('\\"d\\":\\"') + 12;
    expect(at).toBeGreaterThan(12);
    await writeFile(path, text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1));
    const target = manager({ store: "memory:", encryption: RING });
    await expect(target.importCheckpoint(path)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    expect(await target.listPipelines()).toEqual([]);
  });
});

describe("decrypted single-checkpoint export", () => {
  it("matches the decrypted run export, so it replaces a checkpoint of the imported run with a valid chain", async () => {
    const source = manager({ ...sqlite("source"), encryption: RING });
    const ids = await makeRun(source, "etl");
    const runPath = join(dir, "run.json");
    await source.exportPipeline("etl", runPath, { decrypt: true });
    const one = join(dir, "one.json");
    await source.exportCheckpoint(ids[1] as string, one, { decrypt: true });
    const single = JSON.parse(await readFile(one, "utf8"));
    expect(single).toMatchObject({ readdressed: true });
    expect(JSON.stringify(single)).toContain(MARKER);
    const lines = JSON.parse(await readFile(runPath, "utf8")).checkpoints;
    expect(single.metadata).toEqual(lines[1].metadata);

    const plain = manager(sqlite("plain"));
    await plain.importPipeline(runPath);
    expect(await plain.importCheckpoint(one, { overwrite: true })).toBe(ids[1]);
    expect((await plain.validateRun("etl")).valid).toBe(true);
  });
});

describe("import --overwrite of a plaintext checkpoint into an encrypted run", () => {
  it("seals it under the run's data key and carries the rest of the run as stored, keyed outputs and all", async () => {
    const m = manager({ ...sqlite("source"), encryption: RING });
    // Two checkpoints without outputs, so a decrypted export of the second keeps its checksum
    // and chain; the third has keyed outputs, which a new data key would orphan.
    const ids: string[] = [];
    for (const [i, stage] of STAGES.entries()) {
      ids.push(
        await m.createCheckpoint({
          pipelineId: "etl",
          stageName: stage,
          stageIndex: i,
          stateData: { secret: `${MARKER}-state-${i}` },
          completedStages: STAGES.slice(0, i + 1),
          agentOutputs: i < 2 ? {} : { [stage]: { rows: [`${MARKER}-${stage}`, i] } },
          status: "completed",
        }),
      );
    }
    const store = await m.getStore();
    const runKey = await store.getRunKey?.("etl");
    const path = join(dir, "one.json");
    await m.exportCheckpoint(ids[1] as string, path, { decrypt: true });
    expect(await readFile(path, "utf8")).toContain(MARKER);
    expect(await m.importCheckpoint(path, { overwrite: true })).toBe(ids[1]);
    expect(await store.getRunKey?.("etl")).toBe(runKey);
    const raw = await store.inner.getCheckpoint(ids[1] as string);
    expect(raw?.body).not.toContain(MARKER);
    expect((await m.validateRun("etl")).valid).toBe(true);
    expect((await m.loadCheckpoint(ids[2] as string)).agentOutputs).toEqual({
      load: { rows: [`${MARKER}-load`, 2] },
    });
  });
});
