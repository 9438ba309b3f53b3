/**
 * The changes each file store write declares to its feed (`feed-intents.ts`), each with the test
 * that tells afterwards, from the disk alone, whether it committed. Paths are relative to the
 * base folder, so a store folder moved elsewhere settles the same.
 */
import { join, relative } from "node:path";
import type { StoredMetadata } from "../types.js";
import { type IntendedChange, inodeOf, sha256 } from "./feed-intents.js";
import { TRASH_DIR } from "./staging.js";

/** A checkpoint file written with exactly `text`: `checkpoint` (a new one) or `status` (rewritten). */
export function fileChange(
  type: "checkpoint" | "status",
  basePath: string,
  metadata: StoredMetadata,
  path: string,
  text: string,
): IntendedChange {
  return {
    type,
    pipelineName: metadata.pipeline_name,
    checkpointId: metadata.checkpoint_id,
    sequence: metadata.sequence,
    test: { kind: "content", path: relative(basePath, path), sha256: sha256(text) },
  };
}

/** A checkpoint file unlinked by `deleteCheckpoints`. */
export function removalChange(
  basePath: string,
  pipelineName: string,
  found: { path: string; checkpointId: string; sequence: number },
): IntendedChange {
  const { checkpointId, sequence } = found;
  return {
    type: "deleted",
    pipelineName,
    checkpointId,
    sequence,
    test: { kind: "gone", path: relative(basePath, found.path) },
  };
}

/** A whole run folder deleted or replaced: committed once the folder there is not this one. */
export function runRemovalChange(basePath: string, dir: string, pipelineName: string): IntendedChange[] {
  const inode = inodeOf(dir);
  if (inode === undefined) return [];
  return [
    { type: "deleted", pipelineName, test: { kind: "replaced", path: relative(basePath, dir), inode } },
  ];
}

/** The checkpoints of an import: committed once the run folder is the staged one, renamed into place. */
export function importChanges(
  basePath: string,
  dir: string,
  stagedRun: string,
  nonce: string,
  pipelineId: string,
  checkpoints: readonly StoredMetadata[],
): IntendedChange[] {
  const inode = inodeOf(stagedRun) as string;
  const test = {
    kind: "published" as const,
    path: relative(basePath, dir),
    inode,
    staged: relative(basePath, stagedRun),
    journal: join(TRASH_DIR, `${pipelineId}~${nonce}`),
  };
  return checkpoints.map((m) => ({
    type: "checkpoint",
    pipelineName: m.pipeline_name,
    checkpointId: m.checkpoint_id,
    sequence: m.sequence,
    test,
  }));
}
