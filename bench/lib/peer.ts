/**
 * The peer: LangGraph.js's checkpoint savers (`@langchain/langgraph-checkpoint` MemorySaver,
 * `-sqlite` SqliteSaver, `-postgres` PostgresSaver), driven the way LangGraph's own graph
 * runtime drives them, so that cairn is compared with them on their terms.
 *
 * One "stage" is one superstep of a graph whose nodes each write one channel: the runtime
 * copies the previous checkpoint (`copyCheckpoint`), gives it a new `uuid6(step)` id, bumps the
 * written channel to `getNextVersion(max of all versions)`, records what the node saw in
 * `versions_seen`, and calls `saver.put(parentConfig, checkpoint, metadata, newVersions)` with
 * only the channel that changed in `newVersions` (PostgresSaver stores only those channels'
 * blobs; MemorySaver and SqliteSaver serialize the whole checkpoint whatever `newVersions` says).
 * The runtime also calls `putWrites` for each task's writes before `put`; the adapter skips it,
 * which only makes LangGraph's side cheaper. Latest read = `getTuple({ configurable: { thread_id } })`.
 *
 * File and Redis have no saver in scope, so they get no LangGraph rows.
 */
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  type BaseCheckpointSaver,
  type Checkpoint,
  copyCheckpoint,
  emptyCheckpoint,
  MemorySaver,
  maxChannelVersion,
  uuid6,
} from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { openPgPool, openSqlite } from "./raw-floors.js";
import { benchSchema, driverUrl, POSTGRES_URL } from "./servers.js";

/** The stores that have a LangGraph saver. */
export const PEER_STORES = ["memory", "sqlite", "postgres"] as const;

/** Which saver stands beside which cairn store, for the report. */
export const PEER_SAVERS: Record<string, string> = {
  memory: "MemorySaver",
  sqlite:
    "SqliteSaver as shipped: WAL, synchronous=NORMAL (better-sqlite3 builds SQLite to drop to NORMAL in WAL mode, so a commit survives a crash of the process but not of the machine); the write table adds `langgraph (synchronous=FULL)`, the same saver on a connection set to FULL",
  postgres: "PostgresSaver (own pg Pool, server's default synchronous_commit)",
};

export const hasPeer = (store: string): boolean => (PEER_STORES as readonly string[]).includes(store);

/** The schema a LangGraph saver of bench process `pid` uses for scenario `tag`. */
export const peerSchema = (pid: number, tag: string) => `${benchSchema(pid)}_lg_${tag}`;

/** An open saver and how to measure and release what it holds. */
export interface Peer {
  saver: BaseCheckpointSaver<number | string>;
  /** Bytes the saver holds: serialized bytes (memory), file size (sqlite), relation sizes (postgres). */
  bytes(): Promise<number>;
  /** Releases the saver; `drop` also removes its data (the PostgreSQL schema). */
  close(options?: { drop?: boolean }): Promise<void>;
}

/** Memory is per process: the fill saver and the read saver must be the same instance. */
const memorySavers = new Map<string, MemorySaver>();

/**
 * Opens the saver of `store` for scenario folder `dir` (`tag` names its PostgreSQL schema).
 * `fill`: same tables, but commits without waiting for the disk (SQLite synchronous=OFF,
 * PostgreSQL synchronous_commit=off), as cairn's filler does; only setup uses it.
 */
export async function openPeer(store: string, dir: string, tag: string, fill = false): Promise<Peer> {
  return openPeerWith(store, dir, tag, fill ? "fill" : "default");
}

/**
 * SqliteSaver on a connection set to synchronous=FULL, so that it waits for the disk on every
 * commit as cairn's sqlite store does by default.
 */
export async function openSqlitePeerFull(dir: string): Promise<Peer> {
  return openPeerWith("sqlite", dir, "full", "full");
}

