/**
 * `checkpointReplicas`: each replica gets the run while it executes (in-process replicator), is
 * caught up when `execute()` returns (completed, failed or paused), keeps encrypted records
 * encrypted; a replica that cannot be reached is reported and never fails the run; bad values
 * are pipeline problems; pipeline files accept `checkpoint: { replicas }`.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareStores, Pipeline, type PipelineEvent } from "../../src/index.js";
import { loadPipelineOptions } from "../../src/pipeline/from-file.js";
import { openStore } from "../../src/stores/registry.js";
import { ring } from "../support/at-rest-runs.js";
import { storeUrls } from "../support/store-urls.js";

const { dir } = storeUrls("replicas");

let n = 0;
const sqlite = (tag: string) => `sqlite:${join(dir(), `${tag}-${++n}.db`)}`;

const steps = (fail = false) => [
  { name: "extract", agent: () => ({ rows: [1, 2, 3] }) },
  { name: "transform", agent: (i: Record<string, unknown>) => ({ doubled: [2, 4, 6], i }) },
  {
    name: "load",
    agent: () => {
      if (fail) throw new Error("load exploded");
      return { loaded: 3 };
    },
  },
];

function pipeline(primary: string, replicas: unknown[], extra: Record<string, unknown> = {}) {
  const events: PipelineEvent[] = [];
  const p = new Pipeline({
    name: "etl",
    checkpointEnabled: true,
    checkpointStore: primary,
    checkpointReplicas: replicas as string[],
    steps: steps(),
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { p, events };
}

describe("checkpointReplicas", () => {
  it("each replica holds the run, equal to the primary, when execute() returns", async () => {
    const primary = sqlite("primary");
    const replicas = [sqlite("replica"), `file:${join(dir(), `files-${++n}`)}`];
    const { p, events } = pipeline(primary, replicas);
    const result = await p.execute({ runId: "etl-1" });
    expect(result.status).toBe("completed");
    await p.close();
    for (const replica of replicas) {
      const c = await compareStores(primary, replica);
      expect(c, replica).toMatchObject({ equal: true, runsCompared: 1 });
    }
    const synced = events.filter((e) => e.type === "replica_synced");
    expect(synced.map((e) => e.replica).sort()).toEqual([...replicas].sort());
    expect(events.filter((e) => e.type === "replica_problem")).toEqual([]);
  });

  it("a failed run is on the replica too, and resumes from it", async () => {
    const primary = sqlite("primary");
    const replica = sqlite("replica");
    const failing = new Pipeline({
      name: "etl",
      checkpointEnabled: true,
      checkpointStore: primary,
      checkpointReplicas: [replica],
      steps: steps(true),
    });
    await expect(failing.execute({ runId: "etl-2" })).rejects.toThrow("load exploded");
    await failing.close();
    expect((await compareStores(primary, replica)).equal).toBe(true);
    // The replica is a full store: the run resumes there, skipping what it holds.
    const resumed = new Pipeline({
      name: "etl",
      checkpointEnabled: true,
      checkpointStore: replica,
      steps: steps(),
    });
    const result = await resumed.execute({ runId: "etl-2" });
    await resumed.close();
    expect(result.skippedStages).toEqual(["extract", "transform"]);
  });

  it("encrypted runs are copied as stored: the replica needs no key to match", async () => {
    const primary = sqlite("primary");
    const replica = sqlite("replica");
    const { p } = pipeline(primary, [replica], { checkpointEncryption: ring() });
    await p.execute({ runId: "etl-3" });
    await p.close();
    expect((await compareStores(primary, replica)).equal).toBe(true);
    const raw = await openStore(replica);
    try {
      expect(await raw.getRunKey?.("etl-3")).toBeDefined();
      const [first] = await raw.listCheckpoints("etl-3");
      const record = first?.ok ? await raw.getCheckpoint(first.metadata.checkpoint_id) : undefined;
      expect(record?.body).not.toContain("rows");
    } finally {
      await raw.close();
    }
  });

  it("a replica that cannot be reached is reported and the run completes", async () => {
    const primary = sqlite("primary");
    const good = sqlite("replica");
    // Nothing listens on port 1: every connection is refused at once.
    const down = "postgres://postgres@127.0.0.1:1/nowhere";
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const { p, events } = pipeline(primary, [down, good], { checkpointReplicaTimeoutMs: 3000 });
      const result = await p.execute({ runId: "etl-4" });
      await p.close();
      expect(result.status).toBe("completed");
      const problems = events.filter((e) => e.type === "replica_problem");
      expect(problems.length).toBeGreaterThan(0);
      expect(problems.every((e) => e.replica === down)).toBe(true);
      expect(problems.map((e) => e.kind)).toContain("failed");
      expect((await compareStores(primary, good)).equal).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings.some((w) => w.includes(down))).toBe(true);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a paused run is on the replica too", async () => {
    const primary = sqlite("primary");
    const replica = sqlite("replica");
    const { p } = pipeline(primary, [replica], {
      onEvent: (e: PipelineEvent) => {
        if (e.type === "stage_completed" && e.stageName === "extract") p.pause();
      },
    });
    const result = await p.execute({ runId: "etl-5" });
    await p.close();
    expect(result.status).toBe("paused");
    const c = await compareStores(primary, replica);
    expect(c).toMatchObject({ equal: true, runsCompared: 1 });
  });

  it("stages never wait for a replica; a stuck one is given up after the timeout and reported", async () => {
    const primary = sqlite("primary");
    const stuck = await openStore(`memory:stuck-${++n}`);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const put = stuck.putCheckpoint.bind(stuck);
    const importRun = stuck.importRun.bind(stuck);
    let attempts = 0;
    stuck.putCheckpoint = async (...args) => {
      attempts++;
      await gate;
      return put(...args);
    };
    stuck.importRun = async (...args) => {
      attempts++;
      await gate;
      return importRun(...args);
    };
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const { p, events } = pipeline(primary, [stuck], { checkpointReplicaTimeoutMs: 300 });
      const result = await p.execute({ runId: "etl-6" });
      expect(result.status).toBe("completed");
      expect(Object.keys(result.stepsResults)).toEqual(["extract", "transform", "load"]);
      const timeouts = events.filter((e) => e.type === "replica_problem" && e.kind === "timeout");
      expect(timeouts).toHaveLength(1);
      expect(attempts).toBeGreaterThan(0);
      await p.close();
    } finally {
      process.off("warning", onWarning);
      release();
    }
  });

  it("bad values are pipeline problems", () => {
    const make = (extra: Record<string, unknown>) => () =>
      new Pipeline({ name: "etl", checkpointEnabled: true, steps: steps(), ...extra });
    expect(make({ checkpointReplicas: "sqlite:x.db" })).toThrow(/checkpointReplicas must be an array/);
    expect(make({ checkpointReplicas: ["nope:x"] })).toThrow(
      /checkpointReplicas\[0\].*unknown checkpoint strategy/,
    );
    expect(make({ checkpointReplicas: [{ strategy: "sqlite", config: { dbPth: "x" } }] })).toThrow(
      /checkpointReplicas\[0\]/,
    );
    expect(make({ checkpointReplicas: [42] })).toThrow(/checkpointReplicas\[0\] must be a store URL/);
    expect(make({ checkpointReplicaTimeoutMs: -1 })).toThrow(/checkpointReplicaTimeoutMs/);
    expect(() => new Pipeline({ name: "etl", checkpointReplicas: ["memory:x"], steps: steps() })).toThrow(
      /need checkpointEnabled/,
    );
    try {
      make({ checkpointReplicas: ["nope:x"] })();
    } catch (error) {
      expect((error as { code?: string }).code).toBe("CAIRN_INVALID_PIPELINE");
    }
  });

  it("a pipeline file's checkpoint block takes replicas and replica_timeout_ms", async () => {
    const file = join(dir(), "p.yaml");
    await writeFile(
      file,
      `name: etl
checkpoint: { enabled: true, replicas: ["sqlite:./r.db", { strategy: file, config: { base_path: ./r } }], replica_timeout_ms: 2000 }
steps:
  - { name: a, agent: ./a.mjs }
`,
    );
    await writeFile(join(dir(), "a.mjs"), "export default () => 1;\n");
    const options = await loadPipelineOptions(file);
    expect(options.checkpointReplicas).toEqual([
      "sqlite:./r.db",
      { strategy: "file", config: { base_path: "./r" } },
    ]);
    expect(options.checkpointReplicaTimeoutMs).toBe(2000);
    await writeFile(
      file,
      "name: etl\ncheckpoint: { enabled: true, replicas: [42] }\nsteps: [{ name: a, agent: ./a.mjs }]\n",
    );
    await expect(loadPipelineOptions(file).then((o) => new Pipeline(o))).rejects.toThrow(
      /checkpointReplicas\[0\]/,
    );
  });
});
