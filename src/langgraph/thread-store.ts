/**
 * Thread records in a cairn store: reading them verified, walking a checkpoint's ancestors for its
 * channel map, and appending records to a thread namespace's run.
 *
 * Every record is appended on the run's tip (`expectedTip`), so `sequence` orders a run's records
 * exactly whoever writes; the record's parent link is the checkpoint LangGraph names, which makes
 * the run a tree. Reads check each record's checksum and each output's hash, and ancestor walks
 * check each parent link: nothing unverified reaches LangGraph.
 */
import { decodeTree, encode } from "../core/codec.js";
import { CheckpointConflictError, CheckpointCorruptError, TipMovedError } from "../core/errors.js";
import { bodyText } from "../core/formats.js";
import type { CheckpointBody, CheckpointRecord, StoredMetadata } from "../core/record.js";
import { FORMAT_VERSION } from "../core/types.js";
import type { EncodedOutput } from "../manager/build.js";
import { sealBody } from "../manager/build.js";
import { checkOutputText, checkRecordContent } from "../manager/verify.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { KeyedLock } from "../util/fs-util.js";
import { writesRecordId } from "./ids.js";
import {
  type CheckpointState,
  channelKey,
  type ThreadState,
  threadState,
  type Version,
  type WritesState,
} from "./records.js";

/** A thread record, verified, with its parsed body and state. */
export interface ReadRecord<S extends ThreadState = ThreadState> {
  record: CheckpointRecord;
  body: CheckpointBody;
  state: S;
}

/** Channel → its version and the address of its value (null: the channel has no value). */
export type ChannelMap = ReadonlyMap<string, readonly [Version, string | null]>;

/** What a writer knows of a run's newest record. */
interface Tip {
  id: string;
  sequence: number;
  latest: [string, string];
}

/** A record about to be appended; `make` builds it on the tip it will be conditioned on. */
export interface Draft {
  id: string;
  pipelineName: string;
  stageName: string;
  stageIndex: number;
  parent: { id: string; checksum: string } | null;
  state: ThreadState;
  /** Output key → address, for every output the record refers to. */
  refs: ReadonlyMap<string, string>;
  /** The outputs this record introduces (stored with it; addresses already in `refs`). */
  outputs: ReadonlyMap<string, EncodedOutput>;
}

/** A checkpoint whose channel map is known: what the next checkpoint on it needs. */
interface Known {
  checksum: string;
  map: ChannelMap;
  depth: number;
  stageIndex: number;
}

/** Delta records between full channel maps: bounds an ancestor walk to this many reads. */
export const MAX_DEPTH = 8;
/** A channel map this small is always stored whole: no walk at all for most graphs. */
export const FULL_MAP_CHANNELS = 32;
/** A whole channel map is also stored when it adds at most this share to what the record stores. */
export const FULL_MAP_SHARE = 0.05;

/**
 * True when storing `map` whole costs at most {@link FULL_MAP_SHARE} of the `newBytes` of values
 * the record stores anyway: a read then needs no walk, for next to no growth.
 */
export function fullMapCheap(map: ChannelMap, newBytes: number): boolean {
  let bytes = 0;
  // Per channel: its name in the map and in its output key, its version, the 64-hex address.
  for (const [channel, [version]] of map) bytes += 2 * channel.length + String(version).length + 80;
  return bytes <= FULL_MAP_SHARE * newBytes;
}
const MAX_KNOWN = 2000;
const TIP_ATTEMPTS = 8;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The channel versions a checkpoint state records (its `channel_versions`). */
export function versionsOf(state: Pick<CheckpointState, "checkpoint">): Record<string, Version> {
  const cp = state.checkpoint[1] as { channel_versions?: Record<string, Version> } | undefined;
  return cp?.channel_versions ?? {};
}

/**
 * The channel map of a checkpoint from its parent's: the parent's channels still at the version
 * the checkpoint records, overlaid with the channels the checkpoint itself stored.
 */
export function deriveMap<E extends readonly [Version, ...unknown[]]>(
  parent: ReadonlyMap<string, E> | undefined,
  versions: Record<string, Version>,
  own: Iterable<readonly [string, E]>,
): Map<string, E> {
  const map = new Map<string, E>();
  for (const [channel, entry] of parent ?? []) if (versions[channel] === entry[0]) map.set(channel, entry);
  for (const [channel, entry] of own) map.set(channel, entry);
  return map;
}

/** The channels a checkpoint record stored itself, with their addresses. */
function ownEntries(r: ReadRecord<CheckpointState>): [string, readonly [Version, string | null]][] {
  return Object.entries(r.state.channels).map(([channel, version]) => [
    channel,
    [version, r.body.output_refs[channelKey(channel)] ?? null],
  ]);
}

/** Reads and appends the records of thread runs in one store. */
export class ThreadStore {
  private readonly lock = new KeyedLock();
  private readonly tips = new Map<string, Tip>();
  private readonly known = new Map<string, Known>();
  private readonly writeCounts = new Map<string, number>();

