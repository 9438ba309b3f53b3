/**
 * Lost history on every persistent store: a run's newest checkpoints deleted behind cairn's back
 * (files unlinked, rows deleted, keys dropped) are reported as truncated, and `cairn validate`
 * exits 4; what retention (`cleanup`) removed is reported as pruned, and validation passes.
 */
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { checkpointFileName } from "../../src/stores/file/checkpoint-file.js";
import { runCairn } from "../support/cli.js";
import { rawObjects } from "../support/object-servers.js";
import { POSTGRES_URL, REDIS_URL } from "../support/services.js";
import { storeUrls } from "../support/store-urls.js";

const { urls, dir } = storeUrls("lost-history");

let now = new Date("2024-03-01T00:00:00.000Z");
const day = (d: number) => new Date(Date.UTC(2024, 2, d));

/** Deletes checkpoints the way an operator or a restore would: around cairn, in the store's own terms. */
async function deleteBehindCairn(name: string, url: string, run: string, ids: string[], seqs: number[]) {
  if (name === "file") {
    const base = url.slice("file:".length);
    for (const [i, id] of ids.entries())
      await unlink(join(base, run, checkpointFileName(seqs[i] as number, id)));
  } else if (name === "sqlite") {
    const Database = (await import("better-sqlite3")).default;
    const db = new Database(url.slice("sqlite:".length));
    db.prepare(`DELETE FROM cairn_checkpoints WHERE checkpoint_id IN (${ids.map(() => "?").join(", ")})`).run(
      ...ids,
    );
    db.close();
  } else if (name === "postgres") {
    const schema = new URL(url).searchParams.get("schema") as string;
    const pg = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
    await pg.connect();
    await pg.query(`DELETE FROM "${schema}".cairn_checkpoints WHERE checkpoint_id = ANY ($1::text[])`, [ids]);
    await pg.end();
  } else if (name === "redis") {
    const prefix = new URL(url).searchParams.get("keyPrefix") as string;
    const redis = new (await import("ioredis")).Redis(REDIS_URL);
    await redis.del(...ids.map((id) => `${prefix}ckpt:${id}`));
    await redis.zrem(`${prefix}run:${run}:index`, ...ids);
    redis.disconnect();
  } else if (name === "s3" || name === "azure") {
    // The object stores list a run from its tip's manifest: deleting by hand means dropping the
    // entries from it and deleting their objects (head stays). An object deleted while the
    // manifest still lists it is a corrupt entry instead (the kit tests that).
    const raw = await rawObjects(url);
    try {
      const key = `tips/${run}.json`;
      const tip = JSON.parse((await raw.get(key))?.body.toString("utf8") ?? "null") as {
        recent: { cps: [number, string, string, string][] };
        pages: unknown[];
        latest: [number, string, string, string] | null;
      };
      if (tip.pages.length > 0) throw new Error("deleteBehindCairn: the run has manifest pages");
      const gone = tip.recent.cps.filter((e) => ids.includes(e[1]));
      tip.recent.cps = tip.recent.cps.filter((e) => !ids.includes(e[1]));
      tip.latest = tip.recent.cps.reduce<typeof tip.latest>((a, e) => (a && a[0] > e[0] ? a : e), null);
      await raw.put(key, JSON.stringify(tip));
      await raw.deleteMany(gone.map(([, id, suffix]) => `runs/${run}/cp/${id}.${suffix}.json`));
    } finally {
      await raw.close();
    }
  } else {
    throw new Error(`no way to delete behind cairn's back in ${name}`);
  }
}

/** Writes `n` stages of a run, stage k on day `days[k]`. */
async function writeRun(manager: CheckpointManager, run: string, days: number[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, d] of days.entries()) {
    now = day(d);
    const stage = `s${i + 1}`;
    ids.push(
      await manager.createCheckpoint({
        pipelineId: run,
        stageName: stage,
        stageIndex: i,
        agentOutputs: { [stage]: { n: i } },
        completedStages: Array.from({ length: i + 1 }, (_, k) => `s${k + 1}`),
      }),
    );
  }
  return ids;
}

const validate = (store: string, run: string) =>
  runCairn(["validate", "--pipeline-id", run, "--store", store], { cwd: dir() });

