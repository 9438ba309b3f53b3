/**
 * Rows of the SQLite store's checkpoint table: the metadata columns, reading a body column as
 * text, and ordering raw rows the way `compareStored` orders metadata.
 */
import type { StoredMetadata } from "../types.js";

/** A row as better-sqlite3 returns it: column name to value. */
export type Row = Record<string, unknown>;

// A Record over every key makes the compiler reject a metadata field this store forgets.
const FIELDS: Record<keyof StoredMetadata, true> = {
  checkpoint_id: true,
  pipeline_id: true,
  pipeline_name: true,
  stage_name: true,
  stage_index: true,
  sequence: true,
  timestamp: true,
  status: true,
  checksum: true,
  data_size: true,
  error_message: true,
  resume_count: true,
  parent_checkpoint_id: true,
  parent_checksum: true,
  format_version: true,
};

/** The checkpoint table's metadata columns, one per metadata field. */
export const COLUMNS = Object.keys(FIELDS) as (keyof StoredMetadata)[];

// A BLOB written by another tool is still usable text; anything else is not a body.
export const asText = (value: unknown): string | undefined =>
  typeof value === "string" ? value : Buffer.isBuffer(value) ? value.toString("utf8") : undefined;

/** The metadata columns of a row, unchecked. */
export const metadataOf = (row: Row): Row => Object.fromEntries(COLUMNS.map((c) => [c, row[c]]));

// Mirrors `compareStored` on raw rows, so corrupt rows can be ordered too (no sequence: last).
const sequenceOf = (row: Row) => (typeof row.sequence === "number" ? row.sequence : Number.POSITIVE_INFINITY);
const byteOrder = (a: unknown, b: unknown) => {
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Orders raw checkpoint rows by sequence, then timestamp, then checkpoint id. */
export const compareRows = (a: Row, b: Row) =>
  sequenceOf(a) - sequenceOf(b) ||
  byteOrder(a.timestamp, b.timestamp) ||
  byteOrder(a.checkpoint_id, b.checkpoint_id);
