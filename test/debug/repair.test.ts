/**
 * `repairCheckpoint` on a file store edited by hand: it never makes changed data valid again,
 * always backs up first, quarantines, accepts changes only with `force` (as a new checkpoint
 * that records it), removes garbage, and rebuilds missing provenance.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { computeChecksum, sha256 } from "../../src/core/record.js";
import { rebuiltProvenance, repairCheckpoint } from "../../src/debug/repair.js";
import { CheckpointManager, openStore, StoreUnavailableError } from "../../src/index.js";
import { checkpointFile } from "../support/file-store.js";

let root: string;
let basePath: string;
let backupDir: string;
let manager: CheckpointManager;
const now = () => new Date("2024-05-01T12:00:00.000Z");

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-repair-"));
  basePath = join(root, "store");
  backupDir = join(root, "backups");
  manager = new CheckpointManager({ strategy: "file", config: { basePath } });
});
afterEach(async () => {
  await manager.close();
  await rm(root, { recursive: true, force: true });
});

const STAGES = ["extract", "transform", "load"];

/** Writes checkpoints after the first `count` stages; returns their ids, oldest first. */
async function run(pipelineId: string, count = 3, provenance = true): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const done = STAGES.slice(0, i + 1);
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        stageName: STAGES[i] as string,
        stageIndex: i,
        stateData: { total: (i + 1) * 100, nested: { stage: STAGES[i] } },
        completedStages: done,
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(done.map((s) => [s, { rows: [s] }])),
        provenanceHashes: provenance ? Object.fromEntries(done.map((s) => [s, sha256(`p:${s}`)])) : {},
        status: "completed",
      }),
    );
  }
  return ids;
}

/** Edits a value inside the checkpoint's `"body"`, keeping the file's layout; returns the original text. */
async function tamper(pipelineId: string, checkpointId: string, from: string, to: string): Promise<string> {
  const path = await fileOfRun(pipelineId, checkpointId);
  const text = await readFile(path, "utf8");
  const bodyAt = text.indexOf(',"body":');
  expect(text.indexOf(from, bodyAt)).toBeGreaterThan(bodyAt);
  const edited = text.slice(0, bodyAt) + text.slice(bodyAt).replace(from, to);
  await writeFile(path, edited);
  return edited;
}

const backups = async () => (await readdir(backupDir).catch(() => [])).filter((n) => n.endsWith(".json"));

const fileOfRun = (pipelineId: string, checkpointId: string) =>
  checkpointFile(basePath, pipelineId, checkpointId);

