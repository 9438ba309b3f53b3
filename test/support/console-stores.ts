/**
 * Stores for the console tests, filled by real pipeline runs (the `Pipeline` class, as users run
 * it): a completed run, a run that failed at a stage and was resumed to completion by a second
 * execution, a run left failed (to resume), a run whose checkpoint was corrupted afterwards (one
 * byte of its stored record changed behind the store's back), a run with a 1 MB output, and two
 * checkpoints that differ by one known state key (for compare); and, in a store of its own, an
 * encrypted run.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import Database from "better-sqlite3";
import { CheckpointManager, Pipeline, type StepDefinition } from "../../src/index.js";
import { checkpointFile } from "./file-store.js";

/** What a filled store holds: run ids, the checkpoints the tests open, and what to expect there. */
export interface ConsoleFixture {
  /** The store URL (`sqlite:…`, `postgres://…?schema=…` or `file:…`). */
  url: string;
  /** Pipeline name of the ETL runs. */
  etlName: string;
  /** Run ids. */
  runs: { completed: string; resumed: string; failed: string; corrupt: string; large: string };
  /** The stage the failed and the failed-then-resumed runs failed at, and its error message. */
  failedStage: string;
  failedError: string;
  /** The checkpoint whose stored record was changed after the run (fails its checksum). */
  corruptCheckpointId: string;
  /** The checkpoint holding the 1 MB output, and that output's stage name. */
  largeCheckpointId: string;
  largeStage: string;
  /** Two checkpoints whose states differ only at `changedKey` (`before` → `after`). */
  compare: { a: string; b: string; changedKey: string; before: number; after: number };
}

const ETL = "orders-etl";
const FAILED_STAGE = "transform";
const FAILED_ERROR = "transform broke: upstream timeout";
/** The byte the corruption changes: present in every ETL checkpoint's state (the run's inputs). */
const INTACT = '"region":"eu"';
const TAMPERED = '"region":"ev"';

/** Stages take a little time, so durations, the timeline and the screenshots show something. */
const work = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The three-stage ETL; `failTransform` makes its transform stage throw. */
function etl(manager: CheckpointManager, failTransform = false): Pipeline {
  return new Pipeline({
    name: ETL,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      {
        name: "extract",
        agent: async (inputs) => {
          await work(40);
          return { rows: [1, 2, 3], region: inputs.region };
        },
      },
      {
        name: FAILED_STAGE,
        agent: async (inputs) => {
          await work(60);
          if (failTransform) throw new Error(FAILED_ERROR);
          return (inputs.rows as number[]).map((n) => n * 2);
        },
        inputs: { rows: "$extract.rows" },
      },
      {
        name: "load",
        agent: async (inputs) => {
          await work(25);
          return { written: (inputs.values as number[]).length };
        },
        inputs: { values: `$${FAILED_STAGE}` },
      },
    ],
  });
}

/** A report pipeline whose `render` stage returns about 1.1 MB of JSON (8,000 rows). */
function large(manager: CheckpointManager): Pipeline {
  const steps: StepDefinition[] = [
    { name: "collect", agent: () => ({ count: 8000 }) },
    {
      name: "render",
      agent: () => ({
        rows: Array.from({ length: 8000 }, (_, i) => ({ id: i, name: `row-${i}`, payload: "x".repeat(100) })),
      }),
    },
  ];
  return new Pipeline({ name: "big-report", checkpointEnabled: true, checkpointStore: manager, steps });
}

async function checkpointOf(manager: CheckpointManager, runId: string, stage: string): Promise<string> {
  const history = await manager.getCheckpointHistory(runId);
  const found = history.find((m) => m.stageName === stage);
  if (!found) throw new Error(`run ${runId} has no checkpoint of stage ${stage}`);
  return found.checkpointId;
}

/** Fills the empty store at `url`; every run is a real `Pipeline` execution. */
export async function fillConsoleStore(url: string): Promise<ConsoleFixture> {
  const manager = new CheckpointManager({ store: url });
  try {
    const inputs = { region: "eu" };
    const runs = {
      completed: "run-completed",
      resumed: "run-resumed",
      failed: "run-failed",
      corrupt: "run-corrupt",
      large: "run-large",
    };
    await etl(manager).execute({ runId: runs.completed, inputs });

    // Fails at transform, then a new execution (a new Pipeline, as after a restart) resumes it.
    await expectFailure(etl(manager, true).execute({ runId: runs.resumed, inputs }));
    await etl(manager).execute({ runId: runs.resumed });

    await etl(manager).execute({ runId: runs.corrupt, inputs });
    const corruptCheckpointId = await checkpointOf(manager, runs.corrupt, FAILED_STAGE);

    await large(manager).execute({ runId: runs.large });
    const largeCheckpointId = await checkpointOf(manager, runs.large, "render");

    // Left failed last, so it is the newest unfinished run: the one to resume.
    await expectFailure(etl(manager, true).execute({ runId: runs.failed, inputs }));

    const compare = await comparePair(manager);
    await corruptRecord(url, runs.corrupt, corruptCheckpointId);
    return {
      url,
      etlName: ETL,
      runs,
      failedStage: FAILED_STAGE,
      failedError: FAILED_ERROR,
      corruptCheckpointId,
      largeCheckpointId,
      largeStage: "render",
      compare,
    };
  } finally {
    await manager.close();
  }
}

