/**
 * The writer of the replication-lag bench, in its own process (so its encoding never delays the
 * replicator's event loop): writes `count` checkpoints of run `bench-lag` to the store at `url`
 * at `rate` per second on a fixed schedule, each with a ~10 KB state, and prints one JSON line per
 * write once it returned: `{ "id", "t" }` with `t` the wall clock in ms (sub-ms resolution).
 * Usage: `node --import tsx bench/lib/replication-writer.ts <url> <count> <rate>`.
 */
import { CheckpointManager } from "../../src/index.js";
import { makeReadings } from "./payload.js";

const [url, countArg, rateArg] = process.argv.slice(2);
const count = Number(countArg);
const rate = Number(rateArg);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

const manager = new CheckpointManager({ store: url as string });
const readings = makeReadings(10_000);
const start = now();
for (let i = 0; i < count; i++) {
  // A fixed schedule: a slow write delays the next one, never the rate of the rest.
  await sleep(start + (i * 1000) / rate - now());
  const id = await manager.createCheckpoint({
    pipelineId: "bench-lag",
    pipelineName: "bench",
    stageName: `s${i}`,
    stageIndex: i,
    stateData: { i, readings },
    status: "completed",
  });
  process.stdout.write(`${JSON.stringify({ id, t: now() })}\n`);
}
await manager.close();
