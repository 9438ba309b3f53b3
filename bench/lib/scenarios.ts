/**
 * The three timed scenarios, each run against one store: checkpoint write and latest-checkpoint
 * read beside the raw floor, and resume (loadLatestCheckpoint) as a run's history grows; on the
 * stores with a LangGraph saver (memory, sqlite, postgres) the saver runs as a `langgraph`
 * variant in the same rounds, on the same payloads (see peer.ts).
 */
import { join } from "node:path";
import { CheckpointManager, type CreateCheckpointInput, type Lease } from "../../src/index.js";
import { compareInRounds, type Variant } from "./measure.js";
import { type Profile, planFor } from "./options.js";
import { type Payload, stamp } from "./payload.js";
import { hasPeer, openPeer, openSqlitePeerFull, type Peer, PeerThread, peerLatest } from "./peer.js";
import { requestsPerOp, type Sent, sentText } from "./requests.js";
import { type Row, toRows } from "./results.js";
import { summarize } from "./stats.js";
import type { BenchStore } from "./stores.js";

/** What every scenario gets. */
export interface ScenarioContext {
  store: BenchStore;
  /** An empty folder of this store's child; each scenario uses its own subfolder. */
  dir: string;
  profile: Profile;
  payloads: Payload[];
  log(message: string): void;
}

/** A checkpoint after the middle stage of extract → transform → load, the payload as its output. */
export function payloadCheckpoint(
  pipelineId: string,
  payload: Payload,
  sample: number,
): CreateCheckpointInput {
  return {
    pipelineId,
    stageName: "transform",
    stageIndex: 1,
    stateData: { source: "meters/2024.csv", sample },
    completedStages: ["extract", "transform"],
    pendingStages: ["load"],
    agentOutputs: { transform: payload.records },
  };
}

/** Throws unless a read gave back the payload, so a broken read is never timed as a fast one. */
function checkRecords(what: string, value: unknown, payload: Payload): void {
  const records = value as Payload["records"] | undefined;
  if (!Array.isArray(records) || records.length !== payload.records.length) {
    throw new Error(`${what} did not return the ${payload.records.length} records written`);
  }
  if (records[0]?.kwh !== payload.records[0]?.kwh) throw new Error(`${what} returned other records`);
}

