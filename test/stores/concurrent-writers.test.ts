/**
 * Several processes writing to one run without a lease, on every persistent store: each write is
 * conditional on the tip its manager read, and the store checks it atomically with the write (a
 * lock file, a transaction, a Lua script), so the run stays one chain with no repeated sequence.
 * Real child processes (`fixtures/tip-writer.ts` under tsx), since writers within one process are
 * already serialized by the manager's per-run queue.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import type { StoredMetadata } from "../../src/stores/types.js";
import { storeUrls } from "../support/store-urls.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const WRITER = fileURLToPath(new URL("./fixtures/tip-writer.ts", import.meta.url));
/** Writer processes and writes per process: the object stores are raced by 10 processes (issue 16). */
const LOAD: Record<string, { processes: number; writes: number }> = {
  s3: { processes: 10, writes: 8 },
  azure: { processes: 10, writes: 8 },
};
const DEFAULT_LOAD = { processes: 3, writes: 40 };

const { urls, dir } = storeUrls("race");

/** Starts a writer; resolves `ready` once it has opened its store, `done` when it exits cleanly. */
function startWriter(args: string[]): { ready: Promise<void>; done: Promise<void> } {
  const child = spawn(process.execPath, ["--import", TSX, WRITER, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = new Promise<void>((resolve) => {
    child.stdout.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`writer exited with ${code}: ${stderr}`)),
    );
  });
  return { ready: Promise.race([ready, done]), done };
}

it.each(Object.keys(urls).map((name) => ({ name, ...(LOAD[name] ?? DEFAULT_LOAD) })))(
  "$name: keeps one chain when $processes processes each write $writes checkpoints to a run without a lease",
  async ({ name, processes: PROCESSES, writes: WRITES }) => {
    const url = (urls[name] as () => string)();
    const go = join(dir(), `go-${name}`);
    // The store is set up before the writers start, so they race on writes, not on migrations.
    const manager = new CheckpointManager({ store: url });
    const store = await manager.getStore();
    const writers = Array.from({ length: PROCESSES }, (_, i) =>
      startWriter([url, "race_run", `w${i}`, String(WRITES), go]),
    );
    await Promise.all(writers.map((w) => w.ready));
    await writeFile(go, "");
    await Promise.all(writers.map((w) => w.done));

    const listed = await store.listCheckpoints("race_run");
    const metadata = listed.map((e) => (e.ok ? e.metadata : undefined));
    expect(metadata.every((m) => m !== undefined)).toBe(true);
    const chain = metadata as StoredMetadata[];
    expect(chain).toHaveLength(PROCESSES * WRITES);
    // One chain: sequences 1..n with no repeat, each checkpoint the child of the one before.
    expect(chain.map((m) => m.sequence)).toEqual(chain.map((_, i) => i + 1));
    expect(chain.map((m) => m.parent_checkpoint_id)).toEqual([
      null,
      ...chain.slice(0, -1).map((m) => m.checkpoint_id),
    ]);
    expect((await store.getLatestCheckpoint("race_run"))?.metadata.checkpoint_id).toBe(
      chain.at(-1)?.checkpoint_id,
    );
    expect(await store.listRuns({ pipelineName: "race" })).toEqual({
      runs: [
        { pipelineId: "race_run", pipelineName: "race", createdAt: chain[0]?.timestamp, finished: false },
      ],
    });
    await manager.close();
  },
  180_000,
);
