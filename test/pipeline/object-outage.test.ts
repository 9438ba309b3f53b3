/**
 * The object stores' servers going away, for real: a Pipeline whose server disappears in the
 * middle of a stage (s3: a TCP proxy in front of Ceph RGW goes down; azure: a private persistent
 * azurite is stopped with SIGTERM and started again on the same port) stops with
 * `CAIRN_STORE_UNAVAILABLE`, leaves nothing partial, and resumes once the server is back. And a
 * tip write whose reply is lost (the proxy holds the server's answer while the tip's
 * compare-and-swap is applied, then drops the connection) is settled: stored once, never twice.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import {
  CheckpointManager,
  type CreateCheckpointInput,
  PIPELINE_COMPLETE_STAGE,
  Pipeline,
  type PipelineResults,
} from "../../src/index.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
import type { ObjectClient, WriteResult } from "../../src/stores/object/objects.js";
import type { StoredMetadata } from "../../src/stores/types.js";
import {
  type ObjectTarget,
  objectTargets,
  type StoreSpec,
  storedCheckpointObjects,
  uniquePrefix,
} from "../stores/fixtures/object-targets.js";
import { type PrivateAzurite, startPrivateAzurite } from "../support/azurite.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

const targets = await objectTargets("outage");
// Neither server could start (outside CI, after a loud warning): the file still reports why.
if (targets.length === 0) it.skip("needs Ceph RGW or azurite, and neither could start", () => {});
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  for (const target of targets) await target.remove();
});

/** Waits until `check` holds, polling; gives up after 20 s (a generous bound, not a timing check). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("the awaited condition never held");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A store whose server can be taken away and brought back. */
interface Outage {
  /** How the runner opens it (through the proxy, short deadlines). */
  spec: StoreSpec;
  /** How an observer opens it (directly, once the server is up). */
  observer: StoreSpec;
  raw(): Promise<ObjectClient>;
  down(): Promise<void>;
  up(): Promise<void>;
}

async function outageOf(target: ObjectTarget): Promise<Outage> {
  const prefix = uniquePrefix("outage");
  if (target.name === "s3") {
    const proxy = await startProxy("127.0.0.1", target.port);
    cleanups.push(() => proxy.close());
    return {
      spec: target.spec(prefix, { port: proxy.port, requestTimeoutMs: 3000 }),
      observer: target.spec(prefix),
      raw: () => target.raw(prefix),
      down: () => proxy.down(),
      up: () => proxy.up(),
    };
  }
  // azure: a server of its own, persistent, so a SIGTERM keeps everything it acknowledged.
  // Under a loaded machine (two cores, other test files spawning processes) azurite has been
  // seen to take longer than the helper's 30 s to answer: once more, as an operator would.
  const azurite: PrivateAzurite = await startPrivateAzurite({ persistent: true }).catch(() =>
    startPrivateAzurite({ persistent: true }),
  );
  cleanups.push(() => azurite.stop());
  const config = { container: "outage", prefix, connectionString: azurite.connectionString };
  const { createAzureObjects } = await import("../../src/stores/azure/objects.js");
  return {
    spec: { strategy: "azure", config: { ...config, requestTimeoutMs: 3000 } },
    observer: { strategy: "azure", config },
    raw: () => createAzureObjects(config),
    down: () => azurite.kill("SIGTERM"),
    up: () => azurite.start().catch(() => azurite.start()),
  };
}

/** The run's listed checkpoints: every one parses and verifies; oldest first. */
async function verifiedChain(spec: StoreSpec, runId: string): Promise<StoredMetadata[]> {
  const manager = new CheckpointManager(spec);
  try {
    const listed = await (await manager.getStore()).listCheckpoints(runId);
    expect(listed.every((e) => e.ok)).toBe(true);
    const chain = listed.flatMap((e) => (e.ok ? [e.metadata] : []));
    for (const m of chain) expect((await manager.validateCheckpoint(m.checkpoint_id)).valid).toBe(true);
    expect(chain.map((m) => m.sequence)).toEqual(chain.map((_, i) => i + 1));
    expect(chain.map((m) => m.parent_checkpoint_id)).toEqual([
      null,
      ...chain.slice(0, -1).map((m) => m.checkpoint_id),
    ]);
    return chain;
  } finally {
    await manager.close();
  }
}

