/** The manager's checkpoint writes and loads, traced and counted (`src/telemetry`). */
import { CheckpointCorruptError } from "../core/errors.js";
import type { PipelineCheckpoint } from "../core/types.js";
import type { Lease } from "../stores/types.js";
import { type LoadOutcome, traceLoad, traceWrite } from "../telemetry/checkpoints.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import type { ChainWriter } from "./chain-writer.js";
import type { CheckedInput } from "./input.js";
import { loadSalvaged, type ResumeDeps } from "./resume.js";
import type { SalvagedResume } from "./salvage.js";

/** A checkpoint write, traced and counted, with the data size the writer stored. */
export const tracedWrite = (
  strategy: string,
  writer: ChainWriter,
  store: AtRestStore,
  checked: CheckedInput,
  options: { fence?: Lease },
): Promise<string> => {
  const { pipelineId, pipelineName, stageName, status } = checked;
  const subject = { store: strategy, pipelineId, pipelineName, stageName, status };
  return traceWrite(
    subject,
    () => writer.write(store, checked, options),
    (id) => writer.writtenSize(pipelineId, id),
  );
};

/** A loaded checkpoint (or none). */
function loadedOutcome(checkpoint: PipelineCheckpoint | undefined): LoadOutcome {
  if (!checkpoint) return { corrupt: 0 };
  const { pipelineName, pipelineId, checkpointId, dataSize } = checkpoint.metadata;
  return { pipelineName, pipelineId, checkpointId, bytes: dataSize, corrupt: 0 };
}

/** A salvaged resume point: the corrupt records it passed over and the damaged outputs it found. */
function salvagedOutcome(point: SalvagedResume | undefined): LoadOutcome {
  if (!point) return { corrupt: 0 };
  const passed = point.passedOver.filter((p) => p.corrupt).length;
  return { ...loadedOutcome(point.checkpoint), corrupt: passed + point.damagedOutputs.length };
}

/** A load that failed because the record is corrupt counts it. */
const corruptOutcome = (error: unknown): LoadOutcome | undefined =>
  error instanceof CheckpointCorruptError ? { corrupt: 1 } : undefined;

/** A load of one checkpoint or of a run's newest one, traced. */
export const tracedLoad = <T extends PipelineCheckpoint | undefined>(
  store: string,
  pipelineId: string | undefined,
  load: () => Promise<T>,
): Promise<T> => traceLoad(store, pipelineId, load, loadedOutcome, corruptOutcome);

/** A salvaged resume point's load, traced, counting the corrupt records it passed over. */
export const tracedResumeLoad = (
  strategy: string,
  deps: ResumeDeps,
  pipelineId: string,
): Promise<SalvagedResume | undefined> =>
  traceLoad(strategy, pipelineId, () => loadSalvaged(deps, pipelineId), salvagedOutcome, corruptOutcome);
