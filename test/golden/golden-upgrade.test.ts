/**
 * `upgrade` on the golden fixtures of every older format, in every store: each run whose newest
 * checkpoint verifies gets one checkpoint in the current format chained to it (the encrypted run
 * only with its key), each run whose newest checkpoint is invalid (tampered, quarantined) is
 * skipped and left as it was, and a second upgrade does nothing.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FORMAT_VERSION } from "../../src/index.js";
import { GOLDEN_KINDS, kindAvailable, type LoadedStore, loadStore, readVersion } from "./load-fixture.js";

const ROOT = join(import.meta.dirname, "..", "fixtures", "golden");
const VERSIONS = readdirSync(ROOT).filter((name) => /^v\d+$/.test(name));
const versions = (await Promise.all(VERSIONS.map((name) => readVersion(join(ROOT, name), name)))).filter(
  (v) => v.expected.formatVersion < FORMAT_VERSION,
);

let loaded: LoadedStore | undefined;
afterEach(async () => {
  await loaded?.close();
  loaded = undefined;
});

for (const version of versions) {
  const { runs } = version.expected;
  describe.each(GOLDEN_KINDS.filter(kindAvailable))(`upgrade of golden ${version.name}: %s store`, (kind) => {
    it("upgrades every run whose newest checkpoint verifies, and only those", async () => {
      loaded = await loadStore(version, kind);
      const encrypted = runs.filter((r) => r.atRest === "encrypted").map((r) => r.pipelineId);
      expect(encrypted.length).toBeGreaterThan(0);
      for (const pipelineId of encrypted) {
        await expect(loaded.manager("keyless").upgrade({ pipelineId })).rejects.toMatchObject({
          code: "CAIRN_KEY_MISSING",
        });
      }
      const manager = loaded.manager("reader");
      const report = await manager.upgrade({ all: true });
      const newestValid = (r: (typeof runs)[number]) => r.checkpoints.at(-1)?.valid === true;
      expect(report.upgraded.map((u) => u.pipelineId).sort()).toEqual(
        runs
          .filter(newestValid)
          .map((r) => r.pipelineId)
          .sort(),
      );
      expect(report.skipped.map((s) => [s.pipelineId, s.kind]).sort()).toEqual(
        runs
          .filter((r) => !newestValid(r))
          .map((r) => [r.pipelineId, "corrupt"])
          .sort(),
      );
      for (const run of runs) {
        const listing = await manager.listRun(run.pipelineId);
        const ids = listing.map((e) => (e.ok ? e.metadata.checkpoint_id : "?"));
        const old = run.checkpoints.map((c) => c.checkpointId);
        if (!newestValid(run)) {
          expect(ids).toEqual(old);
          continue;
        }
        expect(ids.slice(0, -1)).toEqual(old);
        const added = listing.at(-1);
        expect(added?.ok && added.metadata).toMatchObject({
          format_version: FORMAT_VERSION,
          parent_checkpoint_id: old.at(-1),
          stage_name: run.checkpoints.at(-1)?.stageName,
          status: run.checkpoints.at(-1)?.status,
        });
        const validation = await manager.validateRun(run.pipelineId);
        expect(validation.checkpoints.at(-1)?.status, run.pipelineId).toBe("valid");
        expect(validation.valid).toBe(run.checkpoints.every((c) => c.valid));
      }
      const again = await manager.upgrade({ all: true });
      expect(again.upgraded).toEqual([]);
      expect(again.current.length).toBe(runs.filter(newestValid).length);
    });
  });
}
