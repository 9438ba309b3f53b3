/**
 * Replication to and from the object stores on their test servers (azurite for azure, Ceph RGW
 * for s3; each only when it is up): as a target, its cursor is a `meta/` object and a restart
 * catches up from it; as a source (no feed), a follow compares in full every `pollMs`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager, replicate } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { ring } from "../support/at-rest-runs.js";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "../support/object-servers.js";
import { expectSameRuns, until, writeRun } from "../support/replica.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-replicate-cloud-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const closing: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((c) => c.close()));
});

async function opened(url: string): Promise<CheckpointStore> {
  const store = await openStore(url);
  closing.push(store);
  return store;
}

function manager(store: string, encrypted = false): CheckpointManager {
  const m = new CheckpointManager({ store, ...(encrypted ? { encryption: ring() } : {}) });
  closing.push(m);
  return m;
}

const CLOUDS = [
  { name: "azure", up: azureUp, url: () => azureUrl(objectPrefix("replicate")) },
  { name: "s3", up: s3Up, url: () => s3Url(objectPrefix("replicate")) },
];

describe.each(CLOUDS)("replicate with $name", ({ up, url }) => {
  it.skipIf(!up)("as the target: copies, keeps its cursor in meta/, catches up on restart", async () => {
    const from = `sqlite:${join(dir, `${objectPrefix("src")}.db`)}`;
    const to = url();
    const m = manager(from);
    await writeRun(m, "run-a", 3);
    await writeRun(manager(from, true), "run-enc", 2);
    expect(await replicate({ from, to })).toMatchObject({ checkpointsCopied: 5, syncs: 1 });
    await writeRun(m, "run-b", 2);
    expect(await replicate({ from, to })).toMatchObject({ checkpointsCopied: 2, syncs: 0 });
    await expectSameRuns(await opened(from), await opened(to));
    const validations = await manager(to, true).validateAllRuns();
    expect(validations.every((v) => v.valid)).toBe(true);
  });

  it.skipIf(!up)("as the source: a follow compares in full every pollMs", async () => {
    const from = url();
    const to = `sqlite:${join(dir, `${objectPrefix("dst")}.db`)}`;
    const m = manager(from);
    await writeRun(m, "run-1", 2);
    const target = await opened(to);
    const controller = new AbortController();
    const running = replicate({ from, to, follow: true, pollMs: 100, signal: controller.signal });
    await until(async () => (await target.listCheckpoints("run-1")).length === 2, 30_000);
    await writeRun(m, "run-2", 2);
    await until(async () => (await target.listCheckpoints("run-2")).length === 2, 30_000);
    controller.abort();
    const report = await running;
    expect(report.syncs).toBeGreaterThanOrEqual(2);
    await expectSameRuns(await opened(from), target);
  });
});
