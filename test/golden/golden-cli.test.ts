/**
 * The golden fixtures through the built CLI (`npm run build` first): `cairn validate
 * --pipeline-id` on copies of the file and SQLite fixtures of every version gives the exit code
 * each run calls for: 0 valid, 4 with the tampered checkpoint, 0 when it is quarantined, 7 for
 * the encrypted run without its key file, 0 with it.
 */
import { readdirSync } from "node:fs";
import { chmod, copyFile, cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCairn } from "../support/cli.js";
import { readVersion } from "./load-fixture.js";

const ROOT = join(import.meta.dirname, "..", "fixtures", "golden");
const versions = await Promise.all(
  readdirSync(ROOT)
    .filter((name) => /^v\d+$/.test(name))
    .map((name) => readVersion(join(ROOT, name), name)),
);

for (const version of versions) {
  describe(`golden ${version.name} through cairn validate`, () => {
    let dir: string;
    let keyFile: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "cairn-golden-cli-"));
      await cp(join(version.dir, "file"), join(dir, "file"), { recursive: true });
      await copyFile(join(version.dir, "sqlite", "cairn.db"), join(dir, "cairn.db"));
      // Git keeps no file mode but the executable bit; cairn refuses a key file others may read.
      keyFile = join(dir, "test.keys.json");
      await copyFile(join(version.dir, version.expected.keyFile), keyFile);
      await chmod(keyFile, 0o600);
    });
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const stores = {
      file: () => `file:${join(dir, "file")}`,
      sqlite: () => `sqlite:${join(dir, "cairn.db")}`,
    };
    for (const [kind, store] of Object.entries(stores)) {
      it(`${kind}: each run's exit code`, async () => {
        for (const run of version.expected.runs) {
          const args = ["validate", "--pipeline-id", run.pipelineId, "--store", store()];
          const bare = await runCairn(args, { cwd: dir });
          // A quarantined checkpoint is a handled problem: reported, exit 0 (4 only with --strict).
          const broken = run.checkpoints.some((c) => !c.valid && !c.quarantined);
          const expected = run.atRest === "encrypted" ? 7 : broken ? 4 : 0;
          expect(bare.code, `${run.pipelineId}: ${bare.stdout}${bare.stderr}`).toBe(expected);
          if (run.atRest !== "encrypted") continue;
          const keyed = await runCairn([...args, "--key-file", keyFile], { cwd: dir });
          expect(keyed.code, `${run.pipelineId}: ${keyed.stdout}${keyed.stderr}`).toBe(0);
        }
      });
    }
  });
}