async function expectFailure(run: Promise<unknown>): Promise<void> {
  const outcome = await run.then(
    () => "completed",
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  if (outcome === "completed") throw new Error("the failing run completed");
}

/** Two checkpoints of run `run-compare` whose states differ only in `threshold` (10 → 25). */
async function comparePair(manager: CheckpointManager): Promise<ConsoleFixture["compare"]> {
  const state = { customer: "acme", currency: "EUR", rows: 3 };
  const common = {
    pipelineId: "run-compare",
    pipelineName: "pricing",
    completedStages: ["price"],
    pendingStages: ["publish"],
    agentOutputs: { price: { total: 42 } },
    status: "completed" as const,
  };
  const a = await manager.createCheckpoint({
    ...common,
    stageName: "price",
    stageIndex: 0,
    stateData: { ...state, threshold: 10 },
  });
  const b = await manager.createCheckpoint({
    ...common,
    stageName: "price",
    stageIndex: 0,
    stateData: { ...state, threshold: 25 },
  });
  return { a, b, changedKey: "threshold", before: 10, after: 25 };
}

/**
 * Changes one byte of checkpoint `checkpointId`'s stored record behind the store's back, the way
 * disk or operator damage would: sqlite and PostgreSQL by an UPDATE of the `body` column (the
 * text the checksum covers), the file store by editing the JSON file.
 */
export async function corruptRecord(url: string, pipelineId: string, checkpointId: string): Promise<void> {
  const swap = (text: string) => {
    if (!text.includes(INTACT)) throw new Error(`checkpoint ${checkpointId} does not hold ${INTACT}`);
    return text.replace(INTACT, TAMPERED);
  };
  if (url.startsWith("sqlite:")) {
    const db = new Database(url.slice("sqlite:".length));
    try {
      const row = db
        .prepare("SELECT body FROM cairn_checkpoints WHERE checkpoint_id = ?")
        .get(checkpointId) as { body: string } | undefined;
      if (!row) throw new Error(`no sqlite row for ${checkpointId}`);
      db.prepare("UPDATE cairn_checkpoints SET body = ? WHERE checkpoint_id = ?").run(
        swap(row.body),
        checkpointId,
      );
    } finally {
      db.close();
    }
  } else if (url.startsWith("postgres")) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema") ?? "public";
    parsed.search = "";
    const pg = new (await import("pg")).default.Client({ connectionString: parsed.toString() });
    await pg.connect();
    try {
      const table = `"${schema}".cairn_checkpoints`;
      const { rows } = await pg.query(`SELECT body FROM ${table} WHERE checkpoint_id = $1`, [checkpointId]);
      const body = (rows[0] as { body: string } | undefined)?.body;
      if (body === undefined) throw new Error(`no postgres row for ${checkpointId}`);
      await pg.query(`UPDATE ${table} SET body = $1 WHERE checkpoint_id = $2`, [swap(body), checkpointId]);
    } finally {
      await pg.end();
    }
  } else if (url.startsWith("file:")) {
    const path = await checkpointFile(url.slice("file:".length), pipelineId, checkpointId);
    await writeFile(path, swap(await readFile(path, "utf8")));
  } else {
    throw new Error(`corruptRecord: no way to reach into ${url}`);
  }
}

/** An encrypted run: the checkpoint to open, the text only its decrypted state holds, the key file. */
export interface EncryptedFixture {
  url: string;
  runId: string;
  checkpointId: string;
  marker: string;
  /** The key file's text (`cairn keys` format) for `--key-file`. */
  keyFile: string;
}

/** Fills the empty store at `url` with one encrypted two-stage run (a real `Pipeline` execution). */
export async function fillEncryptedStore(url: string): Promise<EncryptedFixture> {
  const key = randomBytes(32).toString("base64");
  const marker = `secret-${randomBytes(6).toString("hex")}`;
  const manager = new CheckpointManager({ store: url, encryption: { keys: { k1: key }, activeKeyId: "k1" } });
  try {
    const pipeline = new Pipeline({
      name: "payroll",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "collect", agent: (inputs) => ({ employees: 2, note: inputs.marker }) },
        { name: "pay", agent: () => ({ paid: true }) },
      ],
    });
    const runId = "run-encrypted";
    await pipeline.execute({ runId, inputs: { marker } });
    const checkpointId = await checkpointOf(manager, runId, "collect");
    const keyFile = JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: { k1: key } });
    return { url, runId, checkpointId, marker, keyFile };
  } finally {
    await manager.close();
  }
}
