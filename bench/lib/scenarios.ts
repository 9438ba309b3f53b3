/**
 * Checkpoint write and latest-checkpoint read, each run against one store beside the raw floor
 * (resume by run length is in resume.ts); on the stores with a LangGraph saver (memory, sqlite,
 * postgres) the saver runs as a `langgraph` variant in the same rounds, on the same payloads
 * (see peer.ts), and on every store CairnSaver as `cairn-saver` (see cairn-saver.ts).
 */
import { join } from "node:path";
import { CheckpointManager, type CreateCheckpointInput, type Lease } from "../../src/index.js";
import {
  hasSaver,
  openSaver,
  SAVER_NORMAL_VARIANT,
  SAVER_VARIANT,
  type SaverHandle,
  saverDir,
} from "./cairn-saver.js";
import { compareInRounds, type Variant } from "./measure.js";
import { type Profile, planFor } from "./options.js";
import { type Payload, stamp } from "./payload.js";
import { hasPeer, openPeer, openSqlitePeerFull, PeerThread, peerLatest, peerResume } from "./peer.js";
import { requestsPerOp, sentText } from "./requests.js";
import { type Row, toRows } from "./results.js";
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
  // CairnSaver at the store's durability, and on sqlite also at SqliteSaver's as shipped.
  const savers: [string, SaverHandle][] = [];
  if (hasSaver(ctx.store.name)) {
    savers.push([SAVER_VARIANT, await openSaver(ctx.store, saverDir(ctx.dir, "write"))]);
    if (sqlite)
      savers.push([
        SAVER_NORMAL_VARIANT,
        await openSaver(ctx.store, saverDir(ctx.dir, "write_normal"), "normal"),
      ]);
  }
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
        ...savers.map(([variant, handle]) => [variant, handle.saver] as const),
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
    for (const [, handle] of savers) await handle.close();
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
  const saver = hasSaver(ctx.store.name) ? await openSaver(ctx.store, saverDir(ctx.dir, "read")) : undefined;
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
      for (const [name, held] of [
        ["langgraph", peer],
        [SAVER_VARIANT, saver],
      ] as const) {
        if (!held) continue;
        await new PeerThread(held.saver, id).stage("transform", payload.records);
        const tuple = await peerLatest(held.saver, id);
        checkRecords(`${name} getTuple`, tuple?.checkpoint.channel_values.transform, payload);
        variants.push({ name, run: () => peerResume(held.saver, id) });
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
    await saver?.close();
  }
  return rows;
}

/** Operations counted per variant for the request counts (outside the timed samples). */
export const COUNTED_OPS = 5;

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
