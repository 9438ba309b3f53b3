/**
 * Envelopes: stored text that says how it was encoded. Order on write: canonical JSON → compress →
 * encrypt → base64 in the envelope; the reverse on read gives back the exact canonical text, so
 * checksums and content addresses keep meaning "this content".
 *
 * `{"$cairn":"rest","v":1,"z":"gzip","e":{"a":"A256GCM","k":"<data key id>","n":"<iv>"},"o":{…},"d":"<base64>"}`
 * - `z`: the compression algorithm; absent when stored uncompressed.
 * - `e`: the encryption header; absent when not encrypted.
 * - `o`: encrypted checkpoint bodies only: the outline (the body's fields before
 *   `provenance_hashes`: stage lists and output references, and from record format 2 the
 *   pipeline version, output versions and migrations) in the clear, so listings, statistics and
 *   retention work without keys. The state and the provenance hashes are in `d`. The outline is
 *   authenticated with the ciphertext.
 * The GCM additional data binds each ciphertext to its run, its checkpoint id or output address,
 * its role and its header: ciphertext moved to another run or record fails to decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { canonicalJson } from "../core/codec.js";
import { CheckpointCorruptError, TooLargeError } from "../core/errors.js";
import { parseBody } from "../core/formats.js";
import type { StoredMetadata, StoredMigration } from "../core/record.js";
import { corruptReason, ENVELOPE_TAG, isEnvelope, sealedError } from "../core/sealed.js";
import type { Codec } from "./compression.js";
import { type DataKey, TAG_BYTES } from "./data-key.js";

const CIPHER = "A256GCM";
const IV_BYTES = 12;
/** Where the sealed part of a checkpoint body starts (stage names never hold quotes). */
const SPLIT = ',"provenance_hashes":';
/** How the sealed part of a split body starts. */
const REST_START = Buffer.from('{"provenance_hashes":');
/** The last field of every envelope. */
const DATA_FIELD = ',"d":"';

/** What a stored text belongs to: bound into the encryption. */
export interface SealContext {
  role: "checkpoint" | "output";
  pipelineId: string;
  /** The checkpoint id, or the output's content address. */
  id: string;
}

/**
 * The fields of a body before `provenance_hashes`, readable without keys: stage lists and output
 * references; records of format 2 also hold the version fields (format 1 outlines lack them).
 */
export interface Outline {
  completed_stages: string[];
  output_refs: Record<string, string>;
  pending_stages: string[];
  output_migrations?: Record<string, StoredMigration>;
  output_versions?: Record<string, number>;
  pipeline_version?: string | null;
}

/** A parsed envelope. */
export interface Envelope {
  v: 1;
  z?: string;
  e?: { a: typeof CIPHER; k: string; n: string };
  o?: Outline;
  d: string;
}

function aad(ctx: SealContext, z: string | undefined, dataKeyId: string, outline: string): Buffer {
  return Buffer.from(
    `cairn-rest/1\0${ctx.role}\0${ctx.pipelineId}\0${ctx.id}\0${z ?? ""}\0${dataKeyId}\0${outline}`,
  );
}

/** Splits a checkpoint body into its outline text and the rest, when it has the canonical layout. */
function splitBody(body: string): { outline: string; rest: string } | undefined {
  const at = body.indexOf(SPLIT);
  if (at < 0 || !body.startsWith('{"completed_stages":')) return undefined;
  const outline = `${body.slice(0, at)}}`;
  try {
    // Rebuilt from the parsed outline on read: only split when that gives the same text back.
    if (canonicalJson(JSON.parse(outline)) !== outline) return undefined;
  } catch {
    return undefined;
  }
  return { outline, rest: `{${body.slice(at + 1)}` };
}

