/**
 * Exports that keep an encrypted run encrypted (export format 1.2, `"sealed": true`). The file
 * holds each record and output as the store holds it (envelopes under the run's data key) and
 * the run's key record (the data key wrapped by a key-encryption key): no plaintext at all. The
 * exporter verifies every checkpoint first, so it needs the key; so does the importer, which
 * opens and verifies every record (checksums, keyed output addresses, the chain) before anything
 * is stored, then stores the texts as they are with the key record, so the run keeps its data key.
 */
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import { parseBody } from "../core/formats.js";
import { type CheckpointRecord, parseStoredMetadata } from "../core/record.js";
import { isEnvelope } from "../core/sealed.js";
import type { CheckpointStore, ImportedCheckpoint, OutputRecord } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { decoderFor } from "../transforms/compression.js";
import { type DataKey, keyRecordKekId, matchAddress, openDataKey } from "../transforms/data-key.js";
import { openEnvelope, parseEnvelope, type SealContext, seal } from "../transforms/envelope.js";
import { DEFAULT_MAX_RECORD_BYTES } from "./limits.js";
import type { SealedImport } from "./transfer.js";
import type { VerifiedRecord } from "./verify.js";

/** An encrypted run's key record, and the data key it wraps. */
export interface RunKey {
  record: string;
  key: DataKey;
}

/** The store under the at-rest layer, whose reads and writes keep texts as they are stored. */
export function rawStore(store: CheckpointStore): CheckpointStore {
  return store instanceof AtRestStore ? store.inner : store;
}

/** Unwraps a run's key record with the store's key ring; `KeyMissingError` naming the key it lacks. */
export function unwrapRunKey(
  store: CheckpointStore,
  pipelineId: string,
  record: string,
  what: string,
): DataKey {
  const ring = store instanceof AtRestStore ? store.ring : undefined;
  const kek = keyRecordKekId(pipelineId, record);
  if (!ring?.get(kek)) throw new KeyMissingError(kek, "key-encryption-key", what);
  return openDataKey(pipelineId, record, ring);
}

/** The run's key when it is encrypted (it has a key record); undefined for a plaintext run. */
export async function storedRunKey(store: CheckpointStore, pipelineId: string): Promise<RunKey | undefined> {
  const record = await store.getRunKey?.(pipelineId);
  if (record === undefined) return undefined;
  return { record, key: unwrapRunKey(store, pipelineId, record, `Run ${pipelineId}`) };
}

/** The key of an export file's `run_key` field; a malformed one is `CAIRN_CORRUPT`. */
export function fileRunKey(
  store: CheckpointStore,
  pipelineId: string,
  field: unknown,
  source: string,
): RunKey {
  if (typeof field !== "string" || field.length === 0)
    throw new CheckpointCorruptError(undefined, `${source} is sealed but holds no run_key`);
  try {
    return { record: field, key: unwrapRunKey(store, pipelineId, field, `Export file ${source}`) };
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError) || error.checkpointId !== undefined) throw error;
    throw new CheckpointCorruptError(undefined, `${source}: ${error.message}`, { cause: error });
  }
}

/** True when `text` is an envelope encrypted under `key` (checked on its header only). */
function sealedUnder(text: string, key: DataKey): boolean {
  return isEnvelope(text) && text.slice(0, 300).includes(`"e":{"a":"A256GCM","k":"${key.id}"`);
}

/**
 * The stored texts a run walk reads, kept as read (still sealed), so an export writes exactly
 * the texts it verified without reading them twice.
 */
export class StoredTexts {
  private readonly records = new Map<string, CheckpointRecord>();
  private readonly outputs = new Map<string, string>();

  /** `store`, reading as it does, with every stored text it reads kept here. */
  over(store: AtRestStore): AtRestStore {
    const { records, outputs } = this;
    return store.tapped({
      record: (id, record) => records.set(id, record),
      outputs: (found) => {
        for (const [hash, text] of found) outputs.set(hash, text);
      },
    });
  }

  /**
   * The JSON of one line of a sealed export: the verified record's metadata, its body and the
   * outputs no earlier line holds (`written`), each as stored when it is sealed under `key`, else
   * (a record stored before the run was encrypted) sealed under `key` now.
   */
  lineFields(verified: VerifiedRecord, key: DataKey, written: Set<string>): Record<string, unknown> {
    const m = verified.record.metadata;
    const id = m.checkpoint_id;
    const stored = this.records.get(id);
    this.records.delete(id);
    const body =
      stored && stored.metadata.checksum === m.checksum && sealedUnder(stored.body, key)
        ? stored.body
        : seal(verified.record.body, { role: "checkpoint", pipelineId: m.pipeline_id, id }, undefined, key);
    const outputs: Record<string, string> = {};
    for (const address of Object.values(verified.body.output_refs)) {
      if (written.has(address)) continue;
      written.add(address);
      const text = this.outputs.get(address);
      this.outputs.delete(address);
      outputs[address] =
        text !== undefined && sealedUnder(text, key)
          ? text
          : seal(
              verified.outputs.get(address) as string,
              { role: "output", pipelineId: m.pipeline_id, id: address },
              undefined,
              key,
            );
    }
    return { metadata: m, sealed_body: body, outputs };
  }
}