/** createCheckpoint vs a durable raw write of the same payload. */
export async function measureWrites(ctx: ScenarioContext): Promise<Row[]> {
  const dir = join(ctx.dir, "write");
  const manager = new CheckpointManager(ctx.store.options(dir));
  const raw = await ctx.store.openRaw(join(dir, "raw"));
  const peer = hasPeer(ctx.store.name)
    ? await openPeer(ctx.store.name, join(dir, "langgraph"), "write")
    : undefined;
  // SqliteSaver as shipped commits at synchronous=NORMAL: each side is also run at the other's
  // durability, so every LangGraph row has a cairn row that waits for the disk as it does.
  const sqlite = ctx.store.name === "sqlite";
  const normal = sqlite
    ? new CheckpointManager({
        strategy: "sqlite",
        config: { dbPath: join(dir, "cairn-normal.db"), synchronous: "normal" },
      })
    : undefined;
  const peerFull = sqlite ? await openSqlitePeerFull(join(dir, "langgraph-full")) : undefined;
  const rows: Row[] = [];
  try {
    for (const payload of ctx.payloads) {
      ctx.log(`write ${payload.label}`);
      let runId = "";
      let leaseRun = "";
      let fence: Lease | undefined;
      let sample = 0;
      const prepare = (n: number) => {
        sample = n;
        stamp(payload, n);
      };
      const variants: Variant[] = [
        {
          name: "cairn",
          // A fresh run per round keeps the history (which a write reads its parent from) short.
          beforeRound: (round) => {
            runId = `write-${payload.key}-r${round}`;
          },
          prepare,
          run: () => manager.createCheckpoint(payloadCheckpoint(runId, payload, sample)),
        },
        {
          // The Pipeline's write path: under the run's lease, chained to the checkpoint it just wrote.
          name: "cairn (lease)",
          beforeRound: async (round) => {
            leaseRun = `write-lease-${payload.key}-r${round}`;
            const attempt = await (await manager.getStore()).acquireLease(leaseRun, "bench", 600_000);
            if (!attempt.acquired) throw new Error(`lease on ${leaseRun} not acquired`);
            fence = attempt.lease;
          },
          prepare,
          run: () => manager.createCheckpoint(payloadCheckpoint(leaseRun, payload, sample), { fence }),
        },
        { name: "raw", prepare, run: () => raw.write(`write-${payload.key}-${sample}`, payload.records) },
      ];
      if (ctx.store.countsRequests) {
        // The object stores' least possible checkpoint by the decided design, in bare SDK calls:
        // output ∥ checkpoint object ∥ id claim, then the tip swap (small bodies for the last
        // three). It tells what the server charges for 4 requests in 2 round trips from what
        // cairn adds on top.
        variants.push({
          name: "raw (4 puts in 2 round trips)",
          prepare,
          run: async () => {
            const key = `write4-${payload.key}-${sample}`;
            await Promise.all([
              raw.write(`${key}-out`, payload.records),
              raw.write(`${key}-cp`, { sample, stage: "transform", sequence: sample }),
              raw.write(`${key}-id`, { run: key, seq: sample }),
            ]);
            await raw.write(`${key}-tip`, { head: sample, nonce: key });
          },
        });
      }
      if (normal) {
        let normalRun = "";
        variants.push({
          name: "cairn (synchronous=normal)",
          beforeRound: (round) => {
            normalRun = `write-normal-${payload.key}-r${round}`;
          },
          prepare,
          run: () => normal.createCheckpoint(payloadCheckpoint(normalRun, payload, sample)),
        });
      }
      // A fresh thread per round, as cairn's fresh run; each write is the next superstep.
      for (const [name, saver] of [
        ["langgraph", peer?.saver],
        ["langgraph (synchronous=FULL)", peerFull?.saver],
      ] as const) {
        if (!saver) continue;
        let thread: PeerThread | undefined;
        variants.push({
          name,
          beforeRound: (round) => {
            thread = new PeerThread(saver, `write-${payload.key}-r${round}`);
          },
          prepare,
          run: () => (thread as PeerThread).stage("transform", payload.records),
        });
      }
      const samples = await compareInRounds(variants, planFor(ctx.profile, payload));
      const measured = toRows("write", ctx.store.name, payload.label, samples);
      if (ctx.store.countsRequests) await countWrites(ctx, variants, measured);
      rows.push(...measured);
    }
  } finally {
    await manager.close();
    await normal?.close();
    await raw.close();
    await peer?.close({ drop: true });
    await peerFull?.close({ drop: true });
  }
  return rows;
}

