/** Row helpers shared by the SQL stores: listing entries and backups of stored rows. */
import { metadataProblems, type StoredMetadata } from "../core/record.js";
import type { ListedCheckpoint } from "./types.js";

/**
 * A listing entry from a row's metadata columns: the metadata when it is well-formed, otherwise
 * a corrupt entry at `location` (a row edited by hand is reported, never dropped).
 */
export function listedFromRow(
  pipelineId: string,
  metadata: Record<string, unknown>,
  location: string,
): ListedCheckpoint {
  const problems = metadataProblems(metadata);
  if (problems.length === 0) return { ok: true, metadata: metadata as unknown as StoredMetadata };
  const id = metadata.checkpoint_id;
  return {
    ok: false,
    corrupt: {
      pipelineId,
      checkpointId: typeof id === "string" ? id : undefined,
      location,
      reason: problems.join("; "),
    },
  };
}

/** A row as indented JSON: a BigInt as its decimal text, bytes as `{ "base64": ... }`. */
export function renderRow(row: Record<string, unknown>): string {
  const plain: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    plain[column] = value instanceof Uint8Array ? { base64: Buffer.from(value).toString("base64") } : value;
  }
  return JSON.stringify(
    plain,
    (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value),
    2,
  );
}