  constructor(readonly store: AtRestStore) {}

  /** One record, verified (checksum and shape); undefined when absent. */
  async read(id: string): Promise<ReadRecord | undefined> {
    const record = await this.store.getCheckpoint(id);
    return record ? this.open(record) : undefined;
  }

  /** Verifies a record read from the store and parses its thread state. */
  open(record: CheckpointRecord): ReadRecord {
    const id = record.metadata.checkpoint_id;
    const content = checkRecordContent(record);
    if (content.body === undefined)
      throw new CheckpointCorruptError(
        id,
        content.problems.map((p) => p.message),
      );
    return { record, body: content.body, state: threadState(decodeTree(content.body.state_data), id) };
  }

  /** The run's newest record (highest sequence), verified; undefined for an empty run. */
  async newest(runId: string): Promise<ReadRecord | undefined> {
    const record = await this.store.getLatestCheckpoint(runId);
    return record ? this.open(record) : undefined;
  }

  /** Output texts by address, each checked against its address; a missing or altered one throws. */
  async outputs(runId: string, addresses: Iterable<string>, id: string): Promise<Map<string, string>> {
    const wanted = [...new Set(addresses)];
    if (wanted.length === 0) return new Map();
    const found = await this.store.getOutputs(runId, wanted);
    for (const address of wanted) {
      const check = checkOutputText(this.store, runId, address, found.get(address), "a channel value", id);
      if (!check.ok) throw new CheckpointCorruptError(id, check.message);
    }
    return found;
  }

  /** The channel map of a checkpoint record, walking its delta ancestors (each link checked). */
  async channelMap(r: ReadRecord<CheckpointState>): Promise<ChannelMap> {
    const id = r.record.metadata.checkpoint_id;
    const cached = this.known.get(id);
    if (cached && cached.checksum === r.record.metadata.checksum) return cached.map;
    const chain: ReadRecord<CheckpointState>[] = [r];
    let base: ChannelMap | undefined;
    for (let cur = r; !cur.state.full; ) {
      const { parent_checkpoint_id: parentId, parent_checksum: expected } = cur.record.metadata;
      const here = cur.record.metadata.checkpoint_id;
      if (parentId === null) throw new CheckpointCorruptError(here, "a delta channel map without a parent");
      const known = this.known.get(parentId);
      if (known && known.checksum === expected) {
        base = known.map;
        break;
      }
      const parent = await this.read(parentId);
      if (!parent) throw new CheckpointCorruptError(here, `its ancestor ${parentId} is missing`);
      if (parent.record.metadata.checksum !== expected)
        throw new CheckpointCorruptError(here, `its parent ${parentId} does not match the parent checksum`);
      if (parent.state.kind !== "checkpoint")
        throw new CheckpointCorruptError(here, `its parent ${parentId} is not a checkpoint`);
      cur = parent as ReadRecord<CheckpointState>;
      chain.push(cur);
    }
    let map = base;
    for (const rec of chain.reverse())
      map = rec.state.full
        ? new Map(ownEntries(rec))
        : deriveMap(map, versionsOf(rec.state), ownEntries(rec));
    const result = map ?? new Map();
    this.remember(id, {
      checksum: r.record.metadata.checksum,
      map: result,
      depth: r.state.depth,
      stageIndex: r.record.metadata.stage_index,
    });
    return result;
  }

  /** What the next checkpoint on `id` needs to know of it, or undefined when it is absent. */
  async knownCheckpoint(id: string): Promise<Known | undefined> {
    const cached = this.known.get(id);
    if (cached) return cached;
    const r = await this.read(id);
    if (!r) return undefined;
    if (r.state.kind !== "checkpoint")
      throw new CheckpointCorruptError(id, "a LangGraph parent must be a checkpoint, not pending writes");
    await this.channelMap(r as ReadRecord<CheckpointState>);
    return this.known.get(id);
  }

  /**
   * The pending-writes records of a checkpoint, in slot order. `known`: how many there are, when the
   * caller knows (from the run's tip or listing), so that no absent id is asked for: on the file
   * store that costs a listing of every run. A writer takes slot n only once slots 1..n-1 exist,
   * so the slots are always 1..count.
   */
  async writesOf(checkpointId: string, known?: number): Promise<ReadRecord<WritesState>[]> {
    const out: ReadRecord<WritesState>[] = [];
    const check = (r: ReadRecord | undefined, id: string): ReadRecord<WritesState> => {
      if (!r) throw new CheckpointCorruptError(id, "this pending-writes record is missing");
      if (r.state.kind !== "writes")
        throw new CheckpointCorruptError(r.record.metadata.checkpoint_id, "expected pending writes");
      return r as ReadRecord<WritesState>;
    };
    if (known !== undefined) {
      const ids = Array.from({ length: known }, (_, i) => writesRecordId(checkpointId, i + 1));
      out.push(...(await Promise.all(ids.map(async (id) => check(await this.read(id), id)))));
    } else {
      for (let n = 1; ; n++) {
        const id = writesRecordId(checkpointId, n);
        const r = await this.read(id);
        if (!r) break;
        out.push(check(r, id));
      }
    }
    this.countWrite(checkpointId, out.length);
    return out;
  }

