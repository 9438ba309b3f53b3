/**
 * A PostgreSQL backend terminated (`pg_terminate_backend`, as an operator or a failover does)
 * while the store is in the middle of a write transaction or a lease renewal. The store's
 * statement is held open by a table lock taken from a separate admin connection, its backend is
 * found by the store's `application_name`, and terminated. The write fails with a typed error,
 * nothing half-stored remains (the checkpoint is absent and so are its outputs), the pool
 * recovers, and the next write succeeds on the same chain.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { expectRunIntact } from "../support/run-checks.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

type PgClient = import("pg").Client;
let admin: PgClient;
const schemas: string[] = [];

beforeAll(async () => {
  if (!postgresUp) return;
  admin = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
});
afterEach(async () => {
  // A failed test must not leave the admin connection inside its locking transaction.
  if (postgresUp) await admin.query("ROLLBACK");
});
afterAll(async () => {
  if (!postgresUp) return;
  await admin.end();
  await dropSchemas(...schemas);
});

/** A manager on a private schema, whose connections carry their own `application_name`. */
function privateStore() {
  const schema = uniqueName("cairn_fault_pg");
  const applicationName = schema;
  schemas.push(schema);
  const manager = new CheckpointManager({
    strategy: "postgres",
    config: { connectionString: POSTGRES_URL, schema, applicationName },
  });
  return { manager, schema, applicationName };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until a backend of `applicationName` waits on a lock; returns its pid, and whether its
 * transaction has already written something (it has a transaction id).
 */
async function blockedBackend(applicationName: string): Promise<{ pid: number; wrote: boolean }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await admin.query<{ pid: number; wrote: boolean }>(
      "SELECT pid, backend_xid IS NOT NULL AS wrote FROM pg_stat_activity " +
        "WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [applicationName],
    );
    if (rows[0]) return rows[0];
    if (Date.now() > deadline) throw new Error(`no backend of ${applicationName} ever waited on a lock`);
    await sleep(20);
  }
}

/** Locks a table of the schema from the admin connection, until `ROLLBACK`. */
async function lockTable(schema: string, table: string): Promise<void> {
  await admin.query("BEGIN");
  await admin.query(`LOCK TABLE "${schema}"."cairn_${table}" IN ACCESS EXCLUSIVE MODE`);
}

/** Terminates the store's backend blocked behind the admin's lock, then releases the lock. */
async function terminateBlocked(applicationName: string): Promise<{ wrote: boolean }> {
  const { pid, wrote } = await blockedBackend(applicationName);
  const { rows } = await admin.query<{ ok: boolean }>("SELECT pg_terminate_backend($1) AS ok", [pid]);
  expect(rows[0]?.ok).toBe(true);
  await admin.query("ROLLBACK");
  return { wrote };
}

const stages = ["s1", "s2", "s3", "s4"];

/** The checkpoint of stage `i`; `outputsPerStage` outputs each, all new at every stage. */
function stageInput(runId: string, i: number, outputsPerStage: number) {
  const done = stages.slice(0, i + 1);
  const agentOutputs: Record<string, unknown> = {};
  for (const s of done)
    for (let k = 0; k < outputsPerStage; k++) agentOutputs[`${s}_${k}`] = { s, k, rows: [s, k] };
  return {
    pipelineId: runId,
    pipelineName: "pg_fault",
    stageName: stages[i] as string,
    stageIndex: i,
    stateData: { i },
    completedStages: done,
    pendingStages: stages.slice(i + 1),
    agentOutputs,
  };
}

describe.skipIf(!postgresUp)("a PostgreSQL backend terminated mid-operation", () => {
  it.each([
    { path: "one statement (one new output)", outputsPerStage: 1 },
    { path: "a transaction (several new outputs)", outputsPerStage: 3 },
  ])(
    "a write through $path fails with a typed error, stores nothing, and the pool recovers",
    async ({ outputsPerStage }) => {
      const { manager, schema, applicationName } = privateStore();
      const runId = "pg_run";
      const ids = [await manager.createCheckpoint(stageInput(runId, 0, outputsPerStage))];
      await lockTable(schema, "checkpoints");
      const write = manager.createCheckpoint(stageInput(runId, 1, outputsPerStage)).catch((e: unknown) => e);
      await terminateBlocked(applicationName);
      const error = await write;
      expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE", store: "postgres" });
      expect((error as Error).message).toMatch(/terminat/i);
      // Nothing of the failed write: not the checkpoint, not one of its outputs.
      expect(await expectRunIntact(manager, runId)).toEqual(ids);
      expect(await (await manager.getStore()).listOutputHashes(runId)).toHaveLength(outputsPerStage);
      // The pool replaced the dead connection: the same manager writes on, on the same chain.
      for (let i = 1; i < stages.length; i++)
        ids.push(await manager.createCheckpoint(stageInput(runId, i, outputsPerStage)));
      expect(await expectRunIntact(manager, runId)).toEqual(ids);
      await manager.close();
    },
  );

  it("a lease renewal fails with a typed error and the next renewal succeeds", async () => {
    const { manager, schema, applicationName } = privateStore();
    const store = await manager.getStore();
    const attempt = await store.acquireLease("pg_lease_run", "me", 60_000);
    if (!attempt.acquired) throw new Error("the lease of a new run must be free");
    await lockTable(schema, "leases");
    const renewal = store.renewLease(attempt.lease, 60_000).catch((e: unknown) => e);
    await terminateBlocked(applicationName);
    expect(await renewal).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE", store: "postgres" });
    const renewed = await store.renewLease(attempt.lease, 60_000);
    expect(renewed).toMatchObject({ owner: "me", token: attempt.lease.token });
    // Still the holder: a write fenced by the lease goes through.
    await manager.createCheckpoint(stageInput("pg_lease_run", 0, 1), { fence: renewed ?? attempt.lease });
    await manager.close();
  });

  it("a run whose lease renewal is terminated keeps its lease and completes", async () => {
    const { manager, schema, applicationName } = privateStore();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const pipeline = new Pipeline({
      name: "pg_fault",
      checkpointEnabled: true,
      checkpointStore: manager,
      // Renewed every 2 s: the terminated renewal is retried long before the lease runs out.
      leaseTtlMs: 6_000,
      steps: [
        { name: "s1", agent: () => ({ n: 1 }) },
        {
          name: "s2",
          agent: async () => {
            started();
            await held;
            return { n: 2 };
          },
        },
        { name: "s3", agent: () => ({ n: 3 }) },
      ],
    });
    const run = pipeline.execute({ runId: "pg_renewal_run" });
    await running;
    await lockTable(schema, "leases");
    await terminateBlocked(applicationName);
    release();
    const results = await run;
    expect(results).toMatchObject({ status: "completed", pipelineId: "pg_renewal_run" });
    const ids = await expectRunIntact(manager, "pg_renewal_run");
    expect(ids).toHaveLength(4);
    await manager.close();
  });
});
