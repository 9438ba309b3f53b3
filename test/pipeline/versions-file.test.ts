/** Pipeline files: `version`, `migrate_state`, and a step's `output_version` and `migrate`. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager, InvalidPipelineError, Pipeline } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-pv-file-"));
  await writeFile(
    join(dir, "agents.mjs"),
    `export const totalsV1 = (i) => ({ sum: i.n });
export const totalsV2 = (i) => ({ total: i.n });
export const migrateTotalsV1 = (output, from) => ({ total: output.sum, from });
export const migrateState = (inputs, from) => ({ ...inputs, from: from ?? null });
export const notAFunction = 42;
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (body: string) => `name: billing
${body}`;

it("reads version and migrate_state: a resume under another version converts the stored inputs", async () => {
  const manager = new CheckpointManager({ store: new MemoryStore() });
  await writeFile(
    join(dir, "v1.yaml"),
    file(`version: "1.0.0"
steps:
  - { name: totals, agent: ./agents.mjs:totalsV1 }
  - { name: more, agent: "./agents.mjs:totalsV1", inputs: { n: "$totals.missing" } }
`),
  );
  const v1 = await Pipeline.fromFile(join(dir, "v1.yaml"), {
    checkpointEnabled: true,
    checkpointStore: manager,
  });
  await expect(v1.execute({ runId: "f1", inputs: { n: 5 } })).rejects.toMatchObject({ stageName: "more" });
  await writeFile(
    join(dir, "v2.yaml"),
    file(`version: "2.0.0"
migrate_state: ./agents.mjs:migrateState
steps:
  - { name: totals, agent: ./agents.mjs:totalsV1 }
  - { name: more, agent: "./agents.mjs:totalsV1", inputs: { n: "$totals.sum" } }
`),
  );
  const v2 = await Pipeline.fromFile(join(dir, "v2.yaml"), {
    checkpointEnabled: true,
    checkpointStore: manager,
  });
  const plan = await v2.execute({ runId: "f1", dryRun: true });
  expect(plan.pipelineVersion).toBe("2.0.0");
  await v2.execute({ runId: "f1" });
  const latest = await manager.loadLatestCheckpoint("f1");
  expect(latest?.stateData.inputs).toEqual({ n: 5, from: "1.0.0" });
  await manager.close();
});

it("migrates with the file's functions on resume", async () => {
  const manager = new CheckpointManager({ store: new MemoryStore() });
  await writeFile(
    join(dir, "v1.yaml"),
    file(`version: "1.0.0"
steps:
  - { name: totals, agent: ./agents.mjs:totalsV1 }
  - { name: more, agent: "./agents.mjs:totalsV1", inputs: { n: "$totals.missing" } }
`),
  );
  const v1 = await Pipeline.fromFile(join(dir, "v1.yaml"), {
    checkpointEnabled: true,
    checkpointStore: manager,
  });
  await expect(v1.execute({ runId: "f2", inputs: { n: 5 } })).rejects.toMatchObject({ stageName: "more" });
  await writeFile(
    join(dir, "v2.yaml"),
    file(`version: "2.0.0"
steps:
  - name: totals
    agent: ./agents.mjs:totalsV2
    output_version: 2
    migrate: ./agents.mjs:migrateTotalsV1
  - { name: more, agent: ./agents.mjs:totalsV2, inputs: { n: "$totals.total" } }
`),
  );
  const v2 = await Pipeline.fromFile(join(dir, "v2.yaml"), {
    checkpointEnabled: true,
    checkpointStore: manager,
  });
  const results = await v2.execute({ runId: "f2" });
  expect(results.migratedStages).toEqual([{ stageName: "totals", fromVersion: 1, toVersion: 2 }]);
  expect(results.finalOutputs).toEqual({ totals: { total: 5, from: 1 }, more: { total: 5 } });
  await manager.close();
});

it.each([
  [
    "migrate: ./agents.mjs:nope",
    /step totals: migrate \.\/agents\.mjs:nope: \.\/agents\.mjs has no export nope/,
  ],
  ["migrate: ./missing.mjs:f", /step totals: migrate \.\/missing\.mjs:f: cannot load \.\/missing\.mjs/],
  [
    "migrate: ./agents.mjs:notAFunction",
    /step totals: migrate \.\/agents\.mjs:notAFunction: the export is number, not a function/,
  ],
  [
    "migrate: migrateTotalsV1",
    /step totals: migrate must name an exported function like \.\/agents\.js:migrateV1/,
  ],
  ["migrate_output: ./agents.mjs:migrateTotalsV1", /step totals has no option "migrate_output"/],
  ["output_version: 0", /step totals: outputVersion must be an integer ≥ 1, got 0/],
])("names the step for a bad migration (%s)", async (line, problem) => {
  await writeFile(
    join(dir, "p.yaml"),
    file(`version: "2.0.0"
steps:
  - name: totals
    agent: ./agents.mjs:totalsV2
    ${line}
`),
  );
  const error = await Pipeline.fromFile(join(dir, "p.yaml")).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidPipelineError);
  expect((error as InvalidPipelineError).problems).toEqual(
    expect.arrayContaining([expect.stringMatching(problem)]),
  );
});

it.each([
  ["version: 2.0", /version must be a string such as "2.0.0", got 2/],
  [
    "migrate_state: ./agents.mjs:absent",
    /migrate_state \.\/agents\.mjs:absent: \.\/agents\.mjs has no export absent/,
  ],
])("reports a bad top-level key (%s)", async (line, problem) => {
  await writeFile(
    join(dir, "p.yaml"),
    file(`${line}
steps:
  - { name: totals, agent: ./agents.mjs:totalsV2 }
`),
  );
  const error = await Pipeline.fromFile(join(dir, "p.yaml")).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidPipelineError);
  expect((error as InvalidPipelineError).problems).toEqual([expect.stringMatching(problem)]);
});
