/**
 * `writeFileDurably`: the file is flushed before the rename, and the folder (and every folder it
 * had to create) after it, so the new name survives a power cut. The system calls are watched
 * through a wrapped `node:fs`.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** Every open, fsync and rename, in order, by path. */
const calls: string[] = [];
const paths = new Map<number, string>();

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    openSync: (path: string, flags: string) => {
      const fd = fs.openSync(path, flags);
      paths.set(fd, path);
      return fd;
    },
    fsync: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      calls.push(`fsync ${paths.get(fd)}`);
      fs.fsync(fd, callback);
    },
    renameSync: (from: string, to: string) => {
      calls.push(`rename ${to}`);
      fs.renameSync(from, to);
    },
  };
});

const { writeFileDurably } = await import("../../src/util/atomic-file.js");

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-durable-"));
  calls.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(process.platform === "win32")("writeFileDurably", () => {
  it("flushes the temp file, renames it, then flushes the folder", async () => {
    const target = join(dir, "export.json");
    await writeFileDurably(target, "{}\n");
    expect(await readFile(target, "utf8")).toBe("{}\n");
    expect(await readdir(dir)).toEqual(["export.json"]);
    const temp = calls[0] as string;
    expect(temp).toMatch(/^fsync .*\/\.export\.json\.cairn-[0-9a-f]{8}-\d+-[0-9a-f]{12}\.tmp$/);
    expect(calls).toEqual([temp, `rename ${target}`, `fsync ${dir}`]);
  });

  it("writes bytes, and flushes each folder it created in its parent", async () => {
    const target = join(dir, "a", "b", "graph.png");
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47]);
    await writeFileDurably(target, png);
    expect(new Uint8Array(await readFile(target))).toEqual(png);
    expect(calls.slice(1)).toEqual([
      `rename ${target}`,
      `fsync ${join(dir, "a", "b")}`,
      `fsync ${join(dir, "a")}`,
      `fsync ${dir}`,
    ]);
  });
});
