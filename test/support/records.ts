/**
 * Store records for store tests that drive a store directly: well-formed, sealed with their
 * checksum, one per run and sequence.
 */
import { computeChecksum, sha256 } from "../../src/core/record.js";
import type { CheckpointRecord, OutputRecord, StoredMetadata } from "../../src/stores/types.js";

/** A well-formed record of run `pipelineId` at `sequence`. */
export function record(
  pipelineId: string,
  sequence: number,
  overrides: Partial<StoredMetadata> = {},
  state: unknown = { n: sequence },
): CheckpointRecord {
  const body = JSON.stringify({
    completed_stages: [`s${sequence}`],
    output_refs: {},
    pending_stages: ["later"],
    provenance_hashes: {},
    state_data: state,
  });
  const metadata: StoredMetadata = {
    checkpoint_id: `${pipelineId}_s${sequence}`,
    pipeline_id: pipelineId,
    pipeline_name: "demo",
    stage_name: `s${sequence}`,
    stage_index: sequence - 1,
    sequence,
    timestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, sequence)).toISOString(),
    status: "completed",
    checksum: "",
    data_size: Buffer.byteLength(body),
    error_message: null,
    resume_count: 0,
    parent_checkpoint_id: null,
    parent_checksum: null,
    format_version: 1,
    ...overrides,
  };
  metadata.checksum = computeChecksum(metadata, body);
  return { metadata, body };
}

/** An output record for `text`. */
export function output(text: string): OutputRecord {
  return { hash: sha256(text), body: text };
}

/**
 * A record of run `pipelineId` at `sequence` referencing `outputs` (stage → stored text, which
 * may be text this cairn cannot decode), chained to `parent`; with the output records to store.
 */
export function recordWithOutputs(
  pipelineId: string,
  sequence: number,
  outputs: Record<string, string>,
  parent?: StoredMetadata,
): { record: CheckpointRecord; outputs: OutputRecord[] } {
  const sealed = record(pipelineId, sequence, {
    parent_checkpoint_id: parent?.checkpoint_id ?? null,
    parent_checksum: parent?.checksum ?? null,
  });
  const body = JSON.parse(sealed.body) as Record<string, unknown>;
  body.output_refs = Object.fromEntries(Object.entries(outputs).map(([s, text]) => [s, sha256(text)]));
  sealed.body = JSON.stringify(body);
  sealed.metadata.checksum = computeChecksum(sealed.metadata, sealed.body);
  const unique = new Map(Object.values(outputs).map((text) => [text, output(text)]));
  return { record: sealed, outputs: [...unique.values()] };
}