/** A checkpoint of a sealed export, opened to check it, and as it is to be stored. */
export interface OpenedLine {
  plain: SealedImport;
  stored: ImportedCheckpoint;
}

const ADDRESS = /^[0-9a-f]{64}$/;

/** Opens the lines of a sealed export with the run's data key, checking every text on the way. */
export class SealedOpener {
  private readonly maxBytes: number;

  constructor(
    readonly runKey: RunKey,
    maxRecordBytes?: number,
  ) {
    this.maxBytes = maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  }

  /** How the check tells an output's address: keyed under the run's key, or its SHA-256. */
  readonly addressMatches = (
    _pipelineId: string,
    address: string,
    text: string,
  ): "sha" | "keyed" | undefined => matchAddress(this.runKey.key, address, text, true);

  private async open(text: unknown, ctx: SealContext, where: string): Promise<string> {
    const key = this.runKey.key;
    if (typeof text !== "string" || !sealedUnder(text, key))
      throw new CheckpointCorruptError(
        undefined,
        `${where} is not sealed under the run's data key ${key.id}`,
      );
    const envelope = parseEnvelope(text, where);
    return openEnvelope(envelope, ctx, key, { decoder: decoderFor, maxBytes: this.maxBytes }, where);
  }

  /**
   * Opens one checkpoint of a sealed export: its outputs (each address checked) join `shared`,
   * address → plaintext, which later lines may refer to; its body is opened and given the outputs
   * it refers to. The checksum and the rest of the check are the caller's (`checkImported`).
   */
  async openLine(item: unknown, source: string, shared: Map<string, string>): Promise<OpenedLine> {
    const parsed = (item ?? {}) as Record<string, unknown>;
    const metadata = parseStoredMetadata(parsed.metadata, source);
    const { checkpoint_id: id, pipeline_id: pipelineId } = metadata;
    if (pipelineId !== this.runKey.key.pipelineId)
      throw new CheckpointCorruptError(
        id,
        `${source} belongs to run ${pipelineId}, not ${this.runKey.key.pipelineId}`,
      );
    const fresh = parsed.outputs;
    if (fresh === null || typeof fresh !== "object" || Array.isArray(fresh))
      throw new CheckpointCorruptError(id, `${source}: outputs is not an object`);
    const stored: OutputRecord[] = [];
    for (const [address, text] of Object.entries(fresh)) {
      const where = `${source}: output ${address.slice(0, 12)}…`;
      if (!ADDRESS.test(address)) throw new CheckpointCorruptError(id, `${where} has no valid address`);
      const plain = await this.open(text, { role: "output", pipelineId, id: address }, where);
      if (this.addressMatches(pipelineId, address, plain) === undefined)
        throw new CheckpointCorruptError(id, `${where} does not match its address`);
      shared.set(address, plain);
      stored.push({ hash: address, body: text as string });
    }
    const sealedBody = parsed.sealed_body;
    const body = await this.open(sealedBody, { role: "checkpoint", pipelineId, id }, `${source}: the body`);
    const outputs: OutputRecord[] = [];
    for (const [stage, address] of Object.entries(parseBody(metadata, body).output_refs)) {
      const text = shared.get(address);
      if (text === undefined)
        throw new CheckpointCorruptError(
          id,
          `${source}: the output of stage ${stage} (${address.slice(0, 12)}…) is not in the file before it`,
        );
      outputs.push({ hash: address, body: text });
    }
    return {
      plain: { record: { metadata, body }, outputs },
      stored: { record: { metadata, body: sealedBody as string }, outputs: stored },
    };
  }
}

/**
 * A plaintext record and its outputs as the at-rest layer stores them in their run: sealed under
 * the run's data key when the run is encrypted and the layer has a key ring (`KeyMissingError`
 * when the ring lacks the run's key), else as they are, as `putCheckpoint` would.
 */
export async function storedForm(
  store: CheckpointStore,
  record: CheckpointRecord,
  outputs: readonly OutputRecord[],
): Promise<{ record: CheckpointRecord; outputs: OutputRecord[] }> {
  const pipelineId = record.metadata.pipeline_id;
  const runKey =
    store instanceof AtRestStore && store.ring ? await storedRunKey(store, pipelineId) : undefined;
  if (!runKey) return { record, outputs: [...outputs] };
  const key = runKey.key;
  const id = record.metadata.checkpoint_id;
  return {
    record: {
      metadata: record.metadata,
      body: seal(record.body, { role: "checkpoint", pipelineId, id }, undefined, key),
    },
    outputs: outputs.map((o) => ({
      hash: o.hash,
      body: seal(o.body, { role: "output", pipelineId, id: o.hash }, undefined, key),
    })),
  };
}
