/**
 * Which store `cairn run` uses: the store options, else `CAIRN_STORE`, else the pipeline file's
 * checkpoint section, as for every other command. It prints the store it uses (never a password)
 * and warns when checkpointing is off. Before, `CAIRN_STORE` was ignored by `cairn run`.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliResult, runCairn } from "../support/cli.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

let dir: string;

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

/** The run ids the store at `url` holds; none when there is no store there (exit 3). */
async function runsIn(url: string): Promise<string[]> {
  const listed = await cairn(["list", "--store", url, "--json"]);
  if (listed.code === 3 && listed.stderr.includes("CAIRN_NOT_FOUND")) return [];
  expect(listed.code).toBe(0);
  return (JSON.parse(listed.stdout) as { pipelineId: string }[]).map((r) => r.pipelineId);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-run-store-"));
  await writeFile(join(dir, "agents.mjs"), "export const a = () => ({ v: 1 });\n");
  // No checkpoint section: checkpointing is off unless a flag or CAIRN_STORE names a store.
  await writeFile(join(dir, "bare.yaml"), "name: bare\nsteps:\n  - { name: a, agent: ./agents.mjs:a }\n");
  await writeFile(
    join(dir, "own.yaml"),
    `name: own
checkpoint: { enabled: true, strategy: file, config: { base_path: ./own-store } }
steps:
  - { name: a, agent: ./agents.mjs:a }
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("checkpoints into CAIRN_STORE when the file has no checkpoint section, and says so", async () => {
  const run = await cairn(["run", "bare.yaml"], { CAIRN_STORE: "sqlite:./env.db" });
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`Store: sqlite:${join(dir, "env.db")} (from CAIRN_STORE)`);
  expect(run.stderr).not.toContain("checkpointing is off");
  const runs = await runsIn("sqlite:./env.db");
  expect(runs).toHaveLength(1);
  expect(runs[0]).toMatch(/^bare_/);
});

it("prefers CAIRN_STORE over the file's checkpoint section, and the store options over both", async () => {
  const env = await cairn(["run", "own.yaml"], { CAIRN_STORE: "sqlite:./env.db" });
  expect(env.code).toBe(0);
  expect(await runsIn("sqlite:./env.db")).toHaveLength(1);
  expect(await runsIn("file:./own-store")).toEqual([]);

  const flag = await cairn(["run", "own.yaml", "--store", "sqlite:./flag.db"], {
    CAIRN_STORE: "sqlite:./env.db",
  });
  expect(flag.code).toBe(0);
  expect(flag.stdout).toContain("(from the store options)");
  expect(await runsIn("sqlite:./flag.db")).toHaveLength(1);
  expect(await runsIn("sqlite:./env.db")).toHaveLength(1);

  // Neither: the file's own section chooses.
  const own = await cairn(["run", "own.yaml"]);
  expect(own.code).toBe(0);
  expect(own.stdout).toContain(`Store: file:${join(dir, "own-store")} (from own.yaml)`);
  expect(await runsIn("file:./own-store")).toHaveLength(1);
});

it("warns when checkpointing is off, on a run and on a dry run", async () => {
  const run = await cairn(["run", "bare.yaml"]);
  expect(run.code).toBe(0);
  expect(run.stderr).toContain("cairn: warning: checkpointing is off");
  expect(run.stdout).not.toContain("Store:");
  const dry = await cairn(["run", "bare.yaml", "--dry-run"]);
  expect(dry.code).toBe(0);
  expect(dry.stderr).toContain("cairn: warning: checkpointing is off");
});

it("names the store of a dry run, on stderr with --json so stdout stays one document", async () => {
  const dry = await cairn(["run", "bare.yaml", "--dry-run", "--json"], { CAIRN_STORE: "sqlite:./env.db" });
  expect(dry.code).toBe(0);
  expect(JSON.parse(dry.stdout)).toMatchObject({ status: "dry_run", name: "bare" });
  expect(dry.stderr).toContain(`Store: sqlite:${join(dir, "env.db")} (from CAIRN_STORE)`);
});

describe.skipIf(!postgresUp)("a store URL with a password", () => {
  const schema = uniqueName("cairn_run_store");
  afterEach(async () => {
    await dropSchemas(schema);
  });

  it("is printed without its password", async () => {
    // The test server trusts local connections, so any password is accepted.
    const url = `${POSTGRES_URL.replace("postgres@", "postgres:s3cret-pw@")}?schema=${schema}`;
    expect(url).toContain("s3cret-pw");
    const run = await cairn(["run", "bare.yaml"], { CAIRN_STORE: url });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Store: postgres:\/\/\S+ \(schema \w+\) \(from CAIRN_STORE\)/);
    expect(`${run.stdout}${run.stderr}`).not.toContain("s3cret-pw");
  });
});
