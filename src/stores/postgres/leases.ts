/** The PostgreSQL store's lease acquisition: one transaction that locks the run's lease row. */
import { decideAcquire } from "../lease.js";
import type { LeaseAttempt } from "../types.js";
import { inTransaction } from "./driver.js";
import type { PgWriter } from "./put.js";
import { leaseOf } from "./rows.js";

/** Takes the run's lease in a transaction that locks its row, by the server's clock. */
export async function acquireLease(
  db: PgWriter,
  pipelineId: string,
  owner: string,
  ttlMs: number,
): Promise<LeaseAttempt> {
  return db.call(() =>
    inTransaction(db.pool, async (client) => {
      await db.run(client, db.sql.ensureLeaseRow, [pipelineId]);
      const { rows } = await db.run(client, db.sql.lockLease, [pipelineId]);
      const now = (await db.run(client, db.sql.serverNow, [])).rows[0]?.now_ms;
      const attempt = decideAcquire(pipelineId, leaseOf(pipelineId, rows[0]), owner, ttlMs, Number(now));
      if (attempt.acquired) {
        const { lease } = attempt;
        await db.run(client, db.sql.writeLease, [
          pipelineId,
          lease.owner,
          lease.token,
          lease.expiresAt.toISOString(),
        ]);
      }
      return attempt;
    }),
  );
}
