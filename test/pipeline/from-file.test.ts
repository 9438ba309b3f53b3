import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager, InvalidPipelineError, Pipeline } from "../../src/index.js";

let dir: string;
const fixtures = join(import.meta.dirname, "fixtures");
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-file-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("loads a YAML pipeline with the seed's keys, module agents and references", async () => {
  const yaml = `
name: from_yaml
checkpoint_enabled: true
checkpoint_strategy: sqlite
checkpoint_config:
  db_path: ${join(dir, "c.db")}
auto_resume: true
agents:
  Doubler: ${join(fixtures, "agents.mjs")}:Doubler
steps:
  - name: double
    agent: Doubler
  - name: sum
    agent: ${join(fixtures, "agents.mjs")}:summer
    inputs: { values: "$double" }
    retries: 1
    retry_delay_ms: 10
  - name: count
    agent: ${join(fixtures, "agents.mjs")}
    inputs:
      values: "$double"
`;
  await writeFile(join(dir, "p.yaml"), yaml);
  const pipeline = await Pipeline.fromFile(join(dir, "p.yaml"));
  expect(pipeline.checkpointEnabled).toBe(true);
  const results = await pipeline.execute({ inputs: { values: [1, 2, 3] } });
  expect(results.finalOutputs).toEqual({ double: [2, 4, 6], sum: { sum: 12 }, count: { count: 3 } });
  const manager = new CheckpointManager({ strategy: "sqlite", config: { dbPath: join(dir, "c.db") } });
  expect(await manager.getCheckpointHistory(results.pipelineId)).toHaveLength(4);
  await manager.close();
  await pipeline.close();
});

it("loads JSON with a checkpoint block and relative module paths", async () => {
  await writeFile(join(dir, "agents.mjs"), "export const one = () => 1;\n");
  const json = {
    name: "from_json",
    checkpoint: { enabled: true, strategy: "memory", after_each_step: false },
    steps: [{ name: "one", agent: "./agents.mjs:one" }],
  };
  await writeFile(join(dir, "p.json"), JSON.stringify(json));
  const results = await (await Pipeline.fromFile(join(dir, "p.json"))).execute();
  expect(results.finalOutputs).toEqual({ one: 1 });
  expect(results.checkpointsCreated).toBe(1);
});

it("reports every problem of a bad file at once", async () => {
  const yaml = `
name: broken
agents:
  Missing: ./nope.mjs:X
  NotAgent: ${join(fixtures, "agents.mjs")}:notAnAgent
  NoExport: ${join(fixtures, "agents.mjs")}:Nothing
steps:
  - name: a
    agent: Unknown
`;
  await writeFile(join(dir, "bad.yaml"), yaml);
  const error = await Pipeline.fromFile(join(dir, "bad.yaml")).catch((e) => e);
  expect(error).toBeInstanceOf(InvalidPipelineError);
  expect(error.problems).toHaveLength(3);
  expect(error.message).toMatch(/nope\.mjs/);
  expect(error.message).toMatch(/has no export Nothing/);
  await writeFile(join(dir, "worse.yaml"), "name: [unclosed");
  await expect(Pipeline.fromFile(join(dir, "worse.yaml"))).rejects.toMatchObject({
    code: "CAIRN_INVALID_PIPELINE",
  });
  await expect(Pipeline.fromFile(join(dir, "missing.yaml"))).rejects.toMatchObject({
    code: "CAIRN_NOT_FOUND",
  });
});

it("rejects unknown keys at the top, in the checkpoint block and in steps, in the file's own terms", async () => {
  const yaml = `
name: typos
descripton: not a key
checkpoint: { enabld: true, strategy: memory, after_each_stepp: false }
steps:
  - name: one
    agent: ./agents.mjs:one
    retrys: 2
    retry_delay_ms: 5
  - { agent: ./agents.mjs:one, timeout: 10 }
`;
  await writeFile(join(dir, "agents.mjs"), "export const one = () => 1;\n");
  await writeFile(join(dir, "p.yaml"), yaml);
  const error = await Pipeline.fromFile(join(dir, "p.yaml")).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidPipelineError);
  const problems = (error as InvalidPipelineError).problems;
  expect(problems).toHaveLength(4);
  expect(problems[0]).toMatch(
    /^the pipeline file has no option "descripton" \(options: name, steps, agents, /,
  );
  expect(problems[1]).toMatch(
    /^its checkpoint block has no options "enabld", "after_each_stepp" \(options: enabled,/,
  );
  expect(problems[2]).toMatch(/^step one has no option "retrys" \(options: name, agent, inputs, retries,/);
  expect(problems[3]).toMatch(/^steps\[1\] has no option "timeout" /);
});
