/**
 * The replicator's position, kept in the TARGET store as a meta value, so a replicator killed at
 * any point and restarted with the same arguments continues where it stopped (it may apply the
 * last few changes again: every apply is idempotent).
 */
import { sha256 } from "../core/record.js";
import type { CheckpointStore } from "../stores/types.js";

/** What identifies one replication: the source and the filters. */
export interface ReplicaFilters {
  pipelineId?: string | undefined;
  name?: string | undefined;
}

/** The saved position (the meta value's JSON). */
export interface ReplicaState {
  /** The source's location, as the store names it. */
  source: string;
  /** The source feed cursor everything before which the target holds; null for a feedless source. */
  cursor: string | null;
  filters: { pipelineId: string | null; name: string | null };
  /** When it was saved (ISO 8601). */
  updatedAt: string;
}

/** The meta key of a replication: `replica.<16 hex of sha256(source location, filters)>`. */
export function stateKey(source: CheckpointStore, filters: ReplicaFilters): string {
  const id = sha256(`${source.location}\0${filters.pipelineId ?? ""}\0${filters.name ?? ""}`);
  return `replica.${id.slice(0, 16)}`;
}

/**
 * The saved state, or undefined when there is none (first run, a target without meta values) or
 * it is not one this replicator wrote for this source (then it starts over with a full sync).
 */
export async function loadState(
  target: CheckpointStore,
  key: string,
  source: CheckpointStore,
): Promise<ReplicaState | undefined> {
  const text = await target.getMeta?.(key);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<ReplicaState> | null;
    if (
      parsed === null ||
      typeof parsed !== "object" ||
      parsed.source !== source.location ||
      (parsed.cursor !== null && typeof parsed.cursor !== "string")
    )
      return undefined;
    return parsed as ReplicaState;
  } catch {
    // Not JSON: not ours to trust; a full sync rebuilds it.
    return undefined;
  }
}

/** Saves the position in the target (last write wins); a target without meta values keeps none. */
export async function saveState(
  target: CheckpointStore,
  key: string,
  source: CheckpointStore,
  filters: ReplicaFilters,
  cursor: string | undefined,
): Promise<void> {
  if (!target.putMeta) return;
  const state: ReplicaState = {
    source: source.location,
    cursor: cursor ?? null,
    filters: { pipelineId: filters.pipelineId ?? null, name: filters.name ?? null },
    updatedAt: new Date().toISOString(),
  };
  await target.putMeta(key, JSON.stringify(state));
}
