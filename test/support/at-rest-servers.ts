/**
 * Raw access to the PostgreSQL and Redis stores of the at-rest tests, around cairn: rows read
 * and changed with plain SQL on a connection of their own, keys with plain Redis commands.
 */
import { Redis } from "ioredis";
import pg from "pg";
import type { RawPiece } from "./at-rest-stores.js";
import { POSTGRES_URL, REDIS_URL } from "./services.js";

/** Rows of one schema. */
export function postgresParts(schema: string) {
  const sql = async (text: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  const t = (table: string) => `"${schema}"."${table}"`;
  return {
    async dump() {
      const tables = await sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
        [schema],
      );
      const pieces: RawPiece[] = [];
      for (const { table_name } of tables) {
        // Each whole row as text: every column, whatever its type.
        for (const row of await sql(`SELECT r::text AS row FROM ${t(String(table_name))} r`))
          pieces.push({ where: `${schema}.${String(table_name)}`, bytes: Buffer.from(String(row.row)) });
      }
      return pieces;
    },
    async body(checkpointId: string) {
      const [row] = await sql(`SELECT body FROM ${t("cairn_checkpoints")} WHERE checkpoint_id = $1`, [
        checkpointId,
      ]);
      if (!row) throw new Error(`no row for checkpoint ${checkpointId}`);
      return String(row.body);
    },
    async setBody(checkpointId: string, body: string) {
      await sql(`UPDATE ${t("cairn_checkpoints")} SET body = $1 WHERE checkpoint_id = $2`, [
        body,
        checkpointId,
      ]);
    },
    async outputs(pipelineId: string) {
      const found = await sql(`SELECT hash, body FROM ${t("cairn_outputs")} WHERE pipeline_id = $1`, [
        pipelineId,
      ]);
      return new Map(found.map((r) => [String(r.hash), String(r.body)]));
    },
    async setOutput(pipelineId: string, hash: string, text: string) {
      await sql(`UPDATE ${t("cairn_outputs")} SET body = $1 WHERE pipeline_id = $2 AND hash = $3`, [
        text,
        pipelineId,
        hash,
      ]);
    },
    async runKey(pipelineId: string) {
      const [row] = await sql(`SELECT record FROM ${t("cairn_run_keys")} WHERE pipeline_id = $1`, [
        pipelineId,
      ]);
      return row === undefined ? undefined : String(row.record);
    },
  };
}

/** Keys under one prefix; `quit` closes the connection. */
export function redisParts(prefix: string) {
  const raw = new Redis(REDIS_URL);
  return {
    async dump() {
      const pieces: RawPiece[] = [];
      let cursor = "0";
      const keys: string[] = [];
      do {
        const [next, found] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
        keys.push(...found);
        cursor = next;
      } while (cursor !== "0");
      for (const key of keys.sort()) {
        const type = await raw.type(key);
        let values: Buffer[];
        if (type === "string") values = [(await raw.getBuffer(key)) ?? Buffer.alloc(0)];
        else if (type === "hash")
          values = await raw
            .hgetallBuffer(key)
            .then((h) => Object.entries(h).flatMap(([f, v]) => [Buffer.from(f), v]));
        else if (type === "zset") values = await raw.zrangeBuffer(key, 0, -1);
        else if (type === "set") values = await raw.smembersBuffer(key);
        else if (type === "list") values = await raw.lrangeBuffer(key, 0, -1);
        else if (type === "stream")
          // The change feed: names and ids only, read whole so a marker in it would be found.
          values = (await raw.xrangeBuffer(key, "-", "+")).flatMap(([id, fields]) => [id, ...fields]);
        else throw new Error(`key ${key} has type ${type}, which the dump does not read`);
        pieces.push({ where: key, bytes: Buffer.concat([Buffer.from(key), ...values]) });
      }
      return pieces;
    },
    async body(checkpointId: string) {
      const body = await raw.hget(`${prefix}ckpt:${checkpointId}`, "body");
      if (body === null) throw new Error(`no hash for checkpoint ${checkpointId}`);
      return body;
    },
    async setBody(checkpointId: string, body: string) {
      await raw.hset(`${prefix}ckpt:${checkpointId}`, "body", body);
    },
    async outputs(pipelineId: string) {
      return new Map(Object.entries(await raw.hgetall(`${prefix}run:${pipelineId}:outputs`)));
    },
    async setOutput(pipelineId: string, hash: string, text: string) {
      await raw.hset(`${prefix}run:${pipelineId}:outputs`, hash, text);
    },
    async runKey(pipelineId: string) {
      return (await raw.get(`${prefix}run:${pipelineId}:key`)) ?? undefined;
    },
    async quit() {
      await raw.quit();
    },
  };
}
