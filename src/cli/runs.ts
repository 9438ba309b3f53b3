/** Looking up a run for commands that take `--pipeline-id`. */
import {
  assertValidName,
  type CheckpointManager,
  CheckpointNotFoundError,
  type ListedCheckpoint,
} from "../index.js";

/**
 * The run's raw listing (corrupt entries included); a run with nothing stored is
 * `CAIRN_NOT_FOUND`, so a mistyped id exits 3 instead of printing an empty result.
 */
export async function requireRun(
  manager: CheckpointManager,
  pipelineId: string,
): Promise<ListedCheckpoint[]> {
  assertValidName("pipelineId", pipelineId);
  const listing = await (await manager.getStore()).listCheckpoints(pipelineId);
  if (listing.length === 0)
    throw new CheckpointNotFoundError(
      pipelineId,
      `No pipeline run with id ${JSON.stringify(pipelineId)} in the store`,
    );
  return listing;
}

/** How many entries of a listing cannot be parsed. */
export function corruptCount(listing: readonly ListedCheckpoint[]): number {
  return listing.filter((e) => !e.ok).length;
}

/** Example lines for a command's `--help`. */
export function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? "s" : ""}:\n${lines.map((l) => `  $ ${l}`).join("\n")}`;
}
