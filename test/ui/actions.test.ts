/**
 * The console's actions on runs written by real pipelines, in sqlite and PostgreSQL stores:
 * validate finds a corrupt checkpoint, quarantine handles it (backup, audit trail), a cleanup
 * deletes exactly what its preview showed and refuses when the selection changed, an export
 * imports back.
 */
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, StageFailedError } from "../../src/index.js";
import { createActions } from "../../src/ui/actions.js";
import { AuditLog } from "../../src/ui/audit.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

const schemas: string[] = [];
afterAll(async () => {
  if (schemas.length > 0) await dropSchemas(...schemas);
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-ui-actions-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function pgQuery(sql: string, params: unknown[]): Promise<void> {
  const pg = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
  await pg.connect();
  try {
    await pg.query(sql, params);
  } finally {
    await pg.end();
  }
}

/** A store URL and a way to damage a checkpoint in it (its stored body edited: the checksum no longer matches). */
interface StoreCase {
  name: string;
  skip?: boolean;
  open(): { url: string; damage(checkpointId: string): Promise<void> };
}

const STORES: StoreCase[] = [
  {
    name: "sqlite",
    open() {
      const path = join(dir, "c.db");
      return {
        url: `sqlite:${path}`,
        async damage(id) {
          const db = new Database(path);
          try {
            db.prepare("UPDATE cairn_checkpoints SET body = body || ' ' WHERE checkpoint_id = ?").run(id);
          } finally {
            db.close();
          }
        },
      };
    },
  },
  {
    name: "postgres",
    skip: !postgresUp,
    open() {
      const schema = uniqueName("cairn_ui_actions");
      schemas.push(schema);
      return {
        url: `${POSTGRES_URL}?schema=${schema}`,
        damage: (id) =>
          pgQuery(`UPDATE "${schema}".cairn_checkpoints SET body = body || ' ' WHERE checkpoint_id = $1`, [
            id,
          ]),
      };
    },
  },
];

/** A clock that starts on 2024-01-01 and advances a second per reading: checkpoints that are old. */
function oldClock(): () => Date {
  let t = Date.UTC(2024, 0, 1);
  return () => {
    t += 1000;
    return new Date(t);
  };
}

/** A 3-stage pipeline; `failAt` makes that stage throw. */
function pipeline(manager: CheckpointManager, name: string, failAt?: string) {
  return new Pipeline({
    name,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: ["extract", "transform", "load"].map((stage) => ({
      name: stage,
      agent: () => {
        if (stage === failAt) throw new Error(`${stage}: upstream down`);
        return { stage, rows: [1, 2, 3] };
      },
    })),
  });
}

async function completedRun(manager: CheckpointManager, name: string): Promise<string> {
  return (await pipeline(manager, name).execute({ resume: false })).pipelineId;
}

const who = { user: "tester", client: "127.0.0.1" };

describe.each(STORES)("actions on a $name store", (store) => {
  it.skipIf(store.skip === true)(
    "validate finds a corrupt checkpoint; quarantine handles it and is audited",
    async () => {
      const { url, damage } = store.open();
      const manager = new CheckpointManager({ store: url });
      const audit = new AuditLog(join(dir, "audit.jsonl"));
      const actions = createActions({ manager, audit, storeHint: "", backupDir: join(dir, "backups") });
      try {
        const runId = await completedRun(manager, "etl");
        const history = await manager.getCheckpointHistory(runId);
        const victim = history.find((c) => c.stageName === "transform")?.checkpointId as string;
        expect(await actions.validate({ pipelineId: runId }, who)).toMatchObject({
          status: "valid",
          invalid: 0,
        });
        await damage(victim);

        const found = await actions.validate({ pipelineId: runId }, who);
        expect(found.status).toBe("invalid");
        expect(found.invalid).toBeGreaterThanOrEqual(1);
        expect(found.problems).toContainEqual(
          expect.objectContaining({ checkpointId: victim, code: "checksum_mismatch" }),
        );

        const result = await actions.quarantine({ checkpointId: victim }, who);
        expect(result.quarantined).toEqual([victim]);
        const backup = result.reports[0]?.backup as string;
        expect((await stat(backup)).isFile()).toBe(true);
        expect(await readdir(join(dir, "backups"))).toHaveLength(1);
        const after = (await manager.getCheckpointHistory(runId)).find((c) => c.checkpointId === victim);
        expect(after?.status).toBe("expired");
        expect((await actions.validate({ pipelineId: runId }, who)).status).toBe("quarantined");
        // Quarantining the run again finds nothing left to do.
        expect((await actions.quarantine({ pipelineId: runId }, who)).quarantined).toEqual([]);

        const { entries } = await audit.read({ limit: 100 });
        const quarantine = entries.filter(
          (e) => e.action === "quarantine" && e.target.checkpointId === victim,
        );
        expect(quarantine.map((e) => e.outcome)).toEqual(["done", "requested"]);
        expect(quarantine[0]).toMatchObject({ user: "tester", client: "127.0.0.1" });
        expect(quarantine[0]?.detail?.quarantined).toEqual([victim]);
        expect(await audit.verify()).toMatchObject({ ok: true });

        // A failed action is recorded as failed, with the error's code.
        await expect(actions.quarantine({ checkpointId: "nope_1" }, who)).rejects.toMatchObject({
          code: "CAIRN_NOT_FOUND",
        });
        const [last] = (await audit.read({ limit: 1 })).entries;
        expect(last).toMatchObject({
          action: "quarantine",
          outcome: "failed",
          detail: { code: "CAIRN_NOT_FOUND" },
        });
      } finally {
        await manager.close();
      }
    },
  );

  it.skipIf(store.skip === true)(
    "a cleanup deletes exactly what its preview showed; a changed selection is refused",
    async () => {
      const { url } = store.open();
      const old = new CheckpointManager({ store: url, clock: oldClock() });
      const manager = new CheckpointManager({ store: url });
      const audit = new AuditLog(join(dir, "audit.jsonl"));
      const actions = createActions({ manager, audit, storeHint: "" });
      try {
        const oldRuns = [await completedRun(old, "nightly"), await completedRun(old, "nightly")];
        const failed = await pipeline(old, "stuck", "load")
          .execute()
          .catch((e: unknown) => e);
        expect(failed).toBeInstanceOf(StageFailedError);
        const stuck = (failed as StageFailedError).pipelineId;
        const fresh = await completedRun(manager, "nightly");

        const preview = await actions.cleanupPreview({ olderThanDays: 30 }, who);
        expect(preview.runs.map((r) => r.pipelineId).sort()).toEqual([...oldRuns].sort());
        expect(preview.runs.every((r) => r.wholeRun)).toBe(true);
        expect(preview.skipped.map((s) => s.pipelineId)).toEqual([stuck]);
        const previewed = preview.runs.flatMap((r) => r.checkpointIds).sort();
        expect(preview.checkpoints).toBe(previewed.length);
        // Nothing is deleted by a preview.
        expect((await manager.listPipelines()).length).toBe(4);

        const done = await actions.cleanup({ previewId: preview.previewId }, who);
        expect([...done.deletedCheckpoints].sort()).toEqual(previewed);
        expect([...done.removedRuns].sort()).toEqual([...oldRuns].sort());
        expect((await manager.listPipelines()).map((r) => r.pipelineId).sort()).toEqual(
          [fresh, stuck].sort(),
        );
        // A preview runs once.
        await expect(actions.cleanup({ previewId: preview.previewId }, who)).rejects.toMatchObject({
          code: "CAIRN_NOT_FOUND",
        });

        // keepLast: the selection changes when another run of the name finishes before execution.
        await completedRun(manager, "nightly");
        const keep = await actions.cleanupPreview({ keepLast: 1 }, who);
        expect(keep.runs.map((r) => r.pipelineId)).toEqual([fresh]);
        await completedRun(manager, "nightly");
        await expect(actions.cleanup({ previewId: keep.previewId }, who)).rejects.toMatchObject({
          code: "CAIRN_CONFLICT",
        });
        expect((await manager.listPipelines()).map((r) => r.pipelineId)).toContain(fresh);
        const audited = (await audit.read({ limit: 2 })).entries;
        expect(audited.map((e) => [e.action, e.outcome])).toEqual([
          ["cleanup", "failed"],
          ["cleanup", "requested"],
        ]);
      } finally {
        await old.close();
        await manager.close();
      }
    },
  );

  it.skipIf(store.skip === true)("an export imports back with importPipeline", async () => {
    const { url } = store.open();
    const manager = new CheckpointManager({ store: url });
    const actions = createActions({ manager, audit: new AuditLog(join(dir, "audit.jsonl")), storeHint: "" });
    const target = new CheckpointManager({ store: `sqlite:${join(dir, "target.db")}` });
    try {
      const runId = await completedRun(manager, "etl");
      const { filename, text } = await actions.exportRun({ pipelineId: runId }, who);
      expect(filename).toBe(`${runId}.json`);
      const path = join(dir, filename);
      await writeFile(path, text);
      const imported = await target.importPipeline(path);
      expect(imported.pipelineId).toBe(runId);
      const ids = (await manager.getCheckpointHistory(runId)).map((c) => c.checkpointId).sort();
      expect([...imported.checkpointIds].sort()).toEqual(ids);
      expect((await target.validateRun(runId)).valid).toBe(true);
    } finally {
      await manager.close();
      await target.close();
    }
  });
});

describe("request bodies", () => {
  it("refuse unknown keys, wrong types and missing fields before anything is audited", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const audit = new AuditLog(join(dir, "audit.jsonl"));
    const actions = createActions({ manager, audit, storeHint: "" });
    const bad: [keyof typeof actions, unknown][] = [
      ["validate", { pipelineId: "a", extra: 1 }],
      ["validate", { pipelineId: 5 }],
      ["validate", {}],
      ["validate", null],
      ["validate", ["a"]],
      ["quarantine", { pipelineId: "a", checkpointId: "b" }],
      ["cleanupPreview", { olderThanDays: -1 }],
      ["cleanupPreview", { keepLast: 1.5 }],
      ["cleanupPreview", { completedOnly: "yes", keepLast: 2 }],
      ["cleanupPreview", {}],
      ["cleanup", { previewId: 3 }],
      ["exportRun", { pipelineId: "a", decrypt: true }],
    ];
    for (const [action, body] of bad) {
      await expect(actions[action](body, who), `${action} ${JSON.stringify(body)}`).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    }
    await expect(actions.validate({ pipelineId: "../etc" }, who)).rejects.toMatchObject({
      code: "CAIRN_INVALID_NAME",
    });
    expect((await audit.read()).entries).toEqual([]);
    await manager.close();
  });
});