async function openPeerWith(
  store: string,
  dir: string,
  tag: string,
  mode: "default" | "fill" | "full",
): Promise<Peer> {
  const fill = mode === "fill";
  if (store === "memory") {
    let saver = memorySavers.get(dir);
    if (!saver) {
      saver = new MemorySaver();
      memorySavers.set(dir, saver);
    }
    const held = saver;
    return {
      saver: held,
      bytes: async () => {
        let sum = 0;
        for (const namespaces of Object.values(held.storage))
          for (const checkpoints of Object.values(namespaces))
            for (const [cp, md] of Object.values(checkpoints)) sum += cp.byteLength + md.byteLength;
        for (const writes of Object.values(held.writes))
          for (const write of Object.values(writes)) sum += write[2].byteLength;
        return sum;
      },
      close: async (options) => {
        if (options?.drop) memorySavers.delete(dir);
      },
    };
  }
  if (store === "sqlite") {
    await mkdir(dir, { recursive: true });
    const path = join(dir, "langgraph.db");
    const saver =
      mode === "default"
        ? SqliteSaver.fromConnString(path)
        : new SqliteSaver(
            await openSqlite(path, [
              "PRAGMA journal_mode = WAL",
              `PRAGMA synchronous = ${fill ? "OFF" : "FULL"}`,
            ]),
          );
    return {
      saver,
      // Closing the last connection checkpoints the WAL into the database file; measure after close.
      bytes: async () => {
        const size = async (p: string) => (await stat(p).catch(() => ({ size: 0 }))).size;
        return (await size(path)) + (await size(`${path}-wal`));
      },
      close: async () => {
        if (saver.db.open) saver.db.close();
      },
    };
  }
  if (store === "postgres") {
    const schema = peerSchema(process.pid, tag);
    const url = driverUrl(POSTGRES_URL);
    let saver: PostgresSaver;
    let end: () => Promise<void>;
    if (fill) {
      const pool = await openPgPool(url, "cairn-bench-langgraph-fill");
      pool.on("connect", (client) => {
        client.query("SET synchronous_commit = off").catch(() => {});
      });
      saver = new PostgresSaver(pool, undefined, { schema });
      end = () => pool.end();
    } else {
      saver = PostgresSaver.fromConnString(url, { schema });
      end = () => saver.end();
    }
    await saver.setup();
    return {
      saver,
      bytes: async () => {
        const pool = await openPgPool(url, "cairn-bench-size");
        try {
          const { rows } = await pool.query(
            `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'r'`,
            [schema],
          );
          return Number((rows[0] as { bytes: string }).bytes);
        } finally {
          await pool.end();
        }
      },
      close: async (options) => {
        if (options?.drop) {
          const pool = await openPgPool(url, "cairn-bench-drop");
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => pool.end());
        }
        await end();
      },
    };
  }
  throw new Error(`no LangGraph saver for store "${store}"`);
}

/**
 * One thread of a graph as the runtime checkpoints it: `stage(channel, value)` is one superstep
 * in which the node of `channel` wrote `value` and nothing else changed.
 */
export class PeerThread {
  private checkpoint: Checkpoint = emptyCheckpoint();
  private config: { configurable: Record<string, string> };
  private step = -1;
  private lastChannel: string | undefined;

  constructor(
    private readonly saver: BaseCheckpointSaver<number | string>,
    readonly threadId: string,
  ) {
    this.config = { configurable: { thread_id: threadId, checkpoint_ns: "" } };
  }

  async stage(channel: string, value: unknown): Promise<void> {
    this.step += 1;
    const next = copyCheckpoint(this.checkpoint);
    next.id = uuid6(this.step);
    next.ts = new Date().toISOString();
    const versions = Object.values(next.channel_versions);
    const current = versions.length > 0 ? maxChannelVersion(...versions) : undefined;
    const version = this.saver.getNextVersion(current as number | undefined);
    next.channel_values[channel] = value;
    next.channel_versions[channel] = version;
    const seen = this.lastChannel;
    if (seen !== undefined) {
      next.versions_seen[channel] = { [seen]: this.checkpoint.channel_versions[seen] as string | number };
    }
    const saved = await this.saver.put(
      this.config,
      next,
      { source: "loop", step: this.step, parents: {} },
      { [channel]: version },
    );
    this.config = saved as { configurable: Record<string, string> };
    this.checkpoint = next;
    this.lastChannel = channel;
  }
}

/** The latest checkpoint of a thread, as the runtime loads it on resume. */
export function peerLatest(saver: BaseCheckpointSaver<number | string>, threadId: string) {
  return saver.getTuple({ configurable: { thread_id: threadId } });
}

/**
 * The timed read: the latest checkpoint with every channel value read, as a resuming graph
 * reads them all (its channels are rebuilt from the checkpoint). LangGraph's savers decode every
 * value inside `getTuple`; a saver that decodes a value when it is first read (CairnSaver) pays
 * for it here, so both sides are timed for the same work.
 */
export async function peerResume(saver: BaseCheckpointSaver<number | string>, threadId: string) {
  const tuple = await peerLatest(saver, threadId);
  return tuple ? Object.values(tuple.checkpoint.channel_values) : undefined;
}

/** Drops every LangGraph schema of bench process `pid` (the parent's cleanup after a crash). */
export async function dropPeerSchemas(pid: number): Promise<string> {
  const pool = await openPgPool(driverUrl(POSTGRES_URL), "cairn-bench-drop");
  try {
    const prefix = `${benchSchema(pid)}_lg_`;
    const { rows } = await pool.query(
      "SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1",
      [prefix],
    );
    for (const { nspname } of rows as { nspname: string }[]) {
      await pool.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
    }
    return `dropped ${rows.length} LangGraph schemas ${prefix}*`;
  } finally {
    await pool.end();
  }
}
