/**
 * The bytes a run takes in its store: each checkpoint's record body once, and each distinct
 * output once. A checkpoint's `data_size` counts every output it refers to, and a run's later
 * checkpoints refer to the outputs of every earlier stage, so summing `data_size` grows with the
 * square of the stage count while the store holds each output once.
 */
import { CheckpointCorruptError } from "../core/errors.js";
import type { CheckpointStore, StoredMetadata } from "../stores/types.js";
import { readOutline } from "../transforms/envelope.js";

/**
 * Stored bytes of one run's readable checkpoints (oldest first). An output's size is worked out
 * from `data_size` (body plus the outputs of every stage) when a checkpoint introduces one new
 * output, as a stage does; only outputs introduced together are read from the store to be sized.
 */
export async function storedRunBytes(
  store: CheckpointStore,
  pipelineId: string,
  checkpoints: readonly StoredMetadata[],
): Promise<number> {
  const sizes = new Map<string, number>();
  let total = 0;
  for (const metadata of checkpoints) {
    let record: Awaited<ReturnType<CheckpointStore["getCheckpoint"]>>;
    let refs: string[];
    try {
      record = await store.getCheckpoint(metadata.checkpoint_id);
      if (record === undefined) continue; // deleted since the listing
      refs = Object.values(readOutline(record.metadata, record.body).output_refs);
    } catch (error) {
      // Listed as readable but not loadable: validation reports it; it holds no countable outputs.
      if (error instanceof CheckpointCorruptError) continue;
      throw error;
    }
    const bodyBytes = Buffer.byteLength(record.body);
    total += bodyBytes;
    const fresh = [...new Set(refs.filter((hash) => !sizes.has(hash)))];
    if (fresh.length === 0) continue;
    const [only] = fresh;
    if (fresh.length === 1 && only !== undefined) {
      let rest = record.metadata.data_size - bodyBytes;
      let copies = 0;
      for (const hash of refs) {
        if (hash === only) copies++;
        else rest -= sizes.get(hash) ?? 0;
      }
      const size = rest / copies;
      if (Number.isSafeInteger(size) && size >= 0) {
        sizes.set(only, size);
        total += size;
        continue;
      }
    }
    // Several new outputs at once (or a data_size that does not add up): read them to size them.
    const texts = await store.getOutputs(pipelineId, fresh);
    for (const hash of fresh) {
      const size = Buffer.byteLength(texts.get(hash) ?? "");
      sizes.set(hash, size);
      total += size;
    }
  }
  return total;
}