/** Encodes `plain` for storage; returns it unchanged when nothing applies (small and unencrypted). */
export function seal(
  plain: string,
  ctx: SealContext,
  codec: Codec | undefined,
  key: DataKey | undefined,
): string {
  let outlineText = "";
  let payloadText = plain;
  if (key && ctx.role === "checkpoint") {
    const split = splitBody(plain);
    if (split) {
      outlineText = split.outline;
      payloadText = split.rest;
    }
  }
  let payload: Buffer = Buffer.from(payloadText);
  let z: string | undefined;
  if (codec && payload.length >= codec.minBytes) {
    const packed = codec.compress(payload);
    // Incompressible data is stored as it is: smaller, and nothing to undo on read.
    if (packed.length < payload.length) {
      payload = packed;
      z = codec.algorithm;
    }
  }
  if (!key && z === undefined) return plain;
  let e: Envelope["e"];
  if (key) {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key.recordKey, iv);
    cipher.setAAD(aad(ctx, z, key.id, outlineText));
    payload = Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
    e = { a: CIPHER, k: key.id, n: iv.toString("base64") };
  }
  // Built by hand so the tag comes first (readers test the prefix) and the payload is not re-escaped.
  let text = `${ENVELOPE_TAG}"v":1`;
  if (z !== undefined) text += `,"z":"${z}"`;
  if (e) text += `,"e":${JSON.stringify(e)}`;
  if (outlineText) text += `,"o":${outlineText}`;
  const sealed = `${text}${DATA_FIELD}${payload.toString("base64")}"}`;
  // Compressed only, and no smaller once in its envelope (base64 and header): stored as it is.
  return key || sealed.length < plain.length ? sealed : plain;
}

const SAFE = /^[A-Za-z0-9._-]{1,128}$/;

/** Parses an envelope; `CheckpointCorruptError` when it is malformed. */
export function parseEnvelope(text: string, where: string): Envelope {
  let parsed: Partial<Envelope> & { $cairn?: unknown };
  // The data comes last (`seal` writes it so): only the small header goes through JSON.parse,
  // not a copy of megabytes of base64.
  const at = text.indexOf(DATA_FIELD);
  try {
    if (at < 0 || !text.endsWith('"}') || text.indexOf('"', at + DATA_FIELD.length) !== text.length - 2) {
      parsed = JSON.parse(text) as typeof parsed;
    } else {
      parsed = JSON.parse(`${text.slice(0, at)}}`) as typeof parsed;
      parsed.d = text.slice(at + DATA_FIELD.length, text.length - 2);
    }
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `${where}: its envelope is not JSON`, { cause: error });
  }
  const bad = (why: string) => new CheckpointCorruptError(undefined, `${where}: its envelope ${why}`);
  if (parsed.v !== 1) throw bad(`has unknown version ${JSON.stringify(parsed.v)}`);
  if (typeof parsed.d !== "string") throw bad("has no data");
  if (parsed.z !== undefined && (typeof parsed.z !== "string" || !SAFE.test(parsed.z)))
    throw bad("names no valid compression");
  const e = parsed.e;
  if (
    e !== undefined &&
    (e === null || e.a !== CIPHER || typeof e.k !== "string" || !SAFE.test(e.k) || typeof e.n !== "string")
  )
    throw bad("has a malformed encryption header");
  if (parsed.o !== undefined && !isOutline(parsed.o)) throw bad("has a malformed outline");
  return parsed as Envelope;
}

function isOutline(value: unknown): value is Outline {
  if (value === null || typeof value !== "object") return false;
  const o = value as Partial<Outline>;
  const names = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
  const refs =
    o.output_refs !== null &&
    typeof o.output_refs === "object" &&
    !Array.isArray(o.output_refs) &&
    Object.values(o.output_refs).every((h) => typeof h === "string");
  // Format 2 outlines also hold the version fields (checked in full with the body, once opened).
  const map = (v: unknown) => v === undefined || (v !== null && typeof v === "object" && !Array.isArray(v));
  const version =
    o.pipeline_version === undefined || o.pipeline_version === null || typeof o.pipeline_version === "string";
  return (
    names(o.completed_stages) &&
    names(o.pending_stages) &&
    refs &&
    map(o.output_versions) &&
    map(o.output_migrations) &&
    version
  );
}

