/**
 * The state a thread record carries (`state_data.langgraph`), and how LangGraph values become
 * cairn outputs. Values go through the saver's serde, then into cairn's codec as a JSON value
 * (not as escaped text), so an output is about the size of LangGraph's own serialization and
 * `cairn inspect` can show it. See docs/ARCHITECTURE.md ("LangGraph threads").
 */
import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import { decode } from "../core/codec.js";
import { CheckpointCorruptError } from "../core/errors.js";
import { isValidName } from "../core/ids.js";
import { sha256 } from "../core/record.js";
import { EncodedOutput } from "../manager/build.js";

/** A channel version, as LangGraph keeps it. */
export type Version = number | string;

/**
 * A serde result kept in a record: the serde type and the parsed value (json) or the bytes; a
 * third element 1 marks a JSON value LangGraph's default serde would read back unchanged.
 */
export type SerdeValue = [type: string, value: unknown, plain?: 1];

/** State of a record holding one LangGraph checkpoint. */
export interface CheckpointState {
  kind: "checkpoint";
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  /** The LangGraph id of the parent named at `put`, or null. */
  parent_id: string | null;
  /** The checkpoint without `channel_values`. */
  checkpoint: SerdeValue;
  metadata: SerdeValue;
  /**
   * Channel → version: every channel with a value when `full`, else only those `put` named in
   * `newVersions`. A channel here without an entry in `output_refs` has no value (emptied).
   */
  channels: Record<string, Version>;
  full: boolean;
  /** Records between this one and the nearest `full` ancestor (0 when full). */
  depth: number;
  /** Pending-writes records of this checkpoint stored before it (LangGraph sent them first). */
  prior_writes?: number;
  /** The greatest LangGraph checkpoint id of the run, and its cairn id, as of this record. */
  latest: [string, string];
}

/** State of a record holding one `putWrites` call. */
export interface WritesState {
  kind: "writes";
  thread_id: string;
  checkpoint_ns: string;
  /** The LangGraph id of the checkpoint the writes attach to. */
  checkpoint_id: string;
  task_id: string;
  task_path: string;
  /** Channel and index of each write; write i's value is output `w<i>`. */
  writes: [channel: string, idx: number][];
  latest: [string, string];
}

/** State of any thread record. */
export type ThreadState = CheckpointState | WritesState;

/** The output key of channel `channel` in a checkpoint record. */
export function channelKey(channel: string): string {
  const plain = `c.${channel}`;
  if (isValidName(plain)) return plain;
  const hex = `x.${Buffer.from(channel, "utf8").toString("hex")}`;
  return isValidName(hex) ? hex : `h.${sha256(channel)}`;
}

/** The output key of write `i` in a writes record. */
export const writeKey = (i: number) => `w${i}`;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const PLAIN_PREFIX = '{"serde":"json","v":';
/** A plain tree's output: keys in codec order, `plain` saying no reader needs to scan it. */
const PLAIN_TREE_PREFIX = '{"plain":1,"serde":"json","v":';

/** Deeper than this, a tree is left to the serde (and a cycle is found without a visited set). */
const MAX_PLAIN_DEPTH = 256;

/**
 * True when `value` is a tree LangGraph's default serde writes exactly as `JSON.stringify` does
 * and reads back unchanged: plain objects and arrays of strings, booleans, null and finite
 * numbers (not -0), no `lc` key (the only thing its reviver acts on) and no `$cairn` key (cairn's
 * codec tag), at most 256 levels deep (so a cycle is refused too). Anything else (class
 * instances, `undefined`, Map, Set, bytes…) goes through the serde.
 */
