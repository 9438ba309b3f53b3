/**
 * The pipelines a worker runs, resolved once at `createWorker`: files loaded, each checked
 * (checkpoints on, a shared store), and one CheckpointManager per source shared by its jobs.
 */
import { InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { Pipeline, pipelineOptionsOf } from "../pipeline/pipeline.js";
import type { PipelineOptions } from "../pipeline/types.js";
import { assertSharedStore } from "./shared-store.js";
import type { PipelineSource } from "./types.js";

/** One pipeline a worker can run. */
export interface ResolvedPipeline {
  /** The pipeline's own name (what its runs are named after). */
  name: string;
  /** The options it was built from, to build one Pipeline per job. */
  options: PipelineOptions;
  /** The manager every job of this pipeline shares. */
  manager: CheckpointManager;
  /** Set when the worker built the pipeline (from a file): the worker closes it. */
  owned: Pipeline | undefined;
}

/** Pipelines by the names jobs give: the key of `pipelines`, and a pipeline's own name. */
export type ResolvedPipelines = ReadonlyMap<string, ResolvedPipeline>;

/** Loads and checks every source; on failure, closes what it had loaded. */
export async function resolvePipelines(
  sources: Readonly<Record<string, PipelineSource>>,
  options: { sharedStore: boolean },
): Promise<Map<string, ResolvedPipeline>> {
  const byKey = new Map<string, ResolvedPipeline>();
  try {
    for (const [key, source] of Object.entries(sources)) {
      assertValidName("pipeline", key);
      byKey.set(key, await resolveOne(key, source, options.sharedStore));
    }
  } catch (error) {
    await closeResolved(byKey);
    throw error;
  }
  // A pipeline is also known by its own name, unless a key already claims that name.
  const resolved = new Map(byKey);
  for (const entry of byKey.values()) if (!resolved.has(entry.name)) resolved.set(entry.name, entry);
  return resolved;
}

async function resolveOne(
  key: string,
  source: PipelineSource,
  sharedStore: boolean,
): Promise<ResolvedPipeline> {
  let pipeline: Pipeline;
  let owned: Pipeline | undefined;
  if (typeof source === "string") {
    pipeline = await Pipeline.fromFile(source);
    owned = pipeline;
  } else if (source instanceof Pipeline) {
    pipeline = source;
  } else {
    throw new InvalidArgumentError(
      `createWorker(): pipelines.${key} must be a Pipeline or the path of a pipeline file, got ${typeof source}`,
    );
  }
  try {
    const options = pipelineOptionsOf.get(pipeline);
    const manager = pipeline.checkpointManager;
    if (!options) throw new InvalidArgumentError(`createWorker(): pipelines.${key} is not a cairn Pipeline`);
    if (!pipeline.checkpointEnabled || !manager)
      throw new InvalidArgumentError(
        `createWorker(): pipeline ${pipeline.name} (pipelines.${key}) has checkpointEnabled off: ` +
          "a worker's run resumes on another worker from its checkpoints, so set checkpointEnabled: true",
      );
    assertSharedStore(pipeline.name, manager.storageStrategy, sharedStore);
    return { name: pipeline.name, options, manager, owned };
  } catch (error) {
    await owned?.close();
    throw error;
  }
}

/** Closes the pipelines the worker loaded from files (the caller's own Pipelines stay open). */
export async function closeResolved(resolved: ReadonlyMap<string, ResolvedPipeline>): Promise<void> {
  const owned = new Set<Pipeline>();
  for (const entry of resolved.values()) if (entry.owned) owned.add(entry.owned);
  for (const pipeline of owned) await pipeline.close();
}
