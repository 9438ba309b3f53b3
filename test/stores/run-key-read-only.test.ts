/**
 * Reading key records through a read-only open creates nothing: no run folder, lock file or
 * table appears for a run that has no key, and a stored key reads back.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { makeRecord } from "../../src/testing/store-contract.js";

let dir: string;
const opened: CheckpointStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-runkeys-ro-"));
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function everything(folder: string): Promise<string[]> {
  return (await readdir(folder, { recursive: true })).map(String).sort();
}

async function open(url: string, readOnly: boolean): Promise<CheckpointStore> {
  const store = await openStore(url, { readOnly });
  opened.push(store);
  await store.setup();
  return store;
}

describe.each([
  ["file", () => `file:${join(dir, "store")}`],
  ["sqlite", () => `sqlite:${join(dir, "cairn.db")}`],
])("%s store, read-only", (_name, spec) => {
  it("reads key records and creates nothing", async () => {
    const writer = await open(spec(), false);
    const made = makeRecord("keyed", 1);
    await writer.putCheckpoint(made.record, made.outputs);
    expect(await writer.putRunKey?.("keyed", "wrapped-key", undefined)).toBe(true);
    await writer.close();
    const before = await everything(dir);
    const reader = await open(spec(), true);
    expect(await reader.getRunKey?.("keyed")).toBe("wrapped-key");
    expect(await reader.getRunKey?.("never-written")).toBeUndefined();
    expect(await reader.listPipelineIds()).toEqual(["keyed"]);
    await reader.close();
    expect(await everything(dir)).toEqual(before);
  });
});
