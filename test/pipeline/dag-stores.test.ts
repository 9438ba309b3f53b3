/**
 * A DAG run on every store, real servers: a failure with a sibling in flight leaves a linear
 * chain (the sibling's checkpoint, then the failure), and the resume re-runs only the failed
 * stage and what depends on it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, PIPELINE_COMPLETE_STAGE, StageFailedError } from "../../src/index.js";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "../support/object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import { checkpointsOf, graphPipeline, type NodeSpec, newTrace } from "./dag-support.js";

const schemas: string[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  await dropSchemas(...schemas);
  await deleteKeyPrefixes(...prefixes);
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-dag-stores-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const STORES: { name: string; url: () => string; skip?: boolean }[] = [
  { name: "file", url: () => `file:${join(dir, "store")}` },
  { name: "sqlite", url: () => `sqlite:${join(dir, "c.db")}` },
  {
    name: "postgres",
    url: () => {
      const schema = uniqueName("cairn_dag");
      schemas.push(schema);
      return `${POSTGRES_URL}?schema=${schema}`;
    },
    skip: !postgresUp,
  },
  {
    name: "redis",
    url: () => {
      const prefix = `${uniqueName("cairn-dag")}:`;
      prefixes.push(prefix);
      return `${REDIS_URL}?keyPrefix=${prefix}`;
    },
    skip: !redisUp,
  },
  { name: "s3", url: () => s3Url(objectPrefix("dag")), skip: !s3Up },
  { name: "azure", url: () => azureUrl(objectPrefix("dag")), skip: !azureUp },
];

/** a → (b, c) → d; b is slow, so it is still running when c fails. */
const NODES: NodeSpec[] = [
  { name: "a", dependsOn: [] },
  { name: "b", dependsOn: ["a"], delayMs: 80, inputs: { x: "$a.stage" } },
  { name: "c", dependsOn: ["a"], delayMs: 5, inputs: { x: "$a.stage" } },
  { name: "d", dependsOn: ["b", "c"], inputs: { b: "$b", c: "$c" } },
];

describe.each(STORES)("DAG run on the $name store", (store) => {
  it.skipIf(store.skip === true)(
    "a failure beside a running branch, then a resume of what is left",
    async () => {
      const manager = new CheckpointManager({ store: store.url() });
      try {
        const error = await graphPipeline(manager, NODES, newTrace(), { fail: ["c"] })
          .execute()
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StageFailedError);
        const runId = (error as StageFailedError).pipelineId;
        const failed = await checkpointsOf(manager, runId);
        expect(failed.map((c) => [c.metadata.stageName, c.metadata.status, c.completedStages])).toEqual([
          ["a", "completed", ["a"]],
          ["b", "completed", ["a", "b"]],
          ["c", "failed", ["a", "b"]],
        ]);
        for (const [i, c] of failed.entries())
          expect(c.metadata.parentCheckpointId).toBe(failed[i - 1]?.metadata.checkpointId);
        expect((await manager.validateRun(runId)).valid).toBe(true);

        const trace = newTrace();
        const result = await graphPipeline(manager, NODES, trace).execute();
        expect(result.pipelineId).toBe(runId);
        expect(trace.calls).toEqual(["c", "d"]);
        expect(result.skippedStages).toEqual(["a", "b"]);
        const all = await checkpointsOf(manager, runId);
        expect(all.slice(3).map((c) => c.metadata.stageName)).toEqual(["c", "d", PIPELINE_COMPLETE_STAGE]);
        expect(all.at(-1)?.agentOutputs.d).toEqual({
          stage: "d",
          seen: { b: { stage: "b", seen: { x: "a" } }, c: { stage: "c", seen: { x: "a" } } },
        });
      } finally {
        await manager.close();
      }
    },
  );
});
