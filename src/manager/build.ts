/**
 * Builds checkpoint records: encodes state and outputs once, hashes them, and seals the record
 * with its checksum. Shared by `createCheckpoint` and `importCheckpoint` so both produce
 * byte-identical records from the same content.
 */
import { encode } from "../core/codec.js";
import { InvalidArgumentError } from "../core/errors.js";
import { bodyText, recordChecksum } from "../core/formats.js";
import { assertValidName } from "../core/ids.js";
import {
  type CheckpointBody,
  type CheckpointRecord,
  type OutputRecord,
  type StoredMetadata,
  sha256,
} from "../core/record.js";
import { FORMAT_VERSION, type OutputMigration } from "../core/types.js";
import { type DataKey, keyedAddress } from "../transforms/data-key.js";

/**
 * A stage output already encoded and hashed. The pipeline runner encodes each output once and
 * hands this to the manager, so later checkpoints of the run never re-encode earlier outputs.
 * Its `hash` is the SHA-256 of its text; its address in a run is that hash, or, in a run whose
 * outputs are encrypted, a keyed hash (see {@link EncodedOutput.addressIn}), computed once.
 */
export class EncodedOutput {
  /** Byte length of `text` in UTF-8. */
  readonly size: number;
  private sha: string | undefined;
  private keyed: { key: DataKey; address: string } | undefined;

  private constructor(
    /** Canonical codec text. */
    readonly text: string,
    hash: string | undefined,
  ) {
    this.size = Buffer.byteLength(text);
    this.sha = hash;
  }

  /** SHA-256 of `text`: the content hash provenance and plain addresses use. */
  get hash(): string {
    if (this.sha === undefined) this.sha = sha256(this.text);
    return this.sha;
  }

  /** The output's address in a run sealed with `key` (keyed), or its SHA-256 without one. */
  addressIn(key: DataKey | undefined): string {
    if (key === undefined) return this.hash;
    if (this.keyed?.key !== key) this.keyed = { key, address: keyedAddress(key, this.text) };
    return this.keyed.address;
  }

  /** Encodes a value; `path` names it in errors (`agentOutputs.load`). */
  static of(value: unknown, path: string): EncodedOutput {
    // Hashed when first asked: a run whose outputs are encrypted addresses them by a keyed hash.
    return new EncodedOutput(encode(value, path), undefined);
  }

  /** Wraps stored text whose hash was just verified, without hashing it again. */
  static verified(text: string, hash: string): EncodedOutput {
    return new EncodedOutput(text, hash);
  }

  /** Wraps stored text verified against a keyed address: its SHA-256 is computed when asked for. */
  static keyedVerified(text: string): EncodedOutput {
    return new EncodedOutput(text, undefined);
  }

  /** Wraps text that is already canonical codec text (from a store or an export file). */
  static fromText(text: string): EncodedOutput {
    return new EncodedOutput(text, sha256(text));
  }
}

/** The content of a checkpoint, encoded, ready to be sealed in the current format. */
export interface EncodedContent {
  /** Canonical codec text of the state data. */
  stateText: string;
  completedStages: readonly string[];
  pendingStages: readonly string[];
  provenanceHashes: Readonly<Record<string, string>>;
  outputs: ReadonlyMap<string, EncodedOutput>;
  /** The Pipeline's `version` option; none when undefined. */
  pipelineVersion?: string | undefined;
  /** Output version by stage; a stage with an output left out is version 1. */
  outputVersions?: Readonly<Record<string, number>>;
  /** The outputs a user migration produced, by stage. */
  outputMigrations?: Readonly<Record<string, OutputMigration>>;
}

