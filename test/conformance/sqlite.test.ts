import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describeStoreConformance } from "cairn-pipelines/testing";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";

describeStoreConformance("sqlite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cairn-sqlite-"));
  const dbPath = join(dir, "cairn.db");
  const open = () => SqliteStore.open({ dbPath });
  const withDb = (fn: (db: Database.Database) => void) => {
    const db = new Database(dbPath);
    try {
      fn(db);
    } finally {
      db.close();
    }
  };
  return {
    store: await open(),
    reopen: open,
    async corruptOutput(pipelineId, hash, body) {
      withDb((db) =>
        db
          .prepare("UPDATE cairn_outputs SET body = ? WHERE pipeline_id = ? AND hash = ?")
          .run(body, pipelineId, hash),
      );
    },
    async addGarbage(pipelineId) {
      withDb((db) =>
        db
          .prepare(
            `INSERT INTO cairn_checkpoints (checkpoint_id, pipeline_id, pipeline_name, stage_name, stage_index, sequence,
             timestamp, status, checksum, data_size, error_message, resume_count, parent_checkpoint_id, parent_checksum,
             format_version, body) VALUES (?, ?, 'x', 'garbage', 0, 99, 'not a date', 'bogus', 'x', 0, NULL, 0, NULL, NULL, 1, '{')`,
          )
          .run(`${pipelineId}_garbage`, pipelineId),
      );
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
});
