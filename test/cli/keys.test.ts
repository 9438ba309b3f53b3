/**
 * `cairn keys`, `--key-file`/`CAIRN_KEY_FILE` on the commands that read data, `--compression` on
 * `run`, `inspect` with and without the key, `stats` at rest, and `cairn rekey`: the built CLI.
 */
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readKeyFileContent, writeKeyFile } from "../../src/transforms/key-file.js";
import { type CliResult, runCairn } from "../support/cli.js";

const MARKER = "PLAINTEXT-MARKER-7f3a";
let dir: string;

function cairn(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env: { CAIRN_KEY_FILE: undefined, ...env } });
}

/** Every stored byte of the SQLite store (database and WAL), as text. */
async function rawStore(): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.startsWith("c.db"));
  const parts = await Promise.all(files.map((f) => readFile(join(dir, f))));
  return Buffer.concat(parts).toString("latin1");
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-keys-"));
  await writeFile(
    join(dir, "agents.mjs"),
    `export const a = () => ({ rows: ${JSON.stringify(`${MARKER} `.repeat(200))} });\nexport const b = () => ({ n: 2 });\n`,
  );
  await writeFile(
    join(dir, "p.yaml"),
    "name: secret\nsteps:\n  - { name: a, agent: ./agents.mjs:a }\n  - { name: b, agent: ./agents.mjs:b }\n",
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("cairn keys", { timeout: 90_000 }, () => {
  it("generates a 0600 key file, adds active keys, lists ids and never prints a key", async () => {
    const first = await cairn(["keys", "generate", "--key-file", "k.keys"]);
    expect(first).toMatchObject({ code: 0, stdout: "k1\n" });
    if (process.platform !== "win32") expect((await stat(join(dir, "k.keys"))).mode & 0o777).toBe(0o600);
    const second = await cairn(["keys", "generate"], { CAIRN_KEY_FILE: "k.keys" });
    expect(second.code).toBe(0);
    expect(second.stdout).toBe("k2\n");
    expect(second.stderr).toContain("cairn rekey");
    const named = await cairn(["keys", "generate", "--key-file", "k.keys", "--id", "spring-2027", "--json"]);
    expect(JSON.parse(named.stdout)).toMatchObject({
      keyId: "spring-2027",
      created: false,
      activeKeyId: "spring-2027",
    });
    const list = await cairn(["keys", "list", "--key-file", "k.keys"]);
    expect(list).toMatchObject({ code: 0, stdout: "k1\nk2\nspring-2027  (active)\n" });
    const json = JSON.parse((await cairn(["keys", "list", "--key-file", "k.keys", "--json"])).stdout);
    expect(json).toEqual({
      keyFile: "k.keys",
      activeKeyId: "spring-2027",
      keyIds: ["k1", "k2", "spring-2027"],
    });
    const { keys } = await readKeyFileContent(join(dir, "k.keys"));
    for (const out of [first, second, named, list]) {
      for (const key of Object.values(keys)) expect(out.stdout + out.stderr).not.toContain(key);
    }
    // A key id names one key for good.
    const again = await cairn(["keys", "generate", "--key-file", "k.keys", "--id", "k1"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already has a key k1");
    expect((await cairn(["keys", "list"])).code).toBe(2);
  });

  it.skipIf(process.platform === "win32")(
    "refuses a key file others can read, on every command",
    async () => {
      await cairn(["keys", "generate", "--key-file", "k.keys"]);
      await chmod(join(dir, "k.keys"), 0o644);
      for (const args of [
        ["keys", "list", "--key-file", "k.keys"],
        ["list", "--store", "sqlite:./c.db", "--key-file", "k.keys"],
      ]) {
        const out = await cairn(args);
        expect(out.code).toBe(2);
        expect(out.stderr).toContain("chmod 600 k.keys");
      }
      const missing = await cairn(["list", "--store", "sqlite:./c.db"], { CAIRN_KEY_FILE: "nope.keys" });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("key file nope.keys does not exist");
    },
  );
});

const STORE = ["--store", "sqlite:./c.db"];
const SLOW = 90_000;

/** A key file with k1, and one run written encrypted and compressed with it: its id and its stage b checkpoint. */
async function encryptedRun(): Promise<{ pipelineId: string; checkpointId: string }> {
  await cairn(["keys", "generate", "--key-file", "k.keys"]);
  const run = await cairn([
    "run",
    "p.yaml",
    ...STORE,
    "--key-file",
    "k.keys",
    "--compression",
    "gzip",
    "--json",
  ]);
  expect(run.code).toBe(0);
  const pipelineId = (JSON.parse(run.stdout) as { pipelineId: string }).pipelineId;
  const history = await cairn(["chain", ...STORE, "--pipeline-id", pipelineId, "--key-file", "k.keys"]);
  expect(history.code).toBe(0);
  const checkpointId = /\b(secret_\S+_b_\S+)/.exec(history.stdout)?.[1] as string;
  expect(checkpointId).toBeDefined();
  return { pipelineId, checkpointId };
}

describe("encrypted runs on the command line", () => {
  it(
    "runs encrypted and compressed; inspect, validate and stats with and without the key",
    async () => {
      const { checkpointId, pipelineId } = await encryptedRun();
      expect(await rawStore()).not.toContain(MARKER);
      const listed = JSON.parse((await cairn(["list", ...STORE, "--json"])).stdout) as { status: string }[];
      expect(listed.map((r) => r.status)).toEqual(["completed"]);

      const locked = await cairn(["inspect", ...STORE, "--checkpoint-id", checkpointId]);
      expect(locked.code).toBe(7);
      expect(locked.stdout).toContain(`Pipeline:       ${pipelineId} (secret)`);
      expect(locked.stdout).toContain("At rest:        compressed with gzip, encrypted under key id k1");
      expect(locked.stdout).toContain("Completed stages: a, b");
      expect(locked.stdout).toContain("Data:       encrypted under key id k1");
      expect(locked.stdout).not.toContain(MARKER);
      const lockedJson = JSON.parse(
        (await cairn(["inspect", ...STORE, "--checkpoint-id", checkpointId, "--json"])).stdout,
      );
      expect(lockedJson.keyMissing).toMatchObject({ keyId: "k1", kind: "key-encryption-key" });
      expect(lockedJson.stateKeys).toBeNull();

      const open = await cairn(["inspect", ...STORE, "--checkpoint-id", checkpointId], {
        CAIRN_KEY_FILE: "k.keys",
      });
      expect(open.code).toBe(0);
      expect(open.stdout).toContain("At rest:        compressed with gzip, encrypted under key id k1");
      expect(open.stdout).toContain("Validation: valid");

      expect((await cairn(["validate", ...STORE, "--all"])).code).toBe(7);
      expect((await cairn(["validate", ...STORE, "--all", "--key-file", "k.keys"])).code).toBe(0);
      const stats = JSON.parse((await cairn(["stats", ...STORE, "--json"])).stdout);
      // 3 checkpoints and 2 outputs; the big output compresses, every record is encrypted.
      expect(stats.atRest).toMatchObject({ records: 5, encryptedRecords: 5 });
      expect(stats.atRest.compressedRecords).toBeGreaterThanOrEqual(1);
      const keyed = JSON.parse((await cairn(["stats", ...STORE, "--json", "--key-file", "k.keys"])).stdout);
      expect(keyed.atRest).toMatchObject({ records: 5, encryptedRecords: 5, unsizedRecords: 0 });
      expect(keyed.atRest.storedBytes).toBeLessThan(keyed.atRest.plainBytes);
      const text = await cairn(["stats", ...STORE, "--key-file", "k.keys"]);
      expect(text.stdout).toMatch(
        /At rest: +\S+ \S+ stored, \S+ \S+ uncompressed \(\d+%\); compressed \d\/5 records/,
      );
    },
    SLOW,
  );

  it(
    "rotates: k2 becomes active, rekey re-wraps, k1 leaves the key file, everything reads",
    async () => {
      const { checkpointId } = await encryptedRun();
      expect((await cairn(["keys", "generate", "--key-file", "k.keys"])).stdout).toBe("k2\n");
      const rekey = await cairn(["rekey", ...STORE, "--key-file", "k.keys"]);
      expect(rekey.code).toBe(0);
      expect(rekey.stdout).toContain("Re-wrapped 1 run under key k2");
      const again = JSON.parse((await cairn(["rekey", ...STORE, "--key-file", "k.keys", "--json"])).stdout);
      expect(again).toEqual({ toKeyId: "k2", runs: 1, rewrapped: 0, alreadyCurrent: 1, plaintext: 0 });
      const { keys } = await readKeyFileContent(join(dir, "k.keys"));
      await writeKeyFile(join(dir, "only-k2.keys"), { activeKeyId: "k2", keys: { k2: keys.k2 as string } });
      expect((await cairn(["validate", ...STORE, "--all", "--key-file", "only-k2.keys"])).code).toBe(0);
      const inspected = await cairn([
        "inspect",
        ...STORE,
        "--checkpoint-id",
        checkpointId,
        "--key-file",
        "only-k2.keys",
      ]);
      expect(inspected.stdout).toContain("encrypted under key id k2");
      expect((await cairn(["rekey", ...STORE])).code).toBe(2);
    },
    SLOW,
  );

  it(
    "keeps the pipeline file's encryption when the store comes from --store",
    async () => {
      await cairn(["keys", "generate", "--key-file", "k.keys"]);
      await writeFile(
        join(dir, "enc.yaml"),
        "name: secret\ncheckpoint: { encryption: { key_file: ./k.keys } }\nsteps:\n  - { name: a, agent: ./agents.mjs:a }\n",
      );
      const run = await cairn(["run", "enc.yaml", ...STORE]);
      expect(run.code).toBe(0);
      expect(await rawStore()).not.toContain(MARKER);
      const stats = JSON.parse((await cairn(["stats", ...STORE, "--json"])).stdout);
      expect(stats.atRest.encryptedRecords).toBe(stats.atRest.records);
    },
    SLOW,
  );
});
