/**
 * Size limits on what cairn reads whole: an export file before import, a checkpoint before load.
 * Each is checked against a size known before reading (file size, `data_size`), so an oversized
 * file or record is refused with `CAIRN_TOO_LARGE` instead of exhausting memory on the way.
 */
import { InvalidArgumentError, TooLargeError } from "../core/errors.js";
import type { StoredMetadata } from "../core/record.js";

/** Default `maxImportBytes`: the largest export file an import reads (1 GiB). */
export const DEFAULT_MAX_IMPORT_BYTES = 1024 ** 3;

/** Default `maxRecordBytes`: the largest checkpoint (record and outputs) a load reads (512 MiB). */
export const DEFAULT_MAX_RECORD_BYTES = 512 * 1024 ** 2;

/** A byte limit option, checked: a positive integer, or the default when not given. */
export function byteLimit(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0)
    throw new InvalidArgumentError(`${name} must be a positive whole number of bytes, got ${String(value)}`);
  return value;
}

/**
 * Refuses to load a checkpoint whose stored size (record body plus every output, as sealed in
 * its checksummed `data_size`) is over `limit`, before its outputs are read.
 */
export function assertLoadable(metadata: StoredMetadata, limit: number): void {
  if (metadata.data_size > limit)
    throw new TooLargeError(`Checkpoint ${metadata.checkpoint_id}`, metadata.data_size, limit);
}
