/**
 * Rows of the PostgreSQL store as pg returns them: timestamps back in the exact ISO form they
 * were written, the metadata columns of a checkpoint row, a lease row.
 */
import type { Lease } from "../types.js";
import { COLUMNS } from "./queries.js";

/** A row as pg returns it: column name to value. */
export type Row = Record<string, unknown>;

/** The canonical form of a timestamp, or undefined when `value` is not a valid date. */
export function isoOf(value: unknown): string | undefined {
  const date = value instanceof Date ? value : typeof value === "string" ? new Date(value) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}

/** A row's metadata fields, with the TIMESTAMPTZ back in the exact form it was written. */
export function metadataOf(row: Row): Row {
  const metadata: Row = {};
  for (const column of COLUMNS) metadata[column] = row[column];
  metadata.timestamp = isoOf(row.timestamp) ?? row.timestamp;
  return metadata;
}

/** The lease a lease row holds; undefined for no row or the placeholder of a run never leased. */
export function leaseOf(pipelineId: string, row: Row | undefined): Lease | undefined {
  if (row === undefined || row.owner === "") return undefined;
  return {
    pipelineId,
    owner: String(row.owner),
    token: Number(row.token),
    expiresAt: new Date(row.expires_at as Date),
  };
}
