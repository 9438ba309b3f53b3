/**
 * `cairn analyze`, `cairn report`, `cairn list --pipeline-id` and `cairn chain` on an encrypted run
 * without its key (issue 13): they exit 0 and name the key id; `cairn validate` still exits 7 (it cannot vouch for what it cannot open).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CliResult, runCairn } from "../support/cli.js";

const MARKER = "PLAINTEXT-MARKER-5d21";
const STORE = ["--store", "sqlite:./c.db"];
let dir: string;

function cairn(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env: { CAIRN_KEY_FILE: undefined, ...env } });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-analyze-sealed-"));
  await writeFile(
    join(dir, "agents.mjs"),
    `export const a = () => ({ rows: "${MARKER}" });\nexport const b = () => ({ n: 2 });\n`,
  );
  await writeFile(
    join(dir, "p.yaml"),
    "name: secret\nsteps:\n  - { name: a, agent: ./agents.mjs:a }\n  - { name: b, agent: ./agents.mjs:b }\n",
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("analyze and report exit 0 without the key and name it; validate exits 7", {
  timeout: 90_000,
}, async () => {
  expect((await cairn(["keys", "generate", "--key-file", "k.keys"])).code).toBe(0);
  const run = await cairn(["run", "p.yaml", ...STORE, "--key-file", "k.keys", "--json"]);
  expect(run.code).toBe(0);
  const pipelineId = (JSON.parse(run.stdout) as { pipelineId: string }).pipelineId;

  const analyze = await cairn(["analyze", ...STORE, "--pipeline-id", pipelineId]);
  expect(analyze.code).toBe(0);
  expect(analyze.stdout).toContain("3 (3 not verified: encrypted under key id k1; pass --key-file)");
  expect(analyze.stdout).toContain("finished (not verified: encrypted)");
  expect(analyze.stdout).toContain(
    `cairn analyze --pipeline-id ${pipelineId} --key-file <key-file> --store sqlite:./c.db`,
  );
  expect(analyze.stdout).not.toContain("invalid");
  expect(analyze.stdout).not.toContain(MARKER);
  const json = JSON.parse((await cairn(["analyze", ...STORE, "--pipeline-id", pipelineId, "--json"])).stdout);
  expect(json.checkpoints).toMatchObject({
    total: 3,
    healthy: 0,
    corrupted: 0,
    sealed: 3,
    keyMissing: { keyId: "k1", kind: "key-encryption-key" },
  });

  const report = await cairn(["report", ...STORE, "--pipeline-id", pipelineId]);
  expect(report.code).toBe(0);
  expect(report.stdout).toContain("3 (3 not verified: encrypted under key id k1; pass --key-file)");
  expect(report.stdout).not.toContain(MARKER);

  // The run's listing and chain work too: each checkpoint not verified, never invalid.
  for (const args of [
    ["list", "--pipeline-id", pipelineId],
    ["chain", "--pipeline-id", pipelineId],
  ]) {
    const shown = await cairn([...args, ...STORE]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain("encrypted under key id k1");
    // No checkpoint shown invalid (the chain's legend names the symbol, nothing more).
    expect(shown.stdout).not.toMatch(/^⚠|invalid \(/m);
    expect(shown.stdout).not.toContain(MARKER);
  }

  const validate = await cairn(["validate", ...STORE, "--pipeline-id", pipelineId]);
  expect(validate.code).toBe(7);
  expect(validate.stderr).toContain("k1");

  // With the key everything verifies, as before.
  const keyed = await cairn(["analyze", ...STORE, "--pipeline-id", pipelineId, "--key-file", "k.keys"]);
  expect(keyed.code).toBe(0);
  expect(keyed.stdout).toContain("Checkpoints:     3 (3 healthy, 0 invalid, 0 orphaned)");
  expect(keyed.stdout).toContain("Status:          finished");
});