export function isPlainTree(value: unknown, depth = 0): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (typeof value !== "object" || depth >= MAX_PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++)
      if (!(i in value) || !isPlainTree(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (key === "lc" || key === "$cairn" || !Object.hasOwn(value, key)) return false;
    if (!isPlainTree((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/**
 * Serializes `value` with `serde` into a value cairn's codec holds: parsed JSON, or bytes.
 * `defaultSerde`: a plain tree (see {@link isPlainTree}) is kept as it is, without the serde.
 */
export async function toSerdeValue(
  serde: SerializerProtocol,
  value: unknown,
  defaultSerde = false,
): Promise<SerdeValue> {
  // A copy: the record is written later, and the caller's objects may change meanwhile.
  if (defaultSerde && isPlainTree(value)) return ["json", structuredClone(value), 1];
  const [type, data] = await serde.dumpsTyped(value);
  if (type === "json") {
    const text = typeof data === "string" ? data : utf8.decode(data);
    // JSON.stringify(undefined) serializes to nothing: kept as undefined, which the codec holds.
    return [type, text === "" ? undefined : JSON.parse(text)];
  }
  return [type, typeof data === "string" ? Buffer.from(data, "utf8") : Uint8Array.from(data)];
}

/** The value a {@link SerdeValue} stands for, through `serde` unless it is marked plain. */
export async function fromSerdeValue(
  serde: SerializerProtocol,
  [type, value, plain]: SerdeValue,
  defaultSerde = false,
): Promise<unknown> {
  // The value was just decoded from the record: a fresh tree, the caller's to keep.
  if (plain === 1 && defaultSerde) return value;
  if (type === "json") return value === undefined ? undefined : serde.loadsTyped(type, JSON.stringify(value));
  if (!(value instanceof Uint8Array)) throw new Error(`a ${type} value is stored without its bytes`);
  return serde.loadsTyped(type, value);
}

/**
 * A value as a cairn output: codec text of `{ serde, v }` (json) or `{ serde, bytes }`. The serde's
 * JSON goes in verbatim (it is valid codec text unless it holds a `$cairn` key, which the codec
 * would read as a tag: such a value is re-encoded), so a write costs LangGraph's serialization
 * and one SHA-256, not a parse and a re-encode.
 */
export async function valueOutput(
  serde: SerializerProtocol,
  value: unknown,
  path: string,
  defaultSerde = false,
): Promise<EncodedOutput> {
  // What the default serde would write, without its replacer walk (about 4× JSON.stringify).
  if (defaultSerde && isPlainTree(value))
    return EncodedOutput.fromText(`${PLAIN_TREE_PREFIX}${JSON.stringify(value)}}`);
  const [type, data] = await serde.dumpsTyped(value);
  if (type === "json") {
    const text = typeof data === "string" ? data : utf8.decode(data);
    if (text !== "" && !text.includes('"$cairn"')) return EncodedOutput.fromText(`${PLAIN_PREFIX}${text}}`);
  }
  const [, stored] = await toSerdeValue(serde, value);
  return EncodedOutput.of(
    type === "json" ? { serde: type, v: stored } : { serde: type, bytes: stored },
    path,
  );
}

/**
 * The JSON text of a `json` output's value when plain JSON.parse gives exactly what the default
 * serde would: no cairn tag in it (the codec tags what JSON cannot hold) and no `lc` key (the
 * only thing LangGraph's reviver acts on). The canonical text holds the value's JSON verbatim.
 */
export function plainJson(text: string): string | undefined {
  // Written from a plain tree (no `lc`, no `$cairn` key): nothing to scan for.
  if (text.startsWith(PLAIN_TREE_PREFIX) && text.endsWith("}"))
    return text.slice(PLAIN_TREE_PREFIX.length, -1);
  if (!text.startsWith(PLAIN_PREFIX) || !text.endsWith("}")) return undefined;
  if (text.includes('"$cairn"') || text.includes('"lc"')) return undefined;
  return text.slice(PLAIN_PREFIX.length, -1);
}

/**
 * The value of an output made by {@link valueOutput}; its hash was verified by the caller.
 * `plain`: the serde is LangGraph's default, so plain JSON may skip it (see {@link plainJson}).
 */
export async function outputValue(
  serde: SerializerProtocol,
  text: string,
  checkpointId: string,
  plain = false,
): Promise<unknown> {
  const json = plain ? plainJson(text) : undefined;
  if (json !== undefined) return JSON.parse(json);
  const tree = decode(text) as { serde?: unknown; v?: unknown; bytes?: unknown } | null;
  if (tree === null || typeof tree !== "object" || typeof tree.serde !== "string")
    throw new CheckpointCorruptError(checkpointId, "an output is not a LangGraph value");
  return fromSerdeValue(serde, [tree.serde, tree.serde === "json" ? tree.v : tree.bytes]);
}

const isString = (v: unknown): v is string => typeof v === "string";
const isPair = (v: unknown): v is [string, string] => Array.isArray(v) && v.length === 2 && v.every(isString);
const isSerde = (v: unknown): v is SerdeValue =>
  Array.isArray(v) && (v.length === 2 || (v.length === 3 && v[2] === 1)) && isString(v[0]);

/** The thread state of a decoded `state_data`, or a `CheckpointCorruptError` naming what is off. */
export function threadState(stateData: unknown, checkpointId: string): ThreadState {
  const s = (stateData as { langgraph?: Record<string, unknown> } | null)?.langgraph;
  const fail = (what: string) =>
    new CheckpointCorruptError(checkpointId, `not a LangGraph thread record: ${what}`);
  if (s === null || typeof s !== "object") throw fail("no langgraph state");
  if (!isString(s.thread_id) || !isString(s.checkpoint_ns) || !isString(s.checkpoint_id))
    throw fail("thread_id, checkpoint_ns or checkpoint_id missing");
  if (!isPair(s.latest)) throw fail("latest missing");
  if (s.kind === "checkpoint") {
    if (!isSerde(s.checkpoint) || !isSerde(s.metadata)) throw fail("checkpoint or metadata missing");
    if (s.parent_id !== null && !isString(s.parent_id)) throw fail("parent_id is not a string");
    if (s.channels === null || typeof s.channels !== "object") throw fail("channels missing");
    if (typeof s.full !== "boolean" || typeof s.depth !== "number") throw fail("full or depth missing");
    if (s.prior_writes !== undefined && typeof s.prior_writes !== "number")
      throw fail("prior_writes is not a number");
    return s as unknown as CheckpointState;
  }
  if (s.kind === "writes") {
    if (!isString(s.task_id) || !isString(s.task_path) || !Array.isArray(s.writes))
      throw fail("task_id, task_path or writes missing");
    return s as unknown as WritesState;
  }
  throw fail(`unknown kind ${JSON.stringify(s.kind)}`);
}
