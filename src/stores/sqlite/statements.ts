/**
 * The SQLite store's prepared statements, and the transactions that group them: a checkpoint
 * with its outputs, lease decisions, and deletions each run in one transaction.
 */
import { CheckpointConflictError, CheckpointCorruptError, TipMovedError } from "../../core/errors.js";
import { assertFence, decideAcquire, isSameLease } from "../lease.js";
import type { CheckpointRecord, Lease, LeaseAttempt, OutputRecord, StatusPatch } from "../types.js";
import { missingFeed, prepareFeed } from "./feed.js";
import type { TableNames } from "./migrations.js";
import { asText, COLUMNS, type Row } from "./rows.js";
import { prepareRunKeys } from "./run-keys.js";
import { prepareRunQueries } from "./runs.js";
import type { SqliteDatabase, SqliteStatement } from "./sqlite-store.js";

const PATCH_FIELDS = [
  "status",
  "error_message",
  "resume_count",
] as const satisfies readonly (keyof StatusPatch)[];

// Runs after the migrations: SQLite resolves table names when a statement is prepared.
/**
 * Prepares every statement of the store and the transactions built on them. Each transaction
 * that changes a checkpoint or run records its changes in the feed before it commits. With
 * `noFeed` (a read-only open of a schema from before the feed), every feed method, and so every
 * write, throws its error.
 */
