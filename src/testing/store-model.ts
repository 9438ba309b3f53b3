/**
 * The conformance suite, part 6: a model-based test. fast-check draws random sequences of store
 * operations (puts with and without `expectedTip` and fences, reads, status updates, deletes,
 * retention, leases, `listRuns`) and checks every answer against a plain in-memory reference
 * model (`store-model-state.ts`). A failure prints fast-check's seed and counterexample path;
 * the `Replay:` line it ends with (`CAIRN_MODEL_SEED`, `CAIRN_MODEL_PATH`, `CAIRN_MODEL_REPLAY`) replays
 * it. `CAIRN_MODEL_RUNS` sets the number of sequences (25 by default).
 */
import type * as FastCheck from "fast-check";
import { describe, it } from "vitest";
import type { CheckpointStatusValue } from "../core/types.js";
import { CHECKPOINT_STATUSES } from "../core/types.js";
import type { StatusPatch } from "../stores/types.js";
import {
  AcquireCommand,
  type Cmd,
  ConflictCommand,
  DeleteCheckpointsCommand,
  DeleteOutputsCommand,
  DeleteRunCommand,
  LeaseCommand,
  ListRunsCommand,
  PutCommand,
  ReadCommand,
  type Real,
  RetentionCommand,
  UpdateCommand,
} from "./store-model-commands.js";
import { type Model, newModel, OUTPUT_POOL } from "./store-model-state.js";
import type { StoreHarness } from "./suite.js";

/** Random command sequences over two runs and two pipeline names. */
function commandsArbitrary(fc: typeof FastCheck, replayPath?: string): FastCheck.Arbitrary<Iterable<Cmd>> {
  const runIndex = fc.nat({ max: 1 });
  // Lease commands meet on one run more often, so acquire, release and take-over interleave.
  const leaseRun = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: runIndex });
  const status = fc.constantFrom<CheckpointStatusValue>(...CHECKPOINT_STATUSES);
  const patch: FastCheck.Arbitrary<StatusPatch> = fc.record(
    {
      status,
      error_message: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
      resume_count: fc.nat({ max: 5 }),
    },
    { requiredKeys: [] },
  );
  const put = fc
    .tuple(
      runIndex,
      fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))),
      fc.nat({ max: 8 }),
      fc.nat({ max: 2 }),
      fc.constantFrom("none" as const, "right" as const, "none" as const, "right" as const, "stale" as const),
      fc.nat({ max: 8 }),
      fc.uniqueArray(fc.nat({ max: OUTPUT_POOL.length - 1 }), { maxLength: 3 }),
      fc.nat({ max: 4 }).map((n) => n === 0),
      fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat({ max: 4 }) }),
    )
    .map((args) => new PutCommand(...args));

  const acquire = fc.tuple(leaseRun, fc.nat({ max: 2 })).map(([r, o]) => new AcquireCommand(r, o));
  const lease = fc
    .tuple(leaseRun, fc.nat({ max: 5 }), fc.boolean())
    .map(([r, w, rel]) => new LeaseCommand(r, w, rel));
  return fc.commands<Model, Real, false>(
    [
      put,
      put,
      put,
      put,
      put,
      put,
      put,
      put,
      fc.tuple(runIndex, fc.nat({ max: 5 })).map(([r, w]) => new ConflictCommand(r, w)),
      fc.tuple(runIndex, fc.nat({ max: 5 })).map(([r, w]) => new ReadCommand(r, w)),
      fc.tuple(runIndex, fc.nat({ max: 5 })).map(([r, w]) => new ReadCommand(r, w)),
      fc.tuple(runIndex, fc.nat({ max: 5 }), patch).map(([r, w, p]) => new UpdateCommand(r, w, p)),
      fc
        .tuple(runIndex, fc.array(fc.nat({ max: 5 }), { maxLength: 3 }))
        .map(([r, w]) => new DeleteCheckpointsCommand(r, w)),
      fc.tuple(runIndex, fc.integer({ min: 1, max: 3 })).map(([r, k]) => new RetentionCommand(r, k)),
      fc
        .tuple(runIndex, fc.uniqueArray(fc.nat({ max: OUTPUT_POOL.length - 1 }), { maxLength: 2 }))
        .map(([r, w]) => new DeleteOutputsCommand(r, w)),
      runIndex.map((r) => new DeleteRunCommand(r)),
      fc
        .tuple(fc.nat({ max: 1 }), fc.boolean(), fc.integer({ min: 1, max: 4 }))
        .map(([n, u, l]) => new ListRunsCommand(n, u, l)),
      fc
        .tuple(fc.nat({ max: 1 }), fc.boolean(), fc.integer({ min: 1, max: 4 }))
        .map(([n, u, l]) => new ListRunsCommand(n, u, l)),
      acquire,
      acquire,
      acquire,
      lease,
      lease,
      lease,
      lease,
    ],
    { maxCommands: 40, size: "max", ...(replayPath ? { replayPath } : {}) },
  );
}

const envNumber = (name: string): number | undefined =>
  process.env[name] === undefined ? undefined : Number(process.env[name]);

/** The model-based test of the conformance suite. */
export function modelTests(harness: () => StoreHarness): void {
  describe("model-based", () => {
    it("answers random operation sequences as the reference model does", async (ctx) => {
      // fast-check is an optional peer of the kit: loaded here, so the rest of the suite runs without it.
      const fc = await import("fast-check").catch(() => undefined);
      if (!fc) return ctx.skip("fast-check is not installed");
      const h: StoreHarness = harness();
      let made = 0;
      const seed = envNumber("CAIRN_MODEL_SEED");
      const details = await fc.check(
        fc.asyncProperty(commandsArbitrary(fc, process.env.CAIRN_MODEL_REPLAY), async (cmds) => {
          const k = ++made;
          const setup = () => ({
            model: newModel(
              [0, 1].map((i) => h.runId(`m${k}r${i}`)),
              [0, 1].map((i) => h.runId(`m${k}name${i}`)),
            ),
            real: { store: h.store },
          });
          await fc.asyncModelRun(setup, cmds);
        }),
        {
          numRuns: envNumber("CAIRN_MODEL_RUNS") ?? 25,
          ...(seed === undefined ? {} : { seed, path: process.env.CAIRN_MODEL_PATH }),
        },
      );
      if (details.failed) {
        // The commands' own replay path makes the replay skip straight to the shrunk sequence.
        const replayPath = /replayPath="([^"]*)"/.exec(String(details.counterexample?.[0]))?.[1];
        const replay = `Replay: CAIRN_MODEL_SEED=${details.seed} CAIRN_MODEL_PATH=${details.counterexamplePath} CAIRN_MODEL_REPLAY='${replayPath}'`;
        throw new Error(`${fc.defaultReportMessage(details)}\n${replay}`, { cause: details.errorInstance });
      }
    }, 120_000);
  });
}