/** loadLatestCheckpoint (verifying checksum and output hashes) vs read + JSON.parse. */
export async function measureReads(ctx: ScenarioContext): Promise<Row[]> {
  const dir = join(ctx.dir, "read");
  const manager = new CheckpointManager(ctx.store.options(dir));
  const raw = await ctx.store.openRaw(join(dir, "raw"));
  const peer = hasPeer(ctx.store.name)
    ? await openPeer(ctx.store.name, join(dir, "langgraph"), "read")
    : undefined;
  const rows: Row[] = [];
  try {
    for (const payload of ctx.payloads) {
      ctx.log(`read ${payload.label}`);
      const id = `read-${payload.key}`;
      stamp(payload, 0);
      await manager.createCheckpoint(payloadCheckpoint(id, payload, 0));
      await raw.write(id, payload.records);
      const loaded = await manager.loadLatestCheckpoint(id);
      checkRecords("loadLatestCheckpoint", loaded?.agentOutputs.transform, payload);
      checkRecords("the raw read", await raw.read(id), payload);
      const variants: Variant[] = [
        // Outputs decode when first read: the timed read includes decoding the payload, as the
        // raw read includes its JSON.parse and getTuple its deserialization.
        {
          name: "cairn",
          run: async () => (await manager.loadLatestCheckpoint(id))?.agentOutputs.transform,
        },
        { name: "raw", run: () => raw.read(id) },
      ];
      if (peer) {
        await new PeerThread(peer.saver, id).stage("transform", payload.records);
        const tuple = await peerLatest(peer.saver, id);
        checkRecords("getTuple", tuple?.checkpoint.channel_values.transform, payload);
        variants.push({ name: "langgraph", run: () => peerLatest(peer.saver, id) });
      }
      const samples = await compareInRounds(variants, planFor(ctx.profile, payload));
      const measured = toRows("read", ctx.store.name, payload.label, samples);
      if (ctx.store.countsRequests) {
        for (const row of measured) {
          const variant = variants.find((v) => v.name === row.variant);
          if (variant) row.requests = await requestsPerOp(variant, COUNTED_OPS);
        }
      }
      rows.push(...measured);
    }
  } finally {
    await manager.close();
    await raw.close();
    await peer?.close({ drop: true });
  }
  return rows;
}

/** Operations counted per variant for the request counts (outside the timed samples). */
const COUNTED_OPS = 5;

/**
 * HTTP stores: requests per write, steady state (the last round's run, which already has
 * checkpoints and a cached tip) and for the first checkpoint of a fresh run.
 */
async function countWrites(ctx: ScenarioContext, variants: Variant[], rows: Row[]): Promise<void> {
  for (const row of rows) {
    const variant = variants.find((v) => v.name === row.variant);
    if (!variant) continue;
    row.requests = await requestsPerOp(variant, COUNTED_OPS);
    if (variant.beforeRound) {
      // A fresh run (and, for the lease variant, its lease) set up untimed and uncounted.
      await variant.beforeRound(1_000_000);
      row.firstRequests = await requestsPerOp(variant, 1);
    }
    const first = row.firstRequests === undefined ? "" : `; first of a run: ${sentText(row.firstRequests)}`;
    ctx.log(`write ${row.case} ${row.variant}: ${sentText(row.requests)} per write${first}`);
  }
}

const RESUME_STAGES = Array.from({ length: 10 }, (_, i) => `stage-${i}`);

/**
 * Checkpoint `i` of a long run: a 10-stage pipeline run over and over in one run, small state,
 * the outputs of the stages completed so far in this pass (at most 10 small objects). Earlier
 * outputs repeat their parent's, so cairn stores only the new stage's output, as in a real run.
 */
function smallCheckpoint(pipelineId: string, i: number): CreateCheckpointInput {
  const index = i % RESUME_STAGES.length;
  const pass = Math.floor(i / RESUME_STAGES.length);
  const agentOutputs: Record<string, unknown> = {};
  for (let j = 0; j <= index; j++) agentOutputs[`stage-${j}`] = { pass, rows: 100 + j, status: "ok" };
  return {
    pipelineId,
    stageName: RESUME_STAGES[index] as string,
    stageIndex: index,
    stateData: { source: "meters/2024.csv", cursor: i },
    completedStages: RESUME_STAGES.slice(0, index + 1),
    pendingStages: RESUME_STAGES.slice(index + 1),
    agentOutputs,
  };
}

