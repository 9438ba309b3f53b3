/**
 * A byte changed in a stored channel value or checkpoint record behind cairn's back (a raw SQL
 * UPDATE) makes CairnSaver refuse the checkpoint with `CheckpointCorruptError` (`CAIRN_CORRUPT`)
 * instead of handing LangGraph altered state; checkpoints that do not use the damaged bytes still
 * read.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointCorruptError } from "../../src/core/errors.js";
import { CairnSaver, threadCheckpointId, threadRunId } from "../../src/langgraph/index.js";
import { act, buildGraph } from "../support/lg-graph.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

/** Runs `sql` (`?` placeholders) on the store's tables; returns the rows changed. */
type RawUpdate = (sql: string, params: string[]) => Promise<number>;

let dir: string;
const schemas: string[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-lg-tamper-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await dropSchemas(...schemas);
});

const stores: { name: string; skip?: boolean; open: () => { url: string; update: RawUpdate } }[] = [
  {
    name: "sqlite",
    open: () => {
      const path = join(dir, "c.db");
      const update: RawUpdate = async (sql, params) => {
        const db = new Database(path);
        try {
          return db.prepare(sql.replace(/\{t\}/g, "")).run(...params).changes;
        } finally {
          db.close();
        }
      };
      return { url: `sqlite:${path}`, update };
    },
  },
  {
    name: "postgres",
    skip: !postgresUp,
    open: () => {
      const schema = uniqueName("cairn_lgtamper");
      schemas.push(schema);
      const update: RawUpdate = async (sql, params) => {
        let n = 0;
        const text = sql.replace(/\{t\}/g, `"${schema}".`).replace(/\?/g, () => `$${++n}`);
        const pg = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
        await pg.connect();
        try {
          return (await pg.query(text, params)).rowCount ?? 0;
        } finally {
          await pg.end();
        }
      };
      return { url: `${POSTGRES_URL}?schema=${schema}`, update };
    },
  },
];

const THREAD = "tamper";
const config = { configurable: { thread_id: THREAD } };

/** Runs the graph to its end; returns the saver and the LangGraph ids of the last and an earlier checkpoint. */
async function finishedThread(url: string) {
  const saver = new CairnSaver({ store: url });
  const graph = buildGraph(saver);
  await act(graph, THREAD, "start");
  await act(graph, THREAD, "answer", "yes");
  const ids: string[] = [];
  for await (const snapshot of graph.getStateHistory(config))
    ids.push(snapshot.config.configurable?.checkpoint_id);
  return { saver, graph, last: ids[0] as string, earlier: ids[3] as string };
}

const at = (checkpointId: string) => ({
  configurable: { thread_id: THREAD, checkpoint_ns: "", checkpoint_id: checkpointId },
});

async function expectCorrupt(read: Promise<unknown>): Promise<void> {
  const error = await read.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CheckpointCorruptError);
  expect((error as CheckpointCorruptError).code).toBe("CAIRN_CORRUPT");
}

describe.each(stores)("CairnSaver reads are verified ($name)", ({ skip, open }) => {
  it.skipIf(skip)("a changed byte in a channel value is CAIRN_CORRUPT, not data", async () => {
    const { url, update } = open();
    const { saver, graph, last, earlier } = await finishedThread(url);
    try {
      // The final `log` value (the finish task's own write is `["finish"]`): "finish" → "finisH".
      const changed = await update(
        "UPDATE {t}cairn_outputs SET body = replace(body, ?, ?) WHERE pipeline_id = ? AND body LIKE ?",
        ['"finish"]', '"finisH"]', threadRunId(THREAD), '%"review:yes","finish"]%'],
      );
      expect(changed).toBe(1);
      await expectCorrupt(saver.getTuple(config));
      await expectCorrupt(saver.getTuple(at(last)));
      await expectCorrupt(graph.getState(config));
      // An earlier checkpoint does not hold that value: it still reads, verified.
      expect((await saver.getTuple(at(earlier)))?.checkpoint.id).toBe(earlier);
    } finally {
      await saver.close();
    }
  });

  it.skipIf(skip)("a changed byte in a checkpoint record is CAIRN_CORRUPT, not data", async () => {
    const { url, update } = open();
    const { saver, last, earlier } = await finishedThread(url);
    try {
      // One hex digit of the record's first output reference: still well-formed JSON.
      const id = threadCheckpointId(threadRunId(THREAD), last);
      const changed = await update(
        "UPDATE {t}cairn_checkpoints SET body = replace(body, ?, ?) WHERE checkpoint_id = ?",
        ['"output_refs":{"', '"output_refs":{"X', id],
      );
      expect(changed).toBe(1);
      await expectCorrupt(saver.getTuple(config));
      await expectCorrupt(saver.getTuple(at(last)));
      expect((await saver.getTuple(at(earlier)))?.checkpoint.id).toBe(earlier);
    } finally {
      await saver.close();
    }
  });
});