describe("repairCheckpoint", () => {
  it("quarantines a hand-edited checkpoint without making it valid, after a backup of its exact bytes", async () => {
    const [, transform, load] = (await run("etl")) as [string, string, string];
    const edited = await tamper("etl", load, '"total":300', '"total":301');
    const report = await repairCheckpoint(manager, load, { backupDir, now });
    expect(report).toMatchObject({
      status: "quarantined",
      corrupt: true,
      resumePoint: transform,
      pipelineId: "etl",
    });
    expect(report.problems.map((p) => p.kind)).toContain("checksum_mismatch");
    // Still invalid, never re-sealed; only its status fields changed.
    const validation = await manager.validateCheckpoint(load);
    expect(validation.valid).toBe(false);
    const [meta] = await manager.getCheckpointHistory("etl");
    expect(meta).toMatchObject({ checkpointId: load, status: "expired" });
    expect(meta?.errorMessage).toMatch(
      /^quarantined by cairn repair at 2024-05-01T12:00:00\.000Z: checksum mismatch.*; backup .*\.json$/,
    );
    // The backup holds the record as stored (its exact body bytes) and every output it references.
    expect(await backups()).toHaveLength(1);
    expect(report.backup).toBeDefined();
    const backup = JSON.parse(await readFile(report.backup as string, "utf8"));
    expect(`{"metadata":${JSON.stringify(backup.record.metadata)},"body":${backup.record.body}}\n`).toBe(
      edited,
    );
    expect(Object.keys(backup.outputs).sort()).toEqual(["extract", "load", "transform"]);
    expect(backup.outputs.load.body).toBe('{"rows":["load"]}');
    // Resume uses the previous checkpoint.
    const ctx = await manager.resumePipeline("etl");
    expect(ctx).toMatchObject({ checkpointId: transform, resumeFromStage: "load" });
    // A second repair sees the quarantine and changes nothing.
    const again = await repairCheckpoint(manager, load, { backupDir, now });
    expect(again.status).toBe("already-quarantined");
    expect(await backups()).toHaveLength(1);
  });

  it("quarantines a checkpoint re-sealed after its child was written, which verifies on its own", async () => {
    const [extract, transform] = (await run("etl")) as [string, string, string];
    const path = await fileOfRun("etl", transform);
    const text = await readFile(path, "utf8");
    const body = text.slice(text.indexOf(',"body":') + 8, -2).replace('"total":200', '"total":201');
    const { metadata } = JSON.parse(text);
    metadata.checksum = computeChecksum(metadata, body);
    await writeFile(path, `{"metadata":${JSON.stringify(metadata)},"body":${body}}\n`);
    const report = await repairCheckpoint(manager, transform, { backupDir, now });
    expect(report.status).toBe("quarantined");
    expect(report.problems).toEqual([
      expect.objectContaining({
        kind: "broken_chain",
        message: expect.stringMatching(/re-sealed after the child/),
      }),
    ]);
    // Its child's link is broken too, so it is quarantined in turn; resume goes back to extract.
    expect(
      (
        await repairCheckpoint(
          manager,
          (
            await manager.getCheckpointHistory("etl")
          )[0]?.checkpointId as string,
          { backupDir, now },
        )
      ).resumePoint,
    ).toBe(extract);
  });

  it("changes nothing and writes no backup in a dry run", async () => {
    const [, , load] = (await run("etl")) as [string, string, string];
    const edited = await tamper("etl", load, '"total":300', '"total":301');
    const report = await repairCheckpoint(manager, load, { backupDir, now, dryRun: true });
    expect(report).toMatchObject({ status: "would-quarantine", dryRun: true, corrupt: true });
    expect(report.backup).toBeUndefined();
    expect(await readFile(await fileOfRun("etl", load), "utf8")).toBe(edited);
    expect(await backups()).toEqual([]);
    const forced = await repairCheckpoint(manager, load, { backupDir, now, dryRun: true, force: true });
    expect(forced.status).toBe("would-force-accept");
    expect((await manager.getCheckpointHistory("etl")).map((m) => m.checkpointId)).toHaveLength(3);
    expect(await readFile(await fileOfRun("etl", load), "utf8")).toBe(edited);
  });

  it("with force, appends a new valid checkpoint holding the changed content and recording it", async () => {
    const [, , load] = (await run("etl")) as [string, string, string];
    await tamper("etl", load, '"total":300', '"total":301');
    const original = (await manager.getCheckpointHistory("etl"))[0];
    const report = await repairCheckpoint(manager, load, { backupDir, now, force: true });
    expect(report.status).toBe("force-accepted");
    const added = report.newCheckpointId as string;
    expect(report.resumePoint).toBe(added);
    expect(await backups()).toHaveLength(1);
    const checkpoint = await manager.loadCheckpoint(added);
    expect(checkpoint.metadata).toMatchObject({
      stageName: "load",
      stageIndex: 2,
      status: "completed",
      parentCheckpointId: load,
    });
    expect(checkpoint.stateData).toMatchObject({
      total: 301,
      nested: { stage: "load" },
      repair: { forcedFrom: load, originalChecksum: original?.checksum, at: now().toISOString() },
    });
    expect((checkpoint.stateData.repair as { reason: string[] }).reason[0]).toMatch(/checksum mismatch/);
    expect(checkpoint.agentOutputs).toEqual({
      extract: { rows: ["extract"] },
      transform: { rows: ["transform"] },
      load: { rows: ["load"] },
    });
    expect((await manager.validateCheckpoint(added)).valid).toBe(true);
    // The changed one stays invalid and is quarantined; the chain to it still verifies.
    expect((await manager.validateCheckpoint(load)).valid).toBe(false);
    expect((await manager.getCheckpointHistory("etl"))[1]).toMatchObject({
      checkpointId: load,
      status: "expired",
    });
    expect((await manager.resumePipeline("etl"))?.checkpointId).toBe(added);
    // Forcing again does not add another copy.
    const again = await repairCheckpoint(manager, load, { backupDir, now, force: true });
    expect(again.status).toBe("already-quarantined");
    expect(await manager.getCheckpointHistory("etl")).toHaveLength(4);
  });

  it("with force, re-run after a repair stopped between the append and the quarantine, appends nothing more", async () => {
    const [, , load] = (await run("etl")) as [string, string, string];
    await tamper("etl", load, '"total":300', '"total":301');
    // The first repair dies after appending its copy: the quarantine's status write fails.
    const store = await openStore({ strategy: "file", config: { basePath } });
    const dying = new CheckpointManager({
      store: new Proxy(store, {
        get(target, key, receiver) {
          if (key === "updateCheckpoint") {
            return async () => {
              throw new StoreUnavailableError("file", "injected: killed before the quarantine");
            };
          }
          const value = Reflect.get(target, key, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
    });
    await expect(repairCheckpoint(dying, load, { backupDir, now, force: true })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await dying.close();
    const history = await manager.getCheckpointHistory("etl");
    expect(history).toHaveLength(4);
    const appended = history[0]?.checkpointId as string;

    const again = await repairCheckpoint(manager, load, { backupDir, now, force: true });
    expect(again.status).toBe("force-accepted");
    expect(again.newCheckpointId).toBe(appended);
    expect(again.actions.join("\n")).toContain("not appending again");
    expect(await manager.getCheckpointHistory("etl")).toHaveLength(4);
    expect((await manager.getCheckpointHistory("etl"))[1]).toMatchObject({
      checkpointId: load,
      status: "expired",
    });
    expect((await manager.resumePipeline("etl"))?.checkpointId).toBe(appended);
  });

  it("with force, takes a changed output as it is and drops its stale provenance", async () => {
    const [, transform] = (await run("etl", 2)) as [string, string];
    const outputs = join(basePath, "etl", "outputs");
    const hash = sha256('{"rows":["transform"]}');
    await writeFile(join(outputs, `${hash}.json`), '{"rows":["forged"]}');
    const report = await repairCheckpoint(manager, transform, { backupDir, now, force: true });
    const checkpoint = await manager.loadCheckpoint(report.newCheckpointId as string);
    expect(checkpoint.agentOutputs.transform).toEqual({ rows: ["forged"] });
    expect(checkpoint.provenanceHashes.transform).toBeUndefined();
    expect(checkpoint.stateData.repair).toMatchObject({ provenanceDropped: ["transform"] });
  });

  it("refuses to force-accept a checkpoint whose output is missing, and changes nothing", async () => {
    const [, transform] = (await run("etl", 2)) as [string, string];
    await rm(join(basePath, "etl", "outputs", `${sha256('{"rows":["transform"]}')}.json`));
    await expect(repairCheckpoint(manager, transform, { backupDir, now, force: true })).rejects.toThrow(
      /cannot accept it with --force: the output of stage transform .* is missing/,
    );
    expect(await backups()).toEqual([]);
    expect(await manager.getCheckpointHistory("etl")).toHaveLength(2);
    // Without force it is quarantined as usual.
    expect((await repairCheckpoint(manager, transform, { backupDir, now })).status).toBe("quarantined");
  });

  it("backs up and removes a garbage file in the run folder", async () => {
    const [, , load] = (await run("etl")) as [string, string, string];
    const garbage = join(basePath, "etl", "0000000004-garbage.json");
    await writeFile(garbage, "{not json");
    const report = await repairCheckpoint(manager, "garbage", { backupDir, now });
    expect(report).toMatchObject({ status: "removed", corrupt: true, pipelineId: "etl", resumePoint: load });
    expect(await readdir(join(basePath, "etl"))).not.toContain("0000000004-garbage.json");
    const backup = JSON.parse(await readFile(report.backup as string, "utf8"));
    expect(backup).toMatchObject({
      kind: "unparseable_entry",
      raw: "{not json",
      entry: { location: garbage },
    });
    expect((await (await manager.getStore()).listCheckpoints("etl")).every((e) => e.ok)).toBe(true);
  });

  it("rebuilds missing provenance of a valid checkpoint as a new checkpoint", async () => {
    const [, , load] = (await run("etl", 3, false)) as [string, string, string];
    const report = await repairCheckpoint(manager, load, { backupDir, now });
    expect(report).toMatchObject({ status: "rebuilt", corrupt: false });
    expect(report.actions.join("\n")).toMatch(/agent identity is not known/);
    const checkpoint = await manager.loadCheckpoint(report.newCheckpointId as string);
    expect(checkpoint.provenanceHashes).toEqual(
      Object.fromEntries(STAGES.map((s) => [s, rebuiltProvenance(s, sha256(`{"rows":["${s}"]}`))])),
    );
    expect(checkpoint.stateData).toMatchObject({
      total: 300,
      repair: { rebuiltFrom: load, provenanceRebuilt: [...STAGES].sort() },
    });
    expect((await manager.validateCheckpoint(load)).valid).toBe(true);
    expect(report.resumePoint).toBe(report.newCheckpointId);
    // Now complete, so a second repair finds it healthy.
    const again = await repairCheckpoint(manager, report.newCheckpointId as string, { backupDir, now });
    expect(again).toMatchObject({ status: "healthy", corrupt: false });
  });

  it("does not rebuild an older checkpoint, which would move the resume point back", async () => {
    const [extract] = (await run("etl", 3, false)) as [string];
    const report = await repairCheckpoint(manager, extract, { backupDir, now });
    expect(report.status).toBe("healthy");
    expect(report.actions.join("\n")).toMatch(/not the run.s resume point/);
    expect(await manager.getCheckpointHistory("etl")).toHaveLength(3);
  });

  it("reports a healthy checkpoint as healthy and an unknown id as not found", async () => {
    const [, , load] = (await run("etl")) as [string, string, string];
    expect(await repairCheckpoint(manager, load, { backupDir, now })).toMatchObject({
      status: "healthy",
      corrupt: false,
      resumePoint: load,
      problems: [],
    });
    expect(await backups()).toEqual([]);
    await expect(repairCheckpoint(manager, "etl_nope_20240101T000000000Z_aaaaaaaa")).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
  });
});