function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The fields of a current-format body (all but `state_data`) for `content`. With `key` (the
 * run's data key, when its outputs are encrypted), outputs are referenced by keyed address.
 */
export function bodyFields(content: EncodedContent, key?: DataKey): Omit<CheckpointBody, "state_data"> {
  const stages = [...content.outputs.keys()];
  return {
    completed_stages: [...content.completedStages],
    output_migrations: sortedRecord(
      Object.entries(content.outputMigrations ?? {}).map(([stage, m]) => [
        stage,
        { from: m.from, to: m.to, by: m.by ?? null },
      ]),
    ),
    output_refs: sortedRecord([...content.outputs].map(([stage, out]) => [stage, out.addressIn(key)])),
    output_versions: sortedRecord(stages.map((stage) => [stage, content.outputVersions?.[stage] ?? 1])),
    pending_stages: [...content.pendingStages],
    pipeline_version: content.pipelineVersion ?? null,
    provenance_hashes: { ...content.provenanceHashes },
  };
}

/**
 * Canonical body text in the current format: keys in sorted order, the state embedded as its
 * canonical text. `key` as in {@link bodyFields}. Every record cairn writes is built here.
 */
export function buildBody(content: EncodedContent, key?: DataKey): string {
  return bodyText(bodyFields(content, key), content.stateText);
}

/** Encodes and checks the `agentOutputs` of a checkpoint input. */
export function encodeOutputs(agentOutputs: Record<string, unknown> | undefined): Map<string, EncodedOutput> {
  const outputs = new Map<string, EncodedOutput>();
  for (const [stage, value] of Object.entries(agentOutputs ?? {})) {
    assertValidName("agentOutputs key (stage name)", stage);
    outputs.set(
      stage,
      value instanceof EncodedOutput ? value : EncodedOutput.of(value, `agentOutputs.${stage}`),
    );
  }
  return outputs;
}

/** Checks a list of stage names. */
export function checkStageList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${field} must be an array of stage names`);
  return value.map((stage) => assertValidName(`${field} entry`, stage));
}

/** Checks a provenance map: stage name → hash string. */
export function checkProvenance(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidArgumentError("provenanceHashes must be an object of stage name → hash");
  }
  const out: Record<string, string> = {};
  for (const [stage, hash] of Object.entries(value)) {
    assertValidName("provenanceHashes key (stage name)", stage);
    if (typeof hash !== "string")
      throw new InvalidArgumentError(`provenanceHashes.${stage} must be a string`);
    out[stage] = hash;
  }
  return out;
}

/** Metadata fields a caller supplies; the rest are derived while sealing. */
export type MetadataDraft = Omit<StoredMetadata, "checksum" | "data_size">;

/**
 * Seals content into a record of the current format: computes the body, data size and checksum;
 * `key` as in {@link buildBody}.
 */
export function sealRecord(
  draft: MetadataDraft,
  content: EncodedContent,
  dataSize?: number,
  key?: DataKey,
): { record: CheckpointRecord; outputs: OutputRecord[] } {
  if (draft.format_version !== FORMAT_VERSION)
    throw new Error(`sealRecord writes format ${FORMAT_VERSION}, not ${draft.format_version}`);
  return sealBody(draft, buildBody(content, key), content.outputs, dataSize, key);
}

/**
 * Seals a body text of the draft's format (an import or re-addressing keeps a record's format):
 * the data size and the checksum by that format's rule.
 */
export function sealBody(
  draft: MetadataDraft,
  body: string,
  stageOutputs: ReadonlyMap<string, EncodedOutput>,
  dataSize?: number,
  key?: DataKey,
): { record: CheckpointRecord; outputs: OutputRecord[] } {
  let size = Buffer.byteLength(body);
  for (const output of stageOutputs.values()) size += output.size;
  const metadata: StoredMetadata = { ...draft, checksum: "", data_size: dataSize ?? size };
  metadata.checksum = recordChecksum(metadata, body);
  const outputs: OutputRecord[] = [];
  const seen = new Set<string>();
  for (const output of stageOutputs.values()) {
    const address = output.addressIn(key);
    if (seen.has(address)) continue;
    seen.add(address);
    outputs.push({ hash: address, body: output.text });
  }
  return { record: { metadata, body }, outputs };
}