/** loadLatestCheckpoint on runs of 10, 1,000 (and 10,000) checkpoints, interleaved. */
export async function measureResume(ctx: ScenarioContext): Promise<Row[]> {
  const dir = join(ctx.dir, "resume");
  const sizes = ctx.profile.resumeSizes;
  const runId = (n: number) => `resume-${n}`;
  const fillSeconds = new Map<number, number>();
  const filler = await ctx.store.openFiller(dir);
  try {
    for (const n of sizes) {
      const start = performance.now();
      // Written as the Pipeline writes a run: under the run's lease, each write fenced by it.
      const store = await filler.manager.getStore();
      const attempt = await store.acquireLease(runId(n), "bench-filler", 3_600_000);
      if (!attempt.acquired) throw new Error(`lease on ${runId(n)} not acquired`);
      const fence = attempt.lease;
      for (let i = 0; i < n; i++)
        await filler.manager.createCheckpoint(smallCheckpoint(runId(n), i), { fence });
      await store.releaseLease(fence);
      await filler.finish?.(runId(n));
      fillSeconds.set(n, (performance.now() - start) / 1000);
      ctx.log(`resume: filled ${n} checkpoints in ${fillSeconds.get(n)?.toFixed(1)} s`);
    }
  } finally {
    await filler.close();
  }
  const peerDir = join(dir, "langgraph");
  const peerFill = new Map<number, number>();
  let peer: Peer | undefined;
  if (hasPeer(ctx.store.name)) {
    // The same runs as LangGraph threads: one channel per stage, each superstep writes one.
    const fill = await openPeer(ctx.store.name, peerDir, "resume", true);
    try {
      for (const n of sizes) {
        const start = performance.now();
        const thread = new PeerThread(fill.saver, runId(n));
        for (let i = 0; i < n; i++) {
          const index = i % RESUME_STAGES.length;
          const value = { pass: Math.floor(i / RESUME_STAGES.length), rows: 100 + index, status: "ok" };
          await thread.stage(RESUME_STAGES[index] as string, value);
        }
        peerFill.set(n, (performance.now() - start) / 1000);
        ctx.log(`resume: filled ${n} LangGraph checkpoints in ${peerFill.get(n)?.toFixed(1)} s`);
      }
    } finally {
      await fill.close();
    }
    peer = await openPeer(ctx.store.name, peerDir, "resume");
  }
  const manager = new CheckpointManager(ctx.store.options(dir));
  try {
    for (const n of sizes) {
      const latest = await manager.loadLatestCheckpoint(runId(n));
      if (latest?.metadata.sequence !== n)
        throw new Error(`run ${runId(n)} does not resume from checkpoint ${n}`);
      if (peer) {
        const tuple = await peerLatest(peer.saver, runId(n));
        if (tuple?.metadata?.step !== n - 1)
          throw new Error(`LangGraph thread ${runId(n)} does not resume from step ${n - 1}`);
      }
    }
    const variants: Variant[] = sizes.map((n) => ({
      name: String(n),
      // Every output read, so the decoding LangGraph's getTuple always does is timed here too.
      run: async () => Object.values((await manager.loadLatestCheckpoint(runId(n)))?.agentOutputs ?? {}),
    }));
    const saver = peer?.saver;
    if (saver) {
      for (const n of sizes)
        variants.push({ name: `langgraph ${n}`, run: () => peerLatest(saver, runId(n)) });
    }
    const samples = await compareInRounds(variants, ctx.profile.resume);
    const requests = new Map<number, Sent>();
    if (ctx.store.countsRequests) {
      for (const n of sizes) {
        const variant = variants.find((v) => v.name === String(n)) as Variant;
        const sent = await requestsPerOp(variant, COUNTED_OPS);
        requests.set(n, sent);
        ctx.log(`resume ${n}: ${sentText(sent)} per loadLatestCheckpoint`);
      }
    }
    const row = (n: number, variant: string, name: string, fill: Map<number, number>): Row => ({
      scenario: "resume",
      store: ctx.store.name,
      case: String(n),
      variant,
      summary: summarize(samples.get(name) ?? []),
      fillSeconds: fill.get(n) as number,
      ...(variant === "cairn" && requests.has(n) ? { requests: requests.get(n) } : {}),
    });
    return [
      ...sizes.map((n) => row(n, "cairn", String(n), fillSeconds)),
      ...(saver ? sizes.map((n) => row(n, "langgraph", `langgraph ${n}`, peerFill)) : []),
    ];
  } finally {
    await manager.close();
    await peer?.close({ drop: true });
  }
}
