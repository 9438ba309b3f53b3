import { describeStoreConformance } from "cairn-pipelines/testing";
import pg from "pg";
import { describe } from "vitest";
import { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

describe.skipIf(!postgresUp)("postgres", () => {
  describeStoreConformance("postgres", async () => {
    // Each test gets its own schema, so tests never see each other's rows.
    const schema = uniqueName("cairn_t");
    const open = () => PostgresStore.open({ connectionString: POSTGRES_URL, schema, poolSize: 4 });
    // Tampering goes around the store, on a connection of its own.
    const sql = async (text: string, values: unknown[]) => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(text, values);
      } finally {
        await client.end();
      }
    };
    return {
      store: await open(),
      reopen: open,
      async corruptOutput(pipelineId, hash, body) {
        await sql(`UPDATE "${schema}".cairn_outputs SET body = $1 WHERE pipeline_id = $2 AND hash = $3`, [
          body,
          pipelineId,
          hash,
        ]);
      },
      async addGarbage(pipelineId) {
        await sql(
          `INSERT INTO "${schema}".cairn_checkpoints (checkpoint_id, pipeline_id, pipeline_name, stage_name,
           stage_index, sequence, timestamp, status, checksum, data_size, error_message, resume_count,
           parent_checkpoint_id, parent_checksum, format_version, body)
           VALUES ($1, $2, 'x', 'garbage', 0, 99, now(), 'bogus', 'x', 0, NULL, 0, NULL, NULL, 1, '{')`,
          [`${pipelineId}_garbage`, pipelineId],
        );
      },
      async cleanup() {
        await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`, []);
      },
    };
  });
});