/** Where an envelope's keys and decoders come from. */
export interface Opener {
  decoder(algorithm: string): Promise<Codec>;
  /** Largest plaintext accepted (a compression bomb is refused). */
  maxBytes: number;
}

/**
 * Opens an envelope back into the exact text that was sealed. `key` is the run's data key the
 * envelope names (the caller checks the id). Authentication failure is `CheckpointCorruptError`.
 */
export async function openEnvelope(
  envelope: Envelope,
  ctx: SealContext,
  key: DataKey | undefined,
  opener: Opener,
  where: string,
): Promise<string> {
  let payload: Buffer = Buffer.from(envelope.d, "base64");
  const outlineText = envelope.o ? canonicalJson(envelope.o) : "";
  if (envelope.e) {
    if (!key || key.id !== envelope.e.k)
      throw new Error("openEnvelope: the caller passes the named data key");
    if (payload.length < TAG_BYTES)
      throw new CheckpointCorruptError(undefined, `${where}: its ciphertext is truncated`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key.recordKey, Buffer.from(envelope.e.n, "base64"));
      decipher.setAAD(aad(ctx, envelope.z, envelope.e.k, outlineText));
      decipher.setAuthTag(payload.subarray(payload.length - TAG_BYTES));
      payload = Buffer.concat([
        decipher.update(payload.subarray(0, payload.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch (error) {
      throw new CheckpointCorruptError(
        undefined,
        `${where}: its ciphertext fails authentication (changed, or moved from another run or record)`,
        { cause: error },
      );
    }
  }
  if (envelope.z !== undefined) {
    const codec = await opener.decoder(envelope.z);
    try {
      payload = codec.decompress(payload, opener.maxBytes);
    } catch (error) {
      if (error instanceof TooLargeError) throw error;
      throw new CheckpointCorruptError(undefined, `${where}: its ${envelope.z} data does not decompress`, {
        cause: error,
      });
    }
  }
  if (!outlineText) return payload.toString("utf8");
  // The sealed part is `{"provenance_hashes":…}`: joined back after the outline's fields, as
  // bytes, so the text is made flat once (a joined string is copied again by every reader).
  if (!payload.subarray(0, REST_START.length).equals(REST_START))
    throw new CheckpointCorruptError(undefined, `${where}: its sealed part is not the rest of a body`);
  return Buffer.concat([Buffer.from(`${outlineText.slice(0, -1)},`), payload.subarray(1)]).toString("utf8");
}

/**
 * The stage lists and output references of a stored body, plain or sealed, without keys;
 * undefined when the body is sealed without an outline. `CheckpointCorruptError` when malformed.
 */
export function envelopeOutline(text: string, where: string): Outline | undefined {
  if (!isEnvelope(text)) return undefined;
  return parseEnvelope(text, where).o;
}

/**
 * The outline of a stored body, opened or still sealed, without keys: what listings, statistics
 * and retention read. An opened body is read by its record's format (and upcast, so it has every
 * field); a sealed one gives its clear outline as written. `CheckpointCorruptError` when the body
 * is malformed; `KeyMissingError` when it is sealed with no outline (only a key can read it).
 */
export function readOutline(metadata: StoredMetadata, body: string): Outline {
  const checkpointId = metadata.checkpoint_id;
  if (!isEnvelope(body)) return parseBody(metadata, body);
  // A body that failed to open: its outline may be what was changed; nothing may trust it.
  const reason = corruptReason(body);
  if (reason !== undefined) throw new CheckpointCorruptError(checkpointId, reason);
  const outline = parseEnvelope(body, `checkpoint ${checkpointId}`).o;
  if (outline) return outline;
  throw sealedError(body, `Checkpoint ${checkpointId}`);
}