// Many CLI processes per test: on two loaded cores the object stores' SDKs make them slow to start.
describe.each(Object.keys(urls))("lost history in the %s store", (name) => {
  it("reports the newest checkpoints deleted by hand as truncated, and validate exits 4", async () => {
    const url = (urls[name] as () => string)();
    const manager = new CheckpointManager({ store: url, clock: () => now });
    try {
      const ids = await writeRun(manager, "cut", [1, 2, 3, 4, 5]);
      expect((await manager.validateRun("cut")).valid).toBe(true);
      await deleteBehindCairn(name, url, "cut", ids.slice(3), [4, 5]);
      const run = await manager.validateRun("cut");
      expect(run.summary).toMatchObject({ listed: 3, valid: 3, invalid: 0 });
      expect(run.valid).toBe(false);
      expect(run.history).toEqual([
        expect.objectContaining({
          kind: "truncated",
          problem: true,
          missing: { fromSequence: 4, toSequence: 5 },
        }),
      ]);
      expect(run.history[0]?.message).toContain("the newest 2 checkpoints (sequences 4..5");
      expect(run.history[0]?.message).toContain("not removed by retention");
      const cli = await validate(url, "cut");
      expect(cli.code).toBe(4);
      expect(cli.stdout).toContain("truncated");
      const json = JSON.parse(
        (await runCairn(["validate", "--all", "--json", "--store", url], { cwd: dir() })).stdout,
      ) as { valid: boolean; history: { pipelineId: string; kind: string; problem: boolean }[] };
      expect(json.valid).toBe(false);
      expect(json.history).toContainEqual(
        expect.objectContaining({ pipelineId: "cut", kind: "truncated", problem: true }),
      );

      // analyze and report say it too: the recommendation names the loss, the report lists it.
      const analyzed = await runCairn(["analyze", "--pipeline-id", "cut", "--store", url], { cwd: dir() });
      expect(analyzed.stdout).toMatch(/History:\n {2}\S+ truncated: the newest 2 checkpoints/);
      expect(analyzed.stdout).toContain("Lost history (truncated)");
      const report = await runCairn(["report", "--pipeline-id", "cut", "--store", url], { cwd: dir() });
      expect(report.stdout).toMatch(/run cut.*truncated/);

      // Every checkpoint gone, the outputs left: the run's history is lost, not "no such run".
      await deleteBehindCairn(name, url, "cut", ids.slice(0, 3), [1, 2, 3]);
      const lost = await manager.validateRun("cut");
      expect(lost.valid).toBe(false);
      expect(lost.history).toEqual([
        expect.objectContaining({ kind: "history_lost", missing: { fromSequence: 1, toSequence: 5 } }),
      ]);
    } finally {
      await manager.close();
    }
  }, 90_000);

  it("reports what retention removed as pruned, and validate passes", async () => {
    const url = (urls[name] as () => string)();
    const manager = new CheckpointManager({ store: url, clock: () => now });
    try {
      const ids = await writeRun(manager, "kept", [1, 2, 3, 20, 21]);
      now = day(22);
      const report = await manager.cleanupOldCheckpoints({ retentionDays: 10, pipelineId: "kept" });
      expect(report.deletedCheckpoints.map((c) => c.checkpointId)).toEqual(ids.slice(0, 3));
      const run = await manager.validateRun("kept");
      expect(run.valid).toBe(true);
      expect(run.history).toEqual([
        expect.objectContaining({
          kind: "pruned",
          problem: false,
          message: expect.stringMatching(/^sequences 1\.\.3 removed by retention/),
        }),
      ]);
      const cli = await validate(url, "kept");
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain("sequences 1..3 removed by retention");
      // Retention's gap is information; losing the newest checkpoint afterwards is still a loss.
      await deleteBehindCairn(name, url, "kept", ids.slice(4), [5]);
      const cut = await manager.validateRun("kept");
      expect(cut.history.map((f) => [f.kind, f.missing])).toEqual([
        ["pruned", undefined],
        ["truncated", { fromSequence: 5, toSequence: 5 }],
      ]);
      expect((await validate(url, "kept")).code).toBe(4);
    } finally {
      await manager.close();
    }
  }, 90_000);
});
