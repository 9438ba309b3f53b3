/**
 * The PostgreSQL store's write path. A checkpoint with at most one new output is one statement
 * (see `putOne` in queries.ts): one round trip with the fence and tip checks. More outputs, or
 * a statement that wrote nothing because a check failed, go through one transaction, which locks
 * the lease and run rows, reads the run's tip after the lock and reports what failed.
 */
import { CheckpointConflictError, InvalidArgumentError, TipMovedError } from "../../core/errors.js";
import { isEnvelope } from "../../core/sealed.js";
import { assertFence } from "../lease.js";
import type { CheckpointRecord, Lease, OutputRecord } from "../types.js";
import { inTransaction, type PgPool, type PgQueryable, type PgResult, writeOnPool } from "./driver.js";
import { changeParams } from "./feed-sql.js";
import { COLUMNS, type Statement, type Statements, type TipMode } from "./queries.js";
import { isoOf, leaseOf } from "./rows.js";

// JSONB refuses \u0000 and unpaired surrogate escapes, which a canonical body may hold (JSON
// escapes them; TEXT stores them fine). Such a body gets no JSONB copy rather than failing.
export const JSONB_UNSAFE = /\\u(?:0000|[dD][89abAB])/;

/**
 * True when a body gets JSONB copies for querying: not for a body JSONB refuses, nor for an
 * envelope (compressed or encrypted at rest), which holds none of the fields and is not parsed.
 */
export function queryableBody(body: string): boolean {
  return !isEnvelope(body) && !JSONB_UNSAFE.test(body);
}

/** What the write path needs from its store. */
export interface PgWriter {
  pool: PgPool;
  sql: Statements;
  /** Runs single write statements: a connection lost after sending one is reported as maybe applied. */
  writeOnce: PgQueryable;
  /** How many of the newest changes the feed keeps; every write may trim older ones. */
  feedRetention: number;
  /** Runs a prepared statement with the store's type parsers. */
  run(on: PgQueryable, statement: Statement, values: unknown[]): Promise<PgResult>;
  /** Runs `work`, reporting a lost connection as `StoreUnavailableError`. */
  call<T>(work: () => Promise<T>): Promise<T>;
}

/** Stores a checkpoint, its new outputs and the run's row, atomically; see the file's comment. */
export async function putCheckpoint(
  db: PgWriter,
  record: CheckpointRecord,
  outputs: readonly OutputRecord[],
  fence: Lease | undefined,
  tip: string | null | undefined,
): Promise<void> {
  const m = record.metadata;
  // The checksum covers the timestamp text; TIMESTAMPTZ gives back toISOString(), so any other
  // spelling of the same instant would read back different and fail verification.
  if (isoOf(m.timestamp) !== m.timestamp) {
    throw new InvalidArgumentError(
      `checkpoint ${m.checkpoint_id}: timestamp ${JSON.stringify(m.timestamp)} is not in ` +
        "the form 2024-01-01T12:00:00.000Z, the only form this store gives back unchanged",
    );
  }
  const values: unknown[] = COLUMNS.map((column) => m[column]);
  values.push(record.body, queryableBody(record.body));
  if (outputs.length <= 1 && (await putSingleStatement(db, m, values, outputs[0], fence, tip))) return;
  await db.call(() =>
    inTransaction(db.pool, async (client) => {
      if (fence) {
        // The row lock holds off a concurrent acquire until this write commits or rolls back.
        const { rows } = await db.run(client, db.sql.lockLease, [m.pipeline_id]);
        assertFence(leaseOf(m.pipeline_id, rows[0]), fence);
      }
      // Locked before the tip is read, so the read sees every write that came before ours.
      await db.run(client, db.sql.ensureRun, [m.pipeline_id, m.pipeline_name, m.timestamp]);
      await db.run(client, db.sql.lockRun, [m.pipeline_id]);
      if (tip !== undefined) {
        const { rows } = await db.run(client, db.sql.selectNewestId, [m.pipeline_id]);
        const actual = rows[0] === undefined ? null : String(rows[0].checkpoint_id);
        if (actual !== tip) throw new TipMovedError(m.checkpoint_id, m.pipeline_id, tip, actual);
      }
      if (outputs.length === 1) {
        const [only] = outputs as [OutputRecord];
        await db.run(client, db.sql.insertOutput, [m.pipeline_id, only.hash, only.body]);
      } else if (outputs.length > 1) {
        await db.run(client, db.sql.insertOutputs, [
          m.pipeline_id,
          outputs.map((o) => o.hash),
          outputs.map((o) => o.body),
        ]);
      }
      const inserted = await db.run(client, db.sql.insertCheckpoint, values);
      // Thrown inside the transaction, so the outputs inserted above are rolled back too.
      if (inserted.rowCount === 0) throw new CheckpointConflictError(m.checkpoint_id);
      await db.run(client, db.sql.refreshRun, [m.pipeline_id, m.stage_name === "pipeline_complete"]);
      // Last: the feed's row lock is held from here to the commit only.
      await db.run(
        client,
        db.sql.feed.recordChanges,
        changeParams(
          [
            {
              type: "checkpoint",
              pipelineId: m.pipeline_id,
              pipelineName: null,
              checkpointId: m.checkpoint_id,
              sequence: m.sequence,
            },
          ],
          db.feedRetention,
        ),
      );
    }),
  );
}

/**
 * The common case (at most one new output) in one round trip; see `putOne` in queries.ts.
 * False when it wrote nothing: a fence or tip check failed, which the transaction reports.
 */
async function putSingleStatement(
  db: PgWriter,
  m: CheckpointRecord["metadata"],
  values: unknown[],
  output: OutputRecord | undefined,
  fence: Lease | undefined,
  tip: string | null | undefined,
): Promise<boolean> {
  const params = [...values];
  if (output) params.push(output.hash, output.body);
  if (fence) params.push(fence.owner, fence.token);
  if (typeof tip === "string") params.push(tip);
  params.push(db.feedRetention);
  const mode: TipMode = tip === undefined ? "any" : tip === null ? "none" : "id";
  const statement = db.sql.put[`${output ? "one" : "none"}${fence ? "_fenced" : ""}_${mode}`];
  const result = await db.call(async () => {
    try {
      // A connection lost after sending it is reported as maybe applied.
      return await db.run({ query: (query) => writeOnPool(db.pool, query) }, statement, params);
    } catch (error) {
      if ((error as { code?: unknown }).code === "23505") throw new CheckpointConflictError(m.checkpoint_id);
      throw error;
    }
  });
  return result.rowCount !== 0;
}