  /** How many pending-writes records `checkpointId` has (cached from this process's writes). */
  async writeCount(checkpointId: string): Promise<number> {
    return this.writeCounts.get(checkpointId) ?? (await this.writesOf(checkpointId)).length;
  }

  /** Serializes the writes of one run in this process; other processes are fenced by `expectedTip`. */
  exclusive<T>(runId: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(runId, fn);
  }

  /**
   * Appends a record to run `runId` on its tip, rebuilding it when another writer moved the tip.
   * `make` gets the tip's `latest` (undefined for an empty run) and the run's data key. Call
   * inside {@link exclusive}.
   */
  async append(
    runId: string,
    make: (latest: [string, string] | undefined, key: Parameters<EncodedOutput["addressIn"]>[0]) => Draft,
  ): Promise<CheckpointRecord> {
    for (let attempt = 1; ; attempt++) {
      const tip = this.tips.get(runId) ?? (await this.readTip(runId));
      const key = await this.store.writeKey(runId, tip === undefined);
      const draft = make(tip?.latest, key);
      const { record, outputs } = this.seal(runId, draft, (tip?.sequence ?? 0) + 1, key);
      try {
        await this.store.putCheckpoint(record, outputs, undefined, { expectedTip: tip?.id ?? null });
      } catch (error) {
        this.tips.delete(runId);
        if (error instanceof TipMovedError && attempt < TIP_ATTEMPTS) {
          await sleep(Math.random() * 5 * attempt);
          continue;
        }
        throw error;
      }
      this.tips.set(runId, {
        id: draft.id,
        sequence: record.metadata.sequence,
        latest: draft.state.latest,
      });
      return record;
    }
  }

  /** Records what a written checkpoint's channel map is, so a child needs no read. */
  remember(id: string, known: Known): void {
    this.known.delete(id);
    this.known.set(id, known);
    if (this.known.size > MAX_KNOWN) this.known.delete(this.known.keys().next().value as string);
  }

  /** True when this process knows checkpoint `id` is stored (it wrote or read it). */
  isKnown(id: string): boolean {
    return this.known.has(id);
  }

  /** How many pending-writes records of `checkpointId` this process knows of, if it knows. */
  cachedWriteCount(checkpointId: string): number | undefined {
    return this.writeCounts.get(checkpointId);
  }

  /** Notes a pending-writes record written by this process. */
  countWrite(checkpointId: string, n: number): void {
    this.writeCounts.set(checkpointId, n);
    if (this.writeCounts.size > MAX_KNOWN)
      this.writeCounts.delete(this.writeCounts.keys().next().value as string);
  }

  /** Forgets everything cached of a run (deleted). */
  forget(runId: string): void {
    this.tips.delete(runId);
    for (const map of [this.known, this.writeCounts])
      for (const id of map.keys()) if (id.startsWith(`${runId}.`)) map.delete(id);
  }

  private async readTip(runId: string): Promise<Tip | undefined> {
    const newest = await this.newest(runId);
    if (!newest) return undefined;
    const m = newest.record.metadata;
    return { id: m.checkpoint_id, sequence: m.sequence, latest: newest.state.latest };
  }

  private seal(
    runId: string,
    draft: Draft,
    sequence: number,
    key: Parameters<EncodedOutput["addressIn"]>[0],
  ): { record: CheckpointRecord; outputs: { hash: string; body: string }[] } {
    const refs = [...draft.refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const body = bodyText(
      {
        completed_stages: [],
        output_migrations: {},
        output_refs: Object.fromEntries(refs),
        output_versions: Object.fromEntries(refs.map(([k]) => [k, 1])),
        pending_stages: [],
        pipeline_version: null,
        provenance_hashes: {},
      },
      encode({ langgraph: draft.state }, "langgraph state"),
    );
    const metadata: Omit<StoredMetadata, "checksum" | "data_size"> = {
      checkpoint_id: draft.id,
      pipeline_id: runId,
      pipeline_name: draft.pipelineName,
      stage_name: draft.stageName,
      stage_index: draft.stageIndex,
      sequence,
      timestamp: new Date().toISOString(),
      status: "completed",
      error_message: null,
      resume_count: 0,
      parent_checkpoint_id: draft.parent?.id ?? null,
      parent_checksum: draft.parent?.checksum ?? null,
      format_version: FORMAT_VERSION,
    };
    return sealBody(metadata, body, draft.outputs, undefined, key);
  }
}

/** True for the conflict of an id that is already stored (not a moved tip). */
export function isIdTaken(error: unknown): boolean {
  return error instanceof CheckpointConflictError && !(error instanceof TipMovedError);
}
