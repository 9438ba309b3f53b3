/**
 * Random histories (seeded, so a failure replays): writes across runs, status changes,
 * checkpoint and run deletions, runs deleted and written again under the same id, interleaved
 * with replications that catch up, follow and get aborted, or start over with a tiny feed that
 * trims. Whatever the interleaving, one last replication leaves the target equal to the source.
 */
import { describe, expect, it } from "vitest";
import { CheckpointManager, type ReplicationProblem, replicate } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { expectSameRuns, writeStage } from "../support/replica.js";

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STAGES = ["a", "b", "c", "d", "e", "f"];

describe("replicate: random histories", () => {
  it.each(Array.from({ length: 10 }, (_, i) => i + 1))(
    "seed %i: the target ends equal to the source",
    async (seed) => {
      const rand = random(seed);
      const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T;
      const source = new MemoryStore({ name: `random-src-${seed}`, feedRetention: 100 });
      const target = new MemoryStore({ name: `random-dst-${seed}` });
      // A new manager after a run is deleted: a manager refuses to write on into a run it saw vanish.
      let m = new CheckpointManager({ store: source });
      const managers = [m];
      const runs = ["r1", "r2", "r3", "r4"];
      /** Per run: how many stages were written, and the ids still stored. */
      const written = new Map<string, { count: number; live: string[] }>();
      let follow: { controller: AbortController; running: Promise<unknown> } | undefined;
      const problems: ReplicationProblem[] = [];
      let syncs = 0;
      try {
        for (let step = 0; step < 400; step++) {
          // Even seeds go quiet for a long stretch: the feed trims past the saved cursor.
          const quiet = seed % 2 === 0 && step > 100 && step < 380;
          if (quiet && follow) {
            follow.controller.abort();
            await follow.running;
            follow = undefined;
          }
          const run = pick(runs);
          const ids = written.get(run) ?? { count: 0, live: [] };
          written.set(run, ids);
          const roll = rand();
          if (roll < 0.5 && ids.count < STAGES.length) {
            ids.live.push(await writeStage(m, run, STAGES, ids.count++));
          } else if (roll < 0.65 && ids.live.length > 0) {
            const status = pick(["failed", "completed", "expired"] as const);
            await m.updateCheckpointStatus(pick(ids.live), status, `step ${step}`);
          } else if (roll < 0.72 && ids.live.length > 1) {
            await (await m.getStore()).deleteCheckpoints(run, [ids.live.shift() as string]);
          } else if (roll < 0.78) {
            await (await m.getStore()).deleteRun(run);
            written.delete(run);
            m = new CheckpointManager({ store: source });
            managers.push(m);
          } else if (quiet) {
            // Nothing replicates.
          } else if (roll < 0.86 && !follow) {
            // One replicator at a time on a target (two racing ones are not a supported setup).
            const report = await replicate({ from: source, to: target, onProblem: (p) => problems.push(p) });
            syncs += report.syncs;
          } else if (roll < 0.94 && !follow) {
            const controller = new AbortController();
            follow = {
              controller,
              running: replicate({ from: source, to: target, follow: true, signal: controller.signal }),
            };
          } else if (follow) {
            follow.controller.abort();
            await follow.running;
            follow = undefined;
          }
        }
        if (follow) {
          follow.controller.abort();
          await follow.running;
        }
        const last = await replicate({ from: source, to: target, onProblem: (p) => problems.push(p) });
        syncs += last.syncs;
        // The quiet stretch outlasts the feed's retention: a full sync had to happen again.
        if (seed % 2 === 0) {
          expect(problems.some((p) => p.kind === "trimmed")).toBe(true);
          expect(syncs).toBeGreaterThan(1);
        }
        expect(last.corrupt).toEqual([]);
        expect(last.diverged).toEqual([]);
        await expectSameRuns(source, target);
      } finally {
        follow?.controller.abort();
        for (const manager of managers) await manager.close();
      }
    },
  );
});
