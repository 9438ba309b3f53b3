/**
 * Temp files killed durable writes left: the next durable write into the folder removes those
 * whose writer is gone, and never one a live writer may still be writing.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { writeFileDurably } from "../../src/util/atomic-file.js";
import { durableTempName, removeStaleTemps } from "../../src/util/stale-temps.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-stale-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that no process has: one that just exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout.toString());
}

/** This host's temp name of `name`, as process `pid` would make it. */
const tempOf = (name: string, pid: number) => durableTempName(name).replace(`-${process.pid}-`, `-${pid}-`);

it("removes the temp files of dead writers on this host and keeps live writers' and other files", async () => {
  const dead = tempOf("run.json", deadPid());
  const mine = durableTempName("run.json");
  const parent = tempOf("other.json", process.ppid);
  const unrelated = [".run.json.0123456789ab.tmp", ".hidden", "notes.txt"];
  for (const name of [dead, mine, parent, ...unrelated]) await writeFile(join(dir, name), "x");
  await writeFileDurably(join(dir, "run.json"), "{}\n");
  expect((await readdir(dir)).sort()).toEqual([mine, parent, ...unrelated, "run.json"].sort());
});

it("removes another host's temp file only once it has been left unchanged for an hour", async () => {
  const young = ".a.json.cairn-00000000-1-0123456789ab.tmp";
  const old = ".b.json.cairn-00000000-1-0123456789ab.tmp";
  for (const name of [young, old]) await writeFile(join(dir, name), "x");
  const twoHoursAgo = new Date(Date.now() - 7_200_000);
  await utimes(join(dir, old), twoHoursAgo, twoHoursAgo);
  expect(removeStaleTemps(dir)).toEqual([old]);
  expect(await readdir(dir)).toEqual([young]);
});
