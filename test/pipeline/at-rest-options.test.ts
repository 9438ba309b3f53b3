/**
 * Pipeline options `checkpointCompression` and `checkpointEncryption`, and a pipeline file's
 * `checkpoint.compression` and `checkpoint.encryption` (`key_file` or `key_env`, never keys).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, ErrorCode, InvalidPipelineError, Pipeline } from "../../src/index.js";
import { keyFileText, writeKeyFile } from "../../src/transforms/key-file.js";

const MARKER = "PIPELINE-MARKER-91c2";
const key = randomBytes(32).toString("base64");
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-pipeline-rest-"));
  await writeFile(
    join(dir, "agents.mjs"),
    `export const a = () => ({ text: ${JSON.stringify(`${MARKER} `.repeat(300))} });\n`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  delete process.env.CAIRN_TEST_KEYS;
});

/** Every byte of the SQLite store in the test's folder, as text. */
async function rawStore(): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.startsWith("c.db"));
  return Buffer.concat(await Promise.all(files.map((f) => readFile(join(dir, f))))).toString("latin1");
}

/** The file's text with a `checkpoint:` block ending in `extra` lines. */
const pipelineFile = (extra: string) => `name: rest
checkpoint:
  enabled: true
  store: sqlite:${join(dir, "c.db")}
${extra}
steps:
  - { name: a, agent: ./agents.mjs:a }
`;

async function problems(path: string): Promise<string[]> {
  try {
    await Pipeline.fromFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPipelineError);
    return [...(error as InvalidPipelineError).problems];
  }
  throw new Error("expected InvalidPipelineError");
}

describe("Pipeline options", () => {
  it("encrypts and compresses the checkpoints of the manager it builds", async () => {
    const pipeline = new Pipeline({
      name: "rest",
      checkpointEnabled: true,
      checkpointStore: `sqlite:${join(dir, "c.db")}`,
      checkpointCompression: "gzip",
      checkpointEncryption: { keys: { k1: key }, activeKeyId: "k1" },
      steps: [{ name: "a", agent: () => ({ text: `${MARKER} `.repeat(300) }) }],
    });
    expect((await pipeline.checkpointManager?.getStore())?.encrypts).toBe(true);
    const results = await pipeline.execute();
    await pipeline.close();
    expect(await rawStore()).not.toContain(MARKER);
    const reader = new CheckpointManager({
      store: `sqlite:${join(dir, "c.db")}`,
      encryption: { keys: { k1: key }, activeKeyId: "k1" },
    });
    try {
      const latest = await reader.loadLatestCheckpoint(results.pipelineId);
      expect(latest?.agentOutputs.a).toEqual({ text: `${MARKER} `.repeat(300) });
      const stats = await reader.getStatistics();
      expect(stats.atRest.encryptedRecords).toBe(stats.atRest.records);
      expect(stats.atRest.compressedRecords).toBeGreaterThan(0);
    } finally {
      await reader.close();
    }
  });

  it("reports a bad key ring and at-rest options beside a given manager as pipeline problems", () => {
    const steps = [{ name: "a", agent: () => ({}) }];
    expect(
      () =>
        new Pipeline({
          name: "rest",
          checkpointEnabled: true,
          checkpointStore: "memory:",
          checkpointEncryption: { keys: { k1: "c2hvcnQ=" }, activeKeyId: "k1" },
          steps,
        }),
    ).toThrow(/encryption\.keys\.k1 is 5 bytes long/);
    const manager = new CheckpointManager({ store: "memory:" });
    expect(
      () =>
        new Pipeline({
          name: "rest",
          checkpointEnabled: true,
          checkpointStore: manager,
          checkpointCompression: "gzip",
          steps,
        }),
    ).toThrow(/set compression and encryption on the CheckpointManager/);
  });
});

describe("pipeline files", () => {
  it("reads checkpoint.encryption.key_file (beside the file) and checkpoint.compression", async () => {
    await writeKeyFile(join(dir, "k.keys"), { activeKeyId: "k1", keys: { k1: key } });
    const path = join(dir, "p.yaml");
    await writeFile(
      path,
      pipelineFile("  compression: { algorithm: gzip, min_bytes: 64 }\n  encryption: { key_file: ./k.keys }"),
    );
    const pipeline = await Pipeline.fromFile(path);
    await pipeline.execute();
    await pipeline.close();
    expect(await rawStore()).not.toContain(MARKER);
    const keyless = new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
    try {
      // Two checkpoints (a, pipeline_complete) and one output; the output compresses.
      const stats = await keyless.getStatistics();
      expect(stats.atRest).toMatchObject({ encryptedRecords: 3, records: 3 });
      expect(stats.atRest.compressedRecords).toBeGreaterThan(0);
    } finally {
      await keyless.close();
    }
  });

  it("reads checkpoint.encryption.key_env: a variable holding a key file's text", async () => {
    process.env.CAIRN_TEST_KEYS = keyFileText({ activeKeyId: "k9", keys: { k9: key } });
    const path = join(dir, "p.yaml");
    await writeFile(path, pipelineFile("  encryption: { key_env: CAIRN_TEST_KEYS }"));
    const pipeline = await Pipeline.fromFile(path);
    const results = await pipeline.execute();
    await pipeline.close();
    expect(await rawStore()).not.toContain(MARKER);
    const keyless = new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
    try {
      await expect(keyless.loadLatestCheckpoint(results.pipelineId)).rejects.toMatchObject({
        code: ErrorCode.KeyMissing,
        keyId: "k9",
      });
    } finally {
      await keyless.close();
    }
  });

  it("refuses keys in the file, saying why, and reports a missing key file or variable", async () => {
    const path = join(dir, "p.yaml");
    await writeFile(path, pipelineFile(`  encryption: { keys: { k1: ${key} }, active_key_id: k1 }`));
    const [keys] = await problems(path);
    expect(keys).toContain("checkpoint.encryption must not hold keys");
    expect(keys).toContain("key_file");
    expect(keys).not.toContain(key);
    await writeFile(path, pipelineFile(`  encryption: { key_file: ./k.keys, key: ${key} }`));
    expect((await problems(path))[0]).toContain("must not hold keys");
    await writeFile(path, pipelineFile("  encryption: { key_file: ./absent.keys }"));
    expect((await problems(path))[0]).toContain(`key file ${join(dir, "absent.keys")} does not exist`);
    await writeFile(path, pipelineFile("  encryption: { key_env: CAIRN_TEST_UNSET_VARIABLE }"));
    expect((await problems(path))[0]).toContain("CAIRN_TEST_UNSET_VARIABLE, which is not set");
    await writeFile(path, pipelineFile("  encryption: { key_file: ./a.keys, key_env: X }"));
    expect((await problems(path))[0]).toContain("exactly one of key_file");
    await writeFile(path, pipelineFile("  encryption: ./k.keys"));
    expect((await problems(path))[0]).toContain("must be { key_file: <path> } or { key_env: <VARIABLE> }");
  });
});
