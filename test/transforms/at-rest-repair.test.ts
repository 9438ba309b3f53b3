/**
 * `repairCheckpoint` (`cairn repair`) on tampered encrypted records, on every store. A plain
 * checkpoint whose state was changed is quarantined (the control). An encrypted checkpoint whose
 * ciphertext was changed, or whose output was, is invalid like a checksum mismatch (never taken for
 * an unparseable entry) and is quarantined the same way.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { repairCheckpoint } from "../../src/debug/repair.js";
import type { CheckpointManager } from "../../src/index.js";
import { flipField, MARKER, ring, storedRefs, writeRun } from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

const RUN = "repair-run";

describe.each(RAW_STORE_KINDS)("repair of tampered records on the %s store", (kind) => {
  let store: RawStore;
  let backupDir: string;
  beforeEach(async () => {
    store = await openRawStore(kind);
    backupDir = await mkdtemp(join(tmpdir(), "cairn-at-rest-repair-"));
  });
  afterEach(async () => {
    await store.close();
    await rm(backupDir, { recursive: true, force: true });
  });

  /** Repairs the newest checkpoint; it ends quarantined, and resume takes the one before. */
  async function expectQuarantined(manager: CheckpointManager, ids: readonly string[]): Promise<void> {
    const report = await repairCheckpoint(manager, ids[2] as string, { backupDir });
    expect(report.status).toBe("quarantined");
    const validation = await manager.validateRun(RUN);
    expect(validation.checkpoints[2]).toMatchObject({ status: "invalid", quarantined: true });
    expect((await manager.loadLatestCheckpoint(RUN))?.metadata.checkpointId).toBe(ids[1]);
  }

  it("a plain checkpoint whose state was changed is quarantined (the control)", async () => {
    const ids = await writeRun(store.manager(), RUN);
    const newest = ids[2] as string;
    await store.setBody(newest, (await store.body(newest)).replace(MARKER, MARKER.toUpperCase()));
    await expectQuarantined(store.manager(), ids);
  });

  it("an encrypted checkpoint whose ciphertext was changed is quarantined", async () => {
    const ids = await writeRun(store.manager({ encryption: ring() }), RUN);
    const newest = ids[2] as string;
    await store.setBody(newest, flipField(await store.body(newest), "d"));
    await expectQuarantined(store.manager({ encryption: ring() }), ids);
  });

  it("an encrypted checkpoint whose output was changed is quarantined", async () => {
    const ids = await writeRun(store.manager({ encryption: ring() }), RUN);
    const newest = ids[2] as string;
    const hash = storedRefs(await store.body(newest)).score as string;
    await store.setOutput(RUN, hash, flipField((await store.outputs(RUN)).get(hash) as string, "d"));
    await expectQuarantined(store.manager({ encryption: ring() }), ids);
  });
});
