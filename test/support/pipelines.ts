/** Pipelines tests drive while something else happens to their run. */
import { type CheckpointManager, Pipeline } from "../../src/index.js";

/** A two-stage Pipeline whose second stage waits until `finish()`; `started` once it is waiting. */
export function slowPipeline(manager: CheckpointManager) {
  let finish!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const waiting = new Promise<void>((resolve) => {
    started = resolve;
  });
  const pipeline = new Pipeline({
    name: "live",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      { name: "extract", agent: () => ({ rows: [1, 2, 3] }) },
      {
        name: "load",
        agent: async () => {
          started();
          await gate;
          return { loaded: 3 };
        },
      },
    ],
  });
  return { pipeline, waiting, finish };
}
