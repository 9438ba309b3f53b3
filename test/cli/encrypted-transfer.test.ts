/**
 * `cairn export` and `cairn import` of encrypted runs through the built CLI: sealed by default and
 * needing the key file (`--key-file` or `CAIRN_KEY_FILE`; exit 7 without it), `--decrypt` on
 * purpose, a tampered file refused with exit 4 and nothing stored.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { type CliResult, runCairn } from "../support/cli.js";

const KEY = randomBytes(32).toString("base64");
const RING = { keys: { k1: KEY }, activeKeyId: "k1" };
const MARKER = "MARKER-cli-5d2b";
const STAGES = ["extract", "transform", "load"];

let dir: string;
let keyFile: string;

function cairn(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env: { CAIRN_KEY_FILE: undefined, ...env } });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-encrypted-"));
  keyFile = join(dir, "keys.json");
  await writeFile(keyFile, JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: { k1: KEY } }), {
    mode: 0o600,
  });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const db = (name: string) => ["--store", `sqlite:${join(dir, `${name}.db`)}`];

/** An encrypted run of three checkpoints in sqlite store `name`; returns the ids. */
async function makeRun(name: string): Promise<string[]> {
  const manager = new CheckpointManager({ store: `sqlite:${join(dir, `${name}.db`)}`, encryption: RING });
  const ids: string[] = [];
  try {
    for (const [i, stage] of STAGES.entries()) {
      ids.push(
        await manager.createCheckpoint({
          pipelineId: "etl",
          stageName: stage,
          stageIndex: i,
          stateData: { secret: `${MARKER}-${i}` },
          completedStages: STAGES.slice(0, i + 1),
          pendingStages: STAGES.slice(i + 1),
          agentOutputs: { [stage]: { rows: [`${MARKER}-${stage}`] } },
          status: "completed",
        }),
      );
    }
  } finally {
    await manager.close();
  }
  return ids;
}

async function runsIn(name: string): Promise<number> {
  const manager = new CheckpointManager({ store: `sqlite:${join(dir, `${name}.db`)}` });
  try {
    return (await manager.listPipelines()).length;
  } finally {
    await manager.close();
  }
}

describe("cairn export / import of an encrypted run", () => {
  it("exports sealed with --key-file and imports only with the key (exit 7 without)", async () => {
    await makeRun("source");
    const output = join(dir, "run.json");
    const keyless = await cairn(["export", "--pipeline-id", "etl", "--output", output, ...db("source")]);
    expect(keyless.code).toBe(7);
    expect(keyless.stderr).toContain("k1");
    await expect(stat(output)).rejects.toMatchObject({ code: "ENOENT" });

    const exported = await cairn([
      "export",
      "--pipeline-id",
      "etl",
      "--output",
      output,
      "--key-file",
      keyFile,
      ...db("source"),
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain("encrypted");
    expect(await readFile(output, "utf8")).not.toContain(MARKER);

    const refused = await cairn(["import", "--input", output, ...db("target")]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain("key id k1");
    expect(await runsIn("target")).toBe(0);

    const imported = await cairn(["import", "--input", output, ...db("target")], { CAIRN_KEY_FILE: keyFile });
    expect(imported.code, imported.stderr).toBe(0);
    // (`validate --key-file` comes with the shared key flags: checked through the library here.)
    const target = new CheckpointManager({ store: `sqlite:${join(dir, "target.db")}`, encryption: RING });
    try {
      expect((await target.validateRun("etl")).valid).toBe(true);
    } finally {
      await target.close();
    }
  });

  it("refuses a tampered export with exit 4, storing nothing", async () => {
    await makeRun("source");
    const output = join(dir, "run.json");
    const args = ["--key-file", keyFile];
    expect(
      (await cairn(["export", "--pipeline-id", "etl", "--output", output, ...args, ...db("source")])).code,
    ).toBe(0);
    const text = await readFile(output, "utf8");
    const at = text.indexOf('\\"d\\":\\"') + 12;
    expect(at).toBeGreaterThan(12);
    await writeFile(output, text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1));
    const refused = await cairn(["import", "--input", output, ...args, ...db("target")]);
    expect(refused.code).toBe(4);
    expect(await runsIn("target")).toBe(0);
  });

  it("--decrypt writes plaintext on purpose, which a store without keys imports and validates", async () => {
    const ids = await makeRun("source");
    const output = join(dir, "plain.json");
    const exported = await cairn([
      "export",
      "--pipeline-id",
      "etl",
      "--output",
      output,
      "--decrypt",
      "--key-file",
      keyFile,
      "--json",
      ...db("source"),
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ form: "decrypted", checkpoints: 3 });
    const text = await readFile(output, "utf8");
    expect(text).toContain(MARKER);
    expect(JSON.parse(text)).toMatchObject({ readdressed: true });
    expect((await cairn(["import", "--input", output, ...db("plain")])).code).toBe(0);
    const validated = await cairn(["validate", "--pipeline-id", "etl", ...db("plain")]);
    expect(validated.code, validated.stdout + validated.stderr).toBe(0);

    // One checkpoint, sealed and decrypted.
    const one = join(dir, "one.json");
    const sealed = await cairn([
      "export",
      "--checkpoint-id",
      ids[1] as string,
      "--output",
      one,
      "--key-file",
      keyFile,
      ...db("source"),
    ]);
    expect(sealed.code, sealed.stderr).toBe(0);
    expect(await readFile(one, "utf8")).not.toContain(MARKER);
    const decrypted = await cairn([
      "export",
      "--checkpoint-id",
      ids[1] as string,
      "--output",
      one,
      "--decrypt",
      "--key-file",
      keyFile,
      ...db("source"),
    ]);
    expect(decrypted.code, decrypted.stderr).toBe(0);
    expect(decrypted.stdout).toContain("decrypted");
    expect(await readFile(one, "utf8")).toContain(MARKER);
  });
});
