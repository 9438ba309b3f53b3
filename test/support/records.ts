/**
 * Store records for store tests that drive a store directly: well-formed, sealed with their
 * checksum, one per run and sequence.
 */
import { computeChecksum, sha256 } from "../../src/core/record.js";
import { FORMAT_VERSION } from "../../src/core/types.js";
import { buildBody, EncodedOutput } from "../../src/manager/build.js";
import type { CheckpointRecord, OutputRecord, StoredMetadata } from "../../src/stores/types.js";

/** A current-format body: state `state` (as plain JSON), outputs by stage (stored texts). */
function body(sequence: number, state: unknown, outputs: Record<string, string> = {}): string {
  return buildBody({
    stateText: JSON.stringify(state),
    completedStages: [`s${sequence}`],
    pendingStages: ["later"],
    provenanceHashes: {},
    outputs: new Map(Object.entries(outputs).map(([stage, text]) => [stage, EncodedOutput.fromText(text)])),
  });
}

/** A well-formed record of run `pipelineId` at `sequence`. */
export function record(
  pipelineId: string,
  sequence: number,
  overrides: Partial<StoredMetadata> = {},
  state: unknown = { n: sequence },
  outputs: Record<string, string> = {},
): CheckpointRecord {
  const text = body(sequence, state, outputs);
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
    data_size: Buffer.byteLength(text),
    error_message: null,
    resume_count: 0,
    parent_checkpoint_id: null,
    parent_checksum: null,
    format_version: FORMAT_VERSION,
    ...overrides,
  };
  metadata.checksum = computeChecksum(metadata, text);
  return { metadata, body: text };
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
  const sealed = record(
    pipelineId,
    sequence,
    { parent_checkpoint_id: parent?.checkpoint_id ?? null, parent_checksum: parent?.checksum ?? null },
    { n: sequence },
    outputs,
  );
  const unique = new Map(Object.values(outputs).map((text) => [text, output(text)]));
  return { record: sealed, outputs: [...unique.values()] };
}
