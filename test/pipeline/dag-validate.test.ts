/** Validation of DAG pipelines: every problem of the graph in the one InvalidPipelineError. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidPipelineError, Pipeline, type StepDefinition } from "../../src/index.js";

const agent = () => ({ ok: true });

function problemsOf(steps: StepDefinition[], extra: Record<string, unknown> = {}): string[] {
  try {
    new Pipeline({ name: "g", steps, ...extra });
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPipelineError);
    return [...(error as InvalidPipelineError).problems];
  }
  throw new Error("expected InvalidPipelineError");
}

describe("DAG validation", () => {
  it("reports unknown names, self-dependencies, duplicates, cycles and references outside the dependencies at once", () => {
    const problems = problemsOf([
      { name: "a", agent, dependsOn: ["c"] },
      { name: "b", agent, dependsOn: ["a", "a", "nope"] },
      { name: "c", agent, dependsOn: ["b"] },
      { name: "d", agent, dependsOn: ["d"] },
      { name: "e", agent, dependsOn: [] },
      { name: "f", agent, dependsOn: ["e"], inputs: { x: "$a.v" } },
    ]);
    expect(problems).toContain("step b: dependsOn names nope, which is no stage of this pipeline");
    expect(problems).toContain("step b: dependsOn names a twice");
    expect(problems).toContain("step d: dependsOn names the step itself");
    expect(problems).toContain("the steps depend on each other in a cycle: a → c → b → a");
    expect(problems.some((p) => p.includes("cycle: d → d"))).toBe(true);
    expect(problems).toContain(
      "step f: input $a.v refers to stage a, which is not one of its dependencies, direct or transitive (add it to dependsOn)",
    );
    expect(problems).toHaveLength(6);
  });

  it("accepts references to transitive dependencies, roots, and a definition order that is not topological", () => {
    const pipeline = new Pipeline({
      name: "g",
      steps: [
        { name: "d", agent, dependsOn: ["b", "c"], inputs: { x: "$a.ok", y: "$c" } },
        { name: "a", agent, dependsOn: [] },
        { name: "b", agent, dependsOn: ["a"] },
        { name: "c", agent, dependsOn: ["a"] },
      ],
    });
    expect(pipeline.stageDependencies).toEqual({ d: ["b", "c"], a: [], b: ["a"], c: ["a"] });
  });

  it("a step without dependsOn depends on the one before it; linear reference problems keep their wording", () => {
    const pipeline = new Pipeline({
      name: "g",
      steps: [
        { name: "a", agent },
        { name: "b", agent },
      ],
    });
    expect(pipeline.stageDependencies).toEqual({ a: [], b: ["a"] });
    expect(
      problemsOf([
        { name: "a", agent, inputs: { x: "$b" } },
        { name: "b", agent },
      ]),
    ).toEqual(["step a: input $b refers to stage b, which does not run before it"]);
  });

  it("checks dependsOn's type and maxConcurrency", () => {
    const problems = problemsOf([{ name: "a", agent, dependsOn: "b" as unknown as string[] }], {
      maxConcurrency: 0,
    });
    expect(problems).toEqual([
      "maxConcurrency must be an integer ≥ 1, got 0",
      'step a: dependsOn must be a list of stage names, got "b"',
    ]);
    expect(problemsOf([{ name: "a", agent }], { maxConcurrency: 1.5 })).toEqual([
      "maxConcurrency must be an integer ≥ 1, got 1.5",
    ]);
  });

  it("reads depends_on and max_concurrency from a YAML file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cairn-dag-yaml-"));
    try {
      const file = join(dir, "p.yaml");
      await writeFile(
        join(dir, "agents.mjs"),
        "export const echo = (inputs, ctx) => ({ stage: ctx.stageName, inputs });\n",
      );
      await writeFile(
        file,
        [
          "name: yaml-dag",
          "max_concurrency: 2",
          "agents: { Echo: ./agents.mjs:echo }",
          "steps:",
          "  - { name: a, agent: Echo }",
          "  - { name: b, agent: Echo, depends_on: [a] }",
          "  - { name: c, agent: Echo, depends_on: [a] }",
          "  - { name: d, agent: Echo, depends_on: [b, c], inputs: { from: $b.stage } }",
          "",
        ].join("\n"),
      );
      const pipeline = await Pipeline.fromFile(file);
      expect(pipeline.stageDependencies).toEqual({ a: [], b: ["a"], c: ["a"], d: ["b", "c"] });
      const result = await pipeline.execute();
      expect(result.finalOutputs.d).toEqual({ stage: "d", inputs: { from: "b" } });
      await writeFile(
        file,
        "name: bad\nsteps:\n  - { name: a, agent: ./agents.mjs:echo, depends_on: [a] }\n",
      );
      await expect(Pipeline.fromFile(file)).rejects.toThrow(/dependsOn names the step itself/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
