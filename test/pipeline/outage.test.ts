/**
 * A server store that goes away in the middle of a run: the run stops with a typed
 * `CAIRN_STORE_UNAVAILABLE`, nothing partial is stored, and once the server is back the run
 * resumes where it stopped. The outage is a proxy on loopback dropping every connection.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type PipelineResults } from "../../src/index.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

interface Case {
  name: string;
  up: boolean;
  target: string;
  /** Strategy and config through the proxy, and a direct URL, for one isolated namespace. */
  configure(port: number): { strategy: string; config: Record<string, unknown>; direct: string };
  cleanup(direct: string): Promise<void>;
}

const cases: Case[] = [
  {
    name: "postgres",
    up: postgresUp,
    target: POSTGRES_URL,
    configure(port) {
      const schema = uniqueName("cairn_outage");
      const url = new URL(POSTGRES_URL);
      url.port = String(port);
      return {
        strategy: "postgres",
        config: { connectionString: url.toString(), schema, connectionTimeoutMs: 2000 },
        direct: `${POSTGRES_URL}?schema=${schema}`,
      };
    },
    async cleanup(direct) {
      await dropSchemas(new URL(direct).searchParams.get("schema") as string);
    },
  },
  {
    name: "redis",
    up: redisUp,
    target: REDIS_URL,
    configure(port) {
      const keyPrefix = `${uniqueName("cairn-outage")}:`;
      return {
        strategy: "redis",
        config: { url: `redis://127.0.0.1:${port}/0`, keyPrefix, connectTimeoutMs: 2000 },
        direct: `${REDIS_URL}?keyPrefix=${keyPrefix}`,
      };
    },
    async cleanup(direct) {
      await deleteKeyPrefixes(new URL(direct).searchParams.get("keyPrefix") as string);
    },
  },
];

let proxy: TcpProxy | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe.each(cases)("a $name outage in the middle of a run", (c) => {
  it.skipIf(!c.up)(
    "stops with CAIRN_STORE_UNAVAILABLE, stores nothing partial, and resumes when the server is back",
    async () => {
      const target = new URL(c.target);
      proxy = await startProxy(target.hostname, Number(target.port));
      const { strategy, config, direct } = c.configure(proxy.port);
      cleanups.push(() => c.cleanup(direct));
      const ran: string[] = [];
      let outage = true;
      const pipeline = new Pipeline({
        name: "outage",
        checkpointEnabled: true,
        checkpointStrategy: strategy,
        checkpointConfig: config,
        leaseTtlMs: 5000,
        steps: [
          {
            name: "s1",
            agent: () => {
              ran.push("s1");
              return { rows: [1, 2, 3] };
            },
          },
          {
            name: "s2",
            agent: async (inputs) => {
              ran.push("s2");
              if (outage) {
                outage = false;
                await proxy?.down();
              }
              return (inputs.rows as number[]).map((n) => n * 2);
            },
            inputs: { rows: "$s1.rows" },
          },
          {
            name: "s3",
            agent: (inputs) => {
              ran.push("s3");
              return { sum: (inputs.v as number[]).reduce((a, b) => a + b) };
            },
            inputs: { v: "$s2" },
          },
        ],
      });
      const error = await pipeline.execute().catch((e) => e);
      expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
      const runId = pipeline.pipelineId as string;

      const observer = new CheckpointManager({ store: direct });
      expect((await observer.getCheckpointHistory(runId)).map((m) => m.stageName)).toEqual(["s1"]);

      await proxy.up();
      let results: PipelineResults | undefined;
      const deadline = Date.now() + 15_000;
      while (!results) {
        try {
          results = await pipeline.execute();
        } catch (retry) {
          // The client may still be reconnecting; an operator would simply run it again.
          if ((retry as { code?: string }).code !== "CAIRN_STORE_UNAVAILABLE" || Date.now() > deadline)
            throw retry;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      expect(results).toMatchObject({ pipelineId: runId, status: "completed", skippedStages: ["s1"] });
      expect(results.finalOutputs.s3).toEqual({ sum: 12 });
      expect(ran).toEqual(["s1", "s2", "s2", "s3"]);
      const history = await observer.getCheckpointHistory(runId);
      expect(history.map((m) => m.stageName)).toEqual(["pipeline_complete", "s3", "s2", "s1"]);
      expect((await observer.validateCheckpoint(history[0]?.checkpointId as string)).valid).toBe(true);
      await observer.close();
      await pipeline.close();
    },
    60_000,
  );
});
