/**
 * Golden fixtures: stores written by earlier cairn releases (`test/fixtures/golden/v*`), in every
 * store, must load, validate, resume and export with the current code. Each version folder is
 * loaded into a private copy per store; the committed files are never written. A format change
 * that strands any of them fails here. See test/fixtures/golden/README.md.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager, decode, EXPORT_VERSION, encode, FORMAT_VERSION } from "../../src/index.js";
import { goldenPipeline } from "../fixtures/golden/pipeline.js";
import type { ExpectedRun } from "../fixtures/golden/runs.js";
import {
  type FixtureVersion,
  GOLDEN_KINDS,
  kindAvailable,
  type LoadedStore,
  loadStore,
  readVersion,
} from "./load-fixture.js";

const ROOT = join(import.meta.dirname, "..", "fixtures", "golden");
const VERSIONS = readdirSync(ROOT)
  .filter((name) => /^v\d+$/.test(name))
  .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
const versions = await Promise.all(VERSIONS.map((name) => readVersion(join(ROOT, name), name)));

/** A plain copy of loaded outputs (they decode on first read). */
const plain = (outputs: Record<string, unknown>) =>
  Object.fromEntries(Object.keys(outputs).map((stage) => [stage, outputs[stage]]));

/** The expected outputs of `stages`, decoded from the run's record. */
function expectedOutputs(run: ExpectedRun, stages: readonly string[]): Record<string, unknown> {
  const all = decode(run.outputs) as Record<string, unknown>;
  return Object.fromEntries(stages.map((stage) => [stage, all[stage]]));
}

it("there is at least one fixture version, and the newest is complete", () => {
  expect(versions.length).toBeGreaterThan(0);
  const newest = versions.at(-1) as FixtureVersion;
  const atRest = new Set(newest.expected.runs.map((r) => r.atRest));
  expect([...atRest].sort()).toEqual(["compressed", "encrypted", "plain"]);
  expect(newest.expected.runs.some((r) => r.tamper)).toBe(true);
  expect(newest.expected.runs.some((r) => r.checkpoints.some((c) => c.status === "resumed"))).toBe(true);
  // A tampered run resumes from the checkpoint before the tampered one: the fallback is exercised.
  for (const run of newest.expected.runs.filter((r) => r.tamper)) {
    const at = run.checkpoints.findIndex((c) => c.checkpointId === run.tamper?.checkpointId);
    expect(run.resume.from).toBe(run.checkpoints[at - 1]?.checkpointId);
  }
});

it("the newest fixture version was written in the current record and export formats", () => {
  // A format change adds fixtures (old ones stay): npx tsx test/fixtures/golden/generate.ts v<N+1>
  const newest = versions.at(-1) as FixtureVersion;
  expect(
    [newest.expected.formatVersion, newest.expected.exportVersion],
    `fixtures ${newest.name} predate this format: add the next version with the generator (see README.md there)`,
  ).toEqual([FORMAT_VERSION, EXPORT_VERSION]);
});

