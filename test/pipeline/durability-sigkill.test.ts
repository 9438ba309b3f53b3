/**
 * SIGKILL of a real process in each durability mode, on every store, while stage c of the
 * linear a → b → c → d hangs: what the resume (another process) re-runs is what the mode may
 * lose. sync: nothing completed (a and b are skipped). async: at most the stages whose
 * checkpoints were still queued or being written when the process died (a's and b's: on a
 * store slower to fsync than a stage runs, both can be), never a stage whose checkpoint the
 * process reported written, and always a prefix of the chain. exit: everything since
 * the execution started (a and b run again). In every mode the side-effect journal shows each
 * stage completed once per process that ran it, and never twice in one process. Children run
 * `fixtures/kill-runner.mjs` (linear) on the built package (`dist/`, built by the global setup).
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { journalCounts, killRunners } from "../support/kill-runner.js";

const TEST_TIMEOUT = 60_000;
const {
  dir: tmp,
  startRunner,
  stores: STORES,
} = killRunners(fileURLToPath(new URL("./fixtures/kill-runner.mjs", import.meta.url)), "dur-kill", {
  shape: "linear",
});

/** The runner's process ids, in the order they journaled `kind` for `stage`. */
async function journalPids(journal: string, kind: "start" | "done", stage: string): Promise<string[]> {
  return (await readFile(journal, "utf8"))
    .split("\n")
    .map((line) => line.split(" "))
    .filter(([k, s]) => k === kind && s === stage)
    .map(([, , pid]) => pid as string);
}

describe.each(STORES)("SIGKILL in each durability mode ($name store)", (store) => {
  for (const durability of ["sync", "async", "exit"] as const) {
    it.skipIf(store.skip === true)(
      `${durability}: the resume re-runs only what ${durability} may lose`,
      async () => {
        const url = store.url();
        const journal = join(tmp(), "journal");
        const first = startRunner({ store: url, journal, hangAt: ["c"], durability });
        await first.until((r) => r.some((e) => e.event === "hang" && e.stage === "c"));
        first.child.kill("SIGKILL");
        await first.exited;
        const written = first.reports.filter((r) => r.event === "checkpoint").map((r) => r.stage);

        const second = startRunner({ store: url, journal, retryLockedForMs: 15_000, durability });
        await second.exited;
        const result = second.reports.at(-1);
        expect(result?.event, second.describe()).toBe("result");
        const skipped = result?.skippedStages ?? [];
        if (durability === "sync") {
          expect(written).toEqual(["a", "b"]);
          expect(skipped).toEqual(["a", "b"]);
        } else if (durability === "async") {
          // b's (and a's) checkpoints may have been in flight at the kill: then they run again.
          expect([[], ["a"], ["a", "b"]]).toContainEqual(skipped);
          // Every checkpoint the killed process saw written is reused.
          for (const stage of written) expect(skipped).toContain(stage);
        } else {
          expect(written).toEqual([]);
          expect(skipped).toEqual([]);
        }
        const ran = ["a", "b", "c", "d"].filter((s) => !skipped.includes(s));
        expect(await journalCounts(journal, "start")).toEqual(
          Object.fromEntries(
            ["a", "b", "c", "d"].map((s) => [s, 1 + (ran.includes(s) && s !== "d" ? 1 : 0)]),
          ),
        );
        // Completed once per process that ran it: never twice in one process.
        for (const stage of ["a", "b", "c", "d"]) {
          const pids = await journalPids(journal, "done", stage);
          expect(new Set(pids).size, stage).toBe(pids.length);
        }
        expect(result?.outputs?.d).toEqual({ stage: "d", seen: { n: 1, x: "c" } });
      },
      TEST_TIMEOUT,
    );
  }
});
