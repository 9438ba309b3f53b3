/**
 * The id check of a file-store write, under the run's lock: the id's marker is created
 * create-only, so claiming it is the check. A run folder that is not indexed yet, a stale
 * marker, and the legacy run folders the id may point to are listed as before; an indexed run is
 * not, so a write's cost does not grow with its run's length.
 */
import { CheckpointConflictError } from "../../core/errors.js";
import { candidateRuns } from "./checkpoint-file.js";
import { claimMarker, dropMarker, isIndexed, isPresent, readMarker, setMarker } from "./id-index.js";
import { findIn, holds, type Located, runFolder } from "./run-paths.js";

/**
 * Claims `checkpointId` for the file `found`, or throws `CheckpointConflictError` when a file of
 * that id exists. `list` gives the run folder's names, read only when needed. Returns an undo
 * for a write refused afterwards, which drops the claim unless the file is there after all.
 */
export async function claimId(
  basePath: string,
  checkpointId: string,
  found: Located,
  list: () => readonly string[],
): Promise<() => void> {
  const { pipelineId, dir } = found;
  if (claimMarker(basePath, checkpointId, found)) {
    const held = isIndexed(dir)
      ? await heldByLegacyRun(basePath, pipelineId, checkpointId)
      : await holds(basePath, pipelineId, checkpointId, list());
    if (held) {
      dropMarker(basePath, checkpointId, found);
      throw new CheckpointConflictError(checkpointId);
    }
  } else {
    const marked = readMarker(basePath, checkpointId);
    if (marked && isPresent(marked)) throw new CheckpointConflictError(checkpointId);
    // Stale (its file deleted, or a write that never finished): the listings decide, as before markers.
    if (await holds(basePath, pipelineId, checkpointId, list()))
      throw new CheckpointConflictError(checkpointId);
    setMarker(basePath, checkpointId, found);
  }
  return () => {
    if (!isPresent(found)) dropMarker(basePath, checkpointId, found);
  };
}

/** True when a run folder the id points to, other than its own and not indexed, holds it. */
async function heldByLegacyRun(basePath: string, pipelineId: string, checkpointId: string): Promise<boolean> {
  for (const runId of candidateRuns(checkpointId)) {
    if (runId === pipelineId || isIndexed(runFolder(basePath, runId))) continue;
    if (await findIn(basePath, runId, checkpointId)) return true;
  }
  return false;
}
