/**
 * One worker of the fleet tests, run as `node --import tsx worker-process.ts '<config JSON>'`:
 * a five-stage pipeline whose agents journal every stage start and finish (one JSON line each,
 * appended to the journal file), run by `createWorker` on the engine given. Prints one JSON line
 * per worker event on stdout (`ready` first); on SIGTERM it drains (`worker.close()`) and exits 0.
 */
import { appendFileSync } from "node:fs";
import { Pipeline, type StageContext } from "../../src/index.js";
import { createWorker } from "../../src/workers/index.js";
import { FLEET_PIPELINE, FLEET_STAGES, type WorkerProcessConfig } from "./fleet-pipeline.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as WorkerProcessConfig;
  const journal = (ev: "start" | "finish", context: StageContext) =>
    appendFileSync(
      config.journal,
      `${JSON.stringify({ ev, run: context.pipelineId, stage: context.stageName, pid: process.pid, t: Date.now() })}\n`,
    );
  // A run's inputs say how long each stage takes: `stageMs`, and `slow: { s3: 2000 }` for some.
  const agent = async (inputs: Record<string, unknown>, context: StageContext) => {
    journal("start", context);
    const slow = (inputs.slow ?? {}) as Record<string, number>;
    await sleep(slow[context.stageName] ?? (inputs.stageMs as number | undefined) ?? 20);
    journal("finish", context);
    return { stage: context.stageName, pid: process.pid };
  };
  const pipeline = new Pipeline({
    name: FLEET_PIPELINE,
    steps: FLEET_STAGES.map((name) => ({ name, agent })),
    checkpointEnabled: true,
    checkpointStore: config.store,
  });
  const worker = await createWorker({
    engine: config.engine,
    connection: config.connection,
    queue: config.queue,
    pipelines: { [FLEET_PIPELINE]: pipeline },
    concurrency: config.concurrency,
    leaseTtlMs: config.leaseTtlMs,
    onEvent: (event) => {
      const { type, ...rest } = event;
      const error =
        "error" in rest && rest.error ? { error: `${rest.error.name}: ${rest.error.message}` } : {};
      print({ event: type, pid: process.pid, ...rest, ...error });
    },
  });
  process.once("SIGTERM", () => {
    print({ event: "draining", pid: process.pid });
    worker.close().then(
      async () => {
        await pipeline.close();
        print({ event: "closed", pid: process.pid });
        process.exit(0);
      },
      (error: unknown) => {
        print({ event: "close_failed", pid: process.pid, error: String(error) });
        process.exit(1);
      },
    );
  });
  print({ event: "ready", pid: process.pid });
}

main().catch((error: unknown) => {
  print({ event: "crashed", pid: process.pid, error: String((error as Error)?.stack ?? error) });
  process.exit(1);
});