for (const version of versions) {
  const { runs } = version.expected;
  for (const kind of GOLDEN_KINDS) {
    // An unreachable server is a visible skip (services.ts warns; under CI it fails instead).
    describe.skipIf(!kindAvailable(kind))(
      `golden ${version.name} (format ${version.expected.formatVersion}): ${kind} store`,
      () => {
        let loaded: LoadedStore;
        beforeAll(async () => {
          loaded = await loadStore(version, kind);
        });
        afterAll(async () => {
          await loaded?.close();
        });

        it("holds every run, each checkpoint valid or invalid as recorded, statuses and resume counts kept", async () => {
          const manager = loaded.manager();
          expect((await manager.listPipelines()).map((p) => p.pipelineId).sort()).toEqual(
            runs.map((r) => r.pipelineId).sort(),
          );
          for (const run of runs) {
            const validation = await manager.validateRun(run.pipelineId);
            expect(
              validation.checkpoints.map((c) => [c.checkpointId, c.status, c.quarantined]),
              run.pipelineId,
            ).toEqual(
              run.checkpoints.map((c) => [c.checkpointId, c.valid ? "valid" : "invalid", c.quarantined]),
            );
            expect(validation.valid).toBe(run.checkpoints.every((c) => c.valid));
            const history = (await manager.getCheckpointHistory(run.pipelineId)).reverse();
            expect(
              history.map((m) => [m.checkpointId, m.stageName, m.sequence, m.status, m.resumeCount]),
            ).toEqual(
              run.checkpoints.map((c) => [c.checkpointId, c.stageName, c.sequence, c.status, c.resumeCount]),
            );
            // Reading never rewrites: the records keep the format they were written in.
            expect(new Set(history.map((m) => m.formatVersion))).toEqual(
              new Set([version.expected.formatVersion]),
            );
          }
          // At rest as written: every record of the encrypted run encrypted, the compressed run compressed.
          const usage = (await manager.getStatistics()).atRest;
          const recordsOf = (run: ExpectedRun) =>
            run.checkpoints.length + new Set(run.checkpoints.flatMap((c) => c.outputStages)).size;
          const ofKind = (atRest: string) => runs.filter((r) => r.atRest === atRest);
          expect(usage?.encryptedRecords).toBe(ofKind("encrypted").reduce((n, r) => n + recordsOf(r), 0));
          expect(usage?.compressedRecords).toBeGreaterThanOrEqual(
            ofKind("compressed").reduce((n, r) => n + r.checkpoints.length, 0),
          );
        });

        it("loads every valid checkpoint with exactly the recorded outputs and state; the tampered one is corrupt", async () => {
          const manager = loaded.manager();
          for (const run of runs) {
            for (const expected of run.checkpoints) {
              const load = manager.loadCheckpoint(expected.checkpointId);
              if (!expected.valid) {
                await expect(load).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
                continue;
              }
              const checkpoint = await load;
              const outputs = plain(checkpoint.agentOutputs);
              const wanted = expectedOutputs(run, expected.outputStages);
              expect(Object.keys(outputs).sort()).toEqual([...expected.outputStages].sort());
              // Types exact: the canonical text tells a Buffer from a Uint8Array, -0 from 0, a Map from an object.
              expect(encode(outputs)).toBe(encode(wanted));
              expect(outputs).toStrictEqual(wanted);
              expect(encode(checkpoint.stateData)).toBe(expected.stateData);
            }
          }
        });

        it("refuses the encrypted run without its key, naming the key", async () => {
          const keyless = loaded.manager("keyless");
          const encrypted = runs.filter((r) => r.atRest === "encrypted");
          expect(encrypted.length).toBeGreaterThan(0);
          for (const run of encrypted) {
            const first = run.checkpoints[0];
            await expect(keyless.loadCheckpoint(first?.checkpointId as string)).rejects.toMatchObject({
              code: "CAIRN_KEY_MISSING",
            });
          }
        });

        it("exports every run, and each export imports into a memory store and validates", async () => {
          const manager = loaded.manager();
          for (const run of runs) {
            const path = join(loaded.tmp, `${run.pipelineId}.export.json`);
            const invalid = run.checkpoints.filter((c) => !c.valid).map((c) => c.checkpointId);
            const report = await manager.exportPipeline(run.pipelineId, path, {
              skipCorrupt: invalid.length > 0,
            });
            expect(report.skipped.map((s) => s.checkpointId)).toEqual(invalid);
            expect(report.form).toBe(run.atRest === "encrypted" ? "sealed" : "plain");
            const target = new CheckpointManager({ store: "memory:", encryption: version.ring });
            try {
              const imported = await target.importPipeline(path);
              expect(imported.checkpointIds).toEqual(
                run.checkpoints.filter((c) => c.valid).map((c) => c.checkpointId),
              );
              expect((await target.validateRun(run.pipelineId)).valid).toBe(true);
            } finally {
              await target.close();
            }
          }
        });

        // Last: resuming writes to the (private) store.
        it("resumes every run with the fixture pipeline, skipping what completed, to the recorded outputs", async () => {
          for (const run of runs) {
            const manager = loaded.manager(run.atRest);
            const calls: string[] = [];
            const results = await goldenPipeline({ manager, calls }).execute({ runId: run.pipelineId });
            expect(calls, run.pipelineId).toEqual(run.resume.calls);
            expect(results.status).toBe("completed");
            expect(results.resumedFrom).toBe(run.resume.from);
            expect(results.skippedStages).toEqual(run.resume.skippedStages);
            expect(results.alreadyComplete === true).toBe(run.resume.alreadyComplete);
            const finalOutputs = plain(results.finalOutputs);
            expect(encode(finalOutputs)).toBe(run.resume.finalOutputs);
            expect(finalOutputs).toStrictEqual(decode(run.resume.finalOutputs));
            // What the resume wrote verifies, and the run now ends with its completion checkpoint.
            const latest = await manager.loadLatestCheckpoint(run.pipelineId);
            expect(latest?.metadata.stageName).toBe("pipeline_complete");
            expect(encode(plain(latest?.agentOutputs ?? {}))).toBe(run.resume.finalOutputs);
            const validation = await manager.validateRun(run.pipelineId);
            const invalid = validation.checkpoints
              .filter((c) => c.status !== "valid")
              .map((c) => c.checkpointId);
            expect(invalid).toEqual(run.checkpoints.filter((c) => !c.valid).map((c) => c.checkpointId));
          }
        });
      },
    );
  }
}
