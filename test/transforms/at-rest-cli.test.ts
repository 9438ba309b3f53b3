/**
 * `cairn validate` on encrypted runs, on every store a command line can reach: with the key file
 * a run validates (exit 0) and each tampered field makes it exit 4 naming the checkpoint;
 * without the key it exits 7 naming the key id, never 4. Runs the built CLI (the global setup
 * builds it; `npm run build` before running this file alone with CAIRN_SKIP_BUILD=1).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type EnvelopeField, flipField, KEKS, ring, storedRefs, writeRun } from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";
import { runCairn } from "../support/cli.js";

const RUN = "cli-run";
const PERSISTENT = RAW_STORE_KINDS.filter((kind) => kind !== "memory");

describe.each(PERSISTENT)("cairn validate of an encrypted run on the %s store", (kind) => {
  let store: RawStore;
  let dir: string;
  let keyFile: string;
  let ids: string[];
  beforeEach(async () => {
    store = await openRawStore(kind);
    dir = await mkdtemp(join(tmpdir(), "cairn-at-rest-cli-"));
    keyFile = join(dir, "keys.json");
    const keys = { k1: KEKS.k1.toString("base64") };
    await writeFile(keyFile, JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys }), {
      mode: 0o600,
    });
    ids = await writeRun(store.manager({ encryption: ring(), compression: "gzip" }), RUN);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const validate = (...extra: string[]) =>
    runCairn(["validate", "--pipeline-id", RUN, "--store", store.url as string, ...extra], { cwd: dir });

  it("without the key: exit 7 naming the key id", async () => {
    const result = await validate();
    expect(result.code).toBe(7);
    expect(result.stderr).toContain("k1");
    // Also when a record was changed: without the key that cannot be told, so it is no corruption.
    await store.setBody(ids[2] as string, flipField(await store.body(ids[2] as string), "d"));
    expect((await validate()).code).toBe(7);
  });

  it("with the key file: exit 0; CAIRN_KEY_FILE is the same", async () => {
    expect((await validate("--key-file", keyFile)).code).toBe(0);
    const viaEnv = await runCairn(["validate", "--pipeline-id", RUN, "--store", store.url as string], {
      cwd: dir,
      env: { CAIRN_KEY_FILE: keyFile },
    });
    expect(viaEnv.code).toBe(0);
  });

  it.each(["d", "e.n", "e.k", "z", "o"] as EnvelopeField[])(
    "with the key file, the newest checkpoint's %s changed: exit 4 naming it",
    async (field) => {
      const newest = ids[2] as string;
      await store.setBody(newest, flipField(await store.body(newest), field));
      const result = await validate("--key-file", keyFile);
      expect(result.code).toBe(4);
      expect(result.stdout).toContain(newest);
    },
  );

  it("with the key file, an output's d changed: exit 4 naming its checkpoint", async () => {
    const newest = ids[2] as string;
    const hash = storedRefs(await store.body(newest)).score as string;
    const output = (await store.outputs(RUN)).get(hash) as string;
    await store.setOutput(RUN, hash, flipField(output, "d"));
    const result = await validate("--key-file", keyFile);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain(newest);
  });
});