export function prepareAll(
  db: SqliteDatabase,
  tables: TableNames,
  feedRetention: number,
  noFeed?: () => Error,
) {
  const { checkpoints: c, outputs: o, leases: l, runs: r, runKeys: k } = tables;
  const columns = COLUMNS.join(", ");
  const prepare = (sql: string) => db.prepare(sql).safeIntegers(false);
  // The run's newest checkpoint, in the order `compareStored` gives, served by the run index.
  const newestOf = (run: string) =>
    `FROM ${c} WHERE pipeline_id = ${run} ORDER BY sequence DESC, timestamp DESC, checkpoint_id DESC LIMIT 1`;
  const newest = newestOf("?");
  const s = {
    insertOutput: prepare(`INSERT OR IGNORE INTO ${o} (pipeline_id, hash, body, size) VALUES (?, ?, ?, ?)`),
    insertCheckpoint: prepare(
      `INSERT INTO ${c} (${columns}, body) VALUES (${COLUMNS.map((f) => `@${f}`).join(", ")}, @body)`,
    ),
    selectCheckpoint: prepare(`SELECT ${columns}, body FROM ${c} WHERE checkpoint_id = ?`),
    selectLatest: prepare(`SELECT ${columns}, body ${newest}`),
    // The same row without its body, for the tip check of a write.
    selectLatestId: prepare(`SELECT checkpoint_id ${newest}`),
    selectRun: prepare(
      `SELECT ${columns} FROM ${c} WHERE pipeline_id = ? ORDER BY sequence, timestamp, checkpoint_id`,
    ),
    selectRunIds: prepare(`SELECT pipeline_id FROM ${c} UNION SELECT pipeline_id FROM ${o}`),
    checkpointExists: prepare(`SELECT 1 FROM ${c} WHERE checkpoint_id = ?`),
    deleteCheckpoint: prepare(`DELETE FROM ${c} WHERE pipeline_id = ? AND checkpoint_id = ?`),
    selectOutput: prepare(`SELECT body FROM ${o} WHERE pipeline_id = ? AND hash = ?`),
    selectOutputHashes: prepare(`SELECT hash FROM ${o} WHERE pipeline_id = ? ORDER BY hash`),
    deleteOutput: prepare(`DELETE FROM ${o} WHERE pipeline_id = ? AND hash = ?`),
    deleteRunCheckpoints: prepare(`DELETE FROM ${c} WHERE pipeline_id = ?`),
    deleteRunOutputs: prepare(`DELETE FROM ${o} WHERE pipeline_id = ?`),
    // Every write moves the run's head; the indexed columns change only when the run is created
    // (the insert) or finishes (markFinished), so most writes rewrite one row and no index.
    upsertRun: prepare(
      `INSERT INTO ${r} (pipeline_id, pipeline_name, created_at, finished, last_sequence, last_checkpoint_id, last_checksum)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pipeline_id) DO UPDATE SET last_sequence = excluded.last_sequence,
       last_checkpoint_id = excluded.last_checkpoint_id, last_checksum = excluded.last_checksum`,
    ),
    markFinished: prepare(`UPDATE ${r} SET finished = 1 WHERE pipeline_id = ? AND finished = 0`),
    // After deletions: the head is the newest checkpoint left (none: NULLs).
    refreshHead: prepare(
      `UPDATE ${r} SET (last_sequence, last_checkpoint_id, last_checksum) =
       (SELECT sequence, checkpoint_id, checksum ${newestOf("@run")}) WHERE pipeline_id = @run`,
    ),
    // Retention's tombstone: the highest sequence it removed, kept across cleanups.
    markPruned: prepare(
      `UPDATE ${r} SET pruned_through = MAX(COALESCE(pruned_through, -1), @through), pruned_at = @at
       WHERE pipeline_id = @run`,
    ),
    selectHead: prepare(
      `SELECT last_sequence, last_checkpoint_id, last_checksum, pruned_through, pruned_at FROM ${r}
       WHERE pipeline_id = ?`,
    ),
    selectDeleted: prepare(
      `SELECT sequence, pipeline_name FROM ${c} WHERE pipeline_id = ? AND checkpoint_id = ?`,
    ),
    // The runs row's name, else a checkpoint's (a lost runs row), else "" (outputs only).
    selectRunName: prepare(
      `SELECT COALESCE((SELECT pipeline_name FROM ${r} WHERE pipeline_id = @run),
       (SELECT pipeline_name FROM ${c} WHERE pipeline_id = @run LIMIT 1), '') AS pipeline_name`,
    ),
    deleteRunEntry: prepare(`DELETE FROM ${r} WHERE pipeline_id = ?`),
    deleteRunKey: prepare(`DELETE FROM ${k} WHERE pipeline_id = ?`),
    selectLease: prepare(`SELECT owner, token, expires_at FROM ${l} WHERE pipeline_id = ?`),
    upsertLease: prepare(
      `INSERT INTO ${l} (pipeline_id, owner, token, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (pipeline_id) DO UPDATE SET owner = excluded.owner, token = excluded.token,
       expires_at = excluded.expires_at`,
    ),
  };
  const leaseOf = (pipelineId: string): Lease | undefined => {
    const row = s.selectLease.get(pipelineId) as
      | { owner: string; token: number; expires_at: number }
      | undefined;
    return row && { pipelineId, owner: row.owner, token: row.token, expiresAt: new Date(row.expires_at) };
  };
  const writeLease = (lease: Lease) =>
    s.upsertLease.run(lease.pipelineId, lease.owner, lease.token, lease.expiresAt.getTime());
  const feed = noFeed ? missingFeed(noFeed) : prepareFeed(db, tables, feedRetention);
  const sumChanges = (statement: SqliteStatement, pipelineId: string, keys: readonly string[]) => {
    let changes = 0;
    for (const key of keys) changes += statement.run(pipelineId, key).changes;
    return changes;
  };
  const transactions = {
    put: db.transaction(
      (
        record: CheckpointRecord,
        outputs: readonly OutputRecord[],
        fence: Lease | undefined,
        expectedTip: string | null | undefined,
      ) => {
        const m = record.metadata;
        // Checked inside the write transaction: no other runner can take the lease in between.
        if (fence) assertFence(leaseOf(m.pipeline_id), fence);
        if (expectedTip !== undefined) {
          const newest = s.selectLatestId.get(m.pipeline_id) as { checkpoint_id: unknown } | undefined;
          const actual = newest === undefined ? null : String(newest.checkpoint_id);
          if (actual !== expectedTip)
            throw new TipMovedError(m.checkpoint_id, m.pipeline_id, expectedTip, actual);
        }
        for (const output of outputs) {
          s.insertOutput.run(m.pipeline_id, output.hash, output.body, Buffer.byteLength(output.body, "utf8"));
        }
        const params: Row = { body: record.body };
        for (const field of COLUMNS) params[field] = m[field];
        try {
          s.insertCheckpoint.run(params);
        } catch (error) {
          // Thrown inside the transaction, so the outputs inserted above are rolled back too.
          if ((error as { code?: unknown }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
            throw new CheckpointConflictError(m.checkpoint_id);
          }
          throw error;
        }
        const complete = m.stage_name === "pipeline_complete" ? 1 : 0;
        s.upsertRun.run(
          m.pipeline_id,
          m.pipeline_name,
          m.timestamp,
          complete,
          m.sequence,
          m.checkpoint_id,
          m.checksum,
        );
        if (complete) s.markFinished.run(m.pipeline_id);
        feed.record("checkpoint", m.pipeline_id, m.pipeline_name, m.checkpoint_id, m.sequence);
      },
    ),
    // The head stays: a deletion is never a rewind, and retention's is recorded as a tombstone.
    deleteCheckpoints: db.transaction((pipelineId: string, ids: readonly string[], retention: boolean) => {
      let through = -1;
      let deleted = 0;
      for (const id of ids) {
        const row = s.selectDeleted.get(pipelineId, id) as Row | undefined;
        if (row === undefined || s.deleteCheckpoint.run(pipelineId, id).changes === 0) continue;
        deleted += 1;
        const sequence = Number(row.sequence);
        if (retention) through = Math.max(through, sequence);
        feed.record("deleted", pipelineId, String(row.pipeline_name), id, sequence);
      }
      if (through >= 0) s.markPruned.run({ run: pipelineId, through, at: new Date().toISOString() });
      return deleted;
    }),
    // `update` is one of the store's `UPDATE ... RETURNING pipeline_id, pipeline_name, sequence`.
    updateStatus: db.transaction((update: SqliteStatement, params: Row): boolean => {
      const row = update.get(params) as Row | undefined;
      if (row === undefined) return false;
      const id = String(params.checkpoint_id);
      feed.record("status", String(row.pipeline_id), String(row.pipeline_name), id, Number(row.sequence));
      return true;
    }),
    // A read transaction gives every lookup the same snapshot.
    getOutputs: db.transaction((pipelineId: string, hashes: readonly string[]) => {
      const found = new Map<string, string>();
      for (const hash of hashes) {
        const row = s.selectOutput.get(pipelineId, hash) as Row | undefined;
        if (row === undefined) continue;
        const body = asText(row.body);
        if (body === undefined) {
          throw new CheckpointCorruptError(undefined, `${o}#${pipelineId}/${hash}: output body is not text`);
        }
        found.set(hash, body);
      }
      return found;
    }),
    deleteOutputs: db.transaction((pipelineId: string, hashes: readonly string[]) =>
      sumChanges(s.deleteOutput, pipelineId, hashes),
    ),
    acquireLease: db.transaction((pipelineId: string, owner: string, ttlMs: number): LeaseAttempt => {
      const attempt = decideAcquire(pipelineId, leaseOf(pipelineId), owner, ttlMs, Date.now());
      if (attempt.acquired) writeLease(attempt.lease);
      return attempt;
    }),
    renewLease: db.transaction((lease: Lease, ttlMs: number): Lease | undefined => {
      if (!isSameLease(leaseOf(lease.pipelineId), lease)) return undefined;
      const renewed = { ...lease, expiresAt: new Date(Date.now() + ttlMs) };
      writeLease(renewed);
      return renewed;
    }),
    releaseLease: db.transaction((lease: Lease) => {
      if (isSameLease(leaseOf(lease.pipelineId), lease)) writeLease({ ...lease, expiresAt: new Date(0) });
    }),
    // The key record first: with secure_delete on, its bytes are zeroed in the page it was in.
    // True when the run had a key record (whose old bytes the WAL still holds).
    // One `deleted` change when anything of the run was stored (a key record alone is not).
    deleteRun: db.transaction((pipelineId: string): boolean => {
      const { pipeline_name: name } = s.selectRunName.get({ run: pipelineId }) as { pipeline_name: unknown };
      const keyed = s.deleteRunKey.run(pipelineId).changes > 0;
      const removed =
        s.deleteRunCheckpoints.run(pipelineId).changes +
        s.deleteRunOutputs.run(pipelineId).changes +
        s.deleteRunEntry.run(pipelineId).changes;
      if (removed > 0) feed.record("deleted", pipelineId, String(name));
      return keyed;
    }),
  };
  // One UPDATE per set of patched fields, prepared on first use.
  const updates = new Map<string, SqliteStatement>();
  /**
   * Updates only the patched fields, with its `status` change, in one immediate transaction:
   * "changed", "unchanged" (an empty patch of an existing checkpoint), or false when it is absent.
   */
  const updateStatus = (checkpointId: string, patch: StatusPatch): "changed" | "unchanged" | false => {
    const fields = PATCH_FIELDS.filter((f) => patch[f] !== undefined);
    if (fields.length === 0) return s.checkpointExists.get(checkpointId) !== undefined && "unchanged";
    const key = fields.join(",");
    let update = updates.get(key);
    if (!update) {
      update = prepare(
        `UPDATE ${c} SET ${fields.map((f) => `${f} = @${f}`).join(", ")} WHERE checkpoint_id = @checkpoint_id
         RETURNING pipeline_id, pipeline_name, sequence`,
      );
      updates.set(key, update);
    }
    const params: Row = { checkpoint_id: checkpointId };
    for (const f of fields) params[f] = patch[f];
    return transactions.updateStatus.immediate(update, params) && "changed";
  };
  const keys = prepareRunKeys(db, tables);
  const runs = prepareRunQueries(db, tables);
  return { statements: s, transactions, runs, keys, leaseOf, feed, updateStatus };
}

/** The prepared statements and transactions of one store. */
export type Prepared = ReturnType<typeof prepareAll>;