describe.each(targets)("$name: the server goes away mid-run", (target) => {
  it("stops with CAIRN_STORE_UNAVAILABLE, stores nothing partial, and resumes once it is back", async () => {
    const outage = await outageOf(target);
    const ran: string[] = [];
    let first = true;
    const pipeline = new Pipeline({
      name: "objoutage",
      checkpointEnabled: true,
      checkpointStrategy: outage.spec.strategy,
      checkpointConfig: outage.spec.config,
      leaseTtlMs: 10_000,
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
            if (first) {
              first = false;
              await outage.down();
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
    cleanups.push(() => pipeline.close());
    const error = await pipeline.execute().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE", store: target.name });
    const runId = pipeline.pipelineId as string;

    await outage.up();
    // Nothing partial: only the complete checkpoint is listed, and it verifies.
    const before = await verifiedChain(outage.observer, runId);
    expect(before.map((m) => m.stage_name)).toEqual(["s1"]);

    let results: PipelineResults | undefined;
    const deadline = Date.now() + 30_000;
    while (!results) {
      try {
        results = await pipeline.execute({ runId });
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
    const after = await verifiedChain(outage.observer, runId);
    expect(after.map((m) => m.stage_name)).toEqual(["s1", "s2", "s3", PIPELINE_COMPLETE_STAGE]);
    expect(after[0]?.checkpoint_id).toBe(before[0]?.checkpoint_id);
  }, 120_000);
});

/**
 * The store on a client whose next put of `key` loses its reply: the proxy holds every reply
 * from the moment the put starts, the put is applied by the server (seen through a direct
 * client), then the connection is dropped (`cut`) or the server stays away (`down`) for a while.
 */
function losingClient(inner: ObjectClient, direct: ObjectClient, proxy: TcpProxy) {
  let armed: { key: string; fault: "cut" | "down" } | undefined;
  const lose = async (
    key: string,
    body: Buffer | string,
    put: Promise<WriteResult>,
    fault: "cut" | "down",
  ) => {
    const sent = body.toString();
    const outcome = put.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await until(async () => (await direct.get(key))?.body.toString() === sent);
    if (fault === "down") await proxy.down();
    else proxy.cut();
    proxy.holdReplies(false);
    const settled = await outcome;
    if ("error" in settled) throw settled.error;
    return settled.value;
  };
  const client: ObjectClient = {
    location: inner.location,
    get: (key) => inner.get(key),
    put(key, body, condition) {
      if (armed?.key !== key) return inner.put(key, body, condition);
      const { fault } = armed;
      armed = undefined;
      proxy.holdReplies(true);
      return lose(key, body, inner.put(key, body, condition), fault);
    },
    delete: (key) => inner.delete(key),
    deleteMany: (keys) => inner.deleteMany(keys),
    list: (prefix, options) => inner.list(prefix, options),
    probeConditions: () => inner.probeConditions(),
    close: async () => {
      await inner.close();
      await direct.close();
    },
  };
  return { client, arm: (key: string, fault: "cut" | "down") => (armed = { key, fault }) };
}

const input = (pipelineId: string, stage: number): CreateCheckpointInput => ({
  pipelineId,
  pipelineName: "objlost",
  stageName: `s${stage}`,
  stageIndex: stage - 1,
  stateData: { at: stage },
  agentOutputs: Object.fromEntries(Array.from({ length: stage }, (_, i) => [`s${i + 1}`, { n: i + 1 }])),
});

/**
 * Two writes first, so the next is a steady-state swap: the tip's ETag is cached, and the s3
 * client has learnt which If-Match form the server takes (RGW refuses the quoted one; a held
 * reply to that first refusal would stall the write instead of losing the swap's reply).
 */
async function warmUp(manager: CheckpointManager): Promise<void> {
  await manager.createCheckpoint(input("run1", 1));
  await manager.createCheckpoint(input("run1", 2));
}

describe.each(targets)("$name: a tip write whose reply is lost", (target) => {
  async function setup() {
    const prefix = uniquePrefix("lost");
    const proxy = await startProxy("127.0.0.1", target.port);
    const inner = await target.raw(prefix, { port: proxy.port, requestTimeoutMs: 2000 });
    const losing = losingClient(inner, await target.raw(prefix), proxy);
    const store = new ObjectStore({ strategy: target.name, client: losing.client });
    const manager = new CheckpointManager({ store });
    cleanups.push(
      () => proxy.close(),
      () => manager.close(),
    );
    /** The run's checkpoints (verified, linear) and its stored cp objects: one per checkpoint. */
    const stored = async (runId: string) => {
      const chain = await verifiedChain(target.spec(prefix), runId);
      const raw = await target.raw(prefix);
      try {
        expect((await storedCheckpointObjects(raw, runId)).sort()).toEqual(
          chain.map((m) => m.checkpoint_id).sort(),
        );
      } finally {
        await raw.close();
      }
      return chain;
    };
    return { proxy, manager, arm: losing.arm, stored };
  }

  it("the connection drops after the swap was applied: the write is found, stored once", async () => {
    const { manager, arm, stored } = await setup();
    await warmUp(manager);
    arm("tips/run1.json", "cut");
    const id = await manager.createCheckpoint(input("run1", 3));
    await manager.createCheckpoint(input("run1", 4));
    const chain = await stored("run1");
    expect(chain.map((m) => m.stage_name)).toEqual(["s1", "s2", "s3", "s4"]);
    expect(chain[2]?.checkpoint_id).toBe(id);
  }, 60_000);

  it("the server stays away: maybe committed; the retry finds the write, stored once", async () => {
    const { proxy, manager, arm, stored } = await setup();
    await warmUp(manager);
    arm("tips/run1.json", "down");
    const error = await manager.createCheckpoint(input("run1", 3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE", maybeCommitted: true });

    await proxy.up();
    // The caller retries the very checkpoint: it was stored, so its id comes back, no copy.
    const id = await manager.createCheckpoint(input("run1", 3));
    await manager.createCheckpoint(input("run1", 4));
    const chain = await stored("run1");
    expect(chain.map((m) => m.stage_name)).toEqual(["s1", "s2", "s3", "s4"]);
    expect(chain[2]?.checkpoint_id).toBe(id);
  }, 60_000);
});
