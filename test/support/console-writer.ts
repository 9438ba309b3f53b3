/**
 * Another process writing to the console's store: `node --import tsx console-writer.ts <store URL>
 * <run id>` runs a small two-stage Pipeline to completion under that run id and exits 0. The live
 * update test starts it while the console is open, so the change reaches the page only through
 * the store (the change feed, or polling), never through the console's own process.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CheckpointManager, Pipeline } from "../../src/index.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const SCRIPT = fileURLToPath(import.meta.url);

/** Pipeline name of the runs this writer appends. */
export const LIVE_PIPELINE = "live-writer";

/** Runs this file in a child process; resolves once it wrote the run (rejects on a non-zero exit). */
export function writeRunInAnotherProcess(store: string, runId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", TSX, SCRIPT, store, runId], {
      env: { ...process.env, CAIRN_STORE: undefined },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`console-writer exited with ${code}: ${stderr}`)),
    );
  });
}

async function main(store: string, runId: string): Promise<void> {
  const manager = new CheckpointManager({ store });
  try {
    const pipeline = new Pipeline({
      name: LIVE_PIPELINE,
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "fetch", agent: () => ({ items: 2 }) },
        { name: "store", agent: () => ({ stored: true }) },
      ],
    });
    await pipeline.execute({ runId });
  } finally {
    await manager.close();
  }
}

if (process.argv[1] === SCRIPT) {
  const [store, runId] = process.argv.slice(2);
  if (!store || !runId) throw new Error("usage: console-writer.ts <store URL> <run id>");
  await main(store, runId);
}
