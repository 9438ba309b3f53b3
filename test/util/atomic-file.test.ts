import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createFile,
  linkIntoPlace,
  moveIntoPlace,
  replaceFile,
  writeTemps,
} from "../../src/util/atomic-file.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-atomic-"));
});

afterEach(async () => {
  await chmod(dir, 0o700).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe("atomic files", () => {
  it("replaces a file and creates one only when absent", async () => {
    await replaceFile(dir, "a.json", "one", true);
    await replaceFile(dir, "a.json", "two", true);
    expect(await readFile(join(dir, "a.json"), "utf8")).toBe("two");
    expect(await createFile(dir, "b.json", "first", true)).toBe(true);
    expect(await createFile(dir, "b.json", "second", false)).toBe(false);
    expect(await readFile(join(dir, "b.json"), "utf8")).toBe("first");
    expect(await readdir(dir)).toEqual(["a.json", "b.json"]);
  });

  it("writes several temp files at once and moves them in one by one", async () => {
    const data = "é".repeat(300_000); // multi-byte text larger than one write
    const temps = await writeTemps(
      [
        { dir, name: "x.json", data },
        { dir, name: "y.json", data: "y" },
      ],
      true,
    );
    expect((await readdir(dir)).every((n) => n.startsWith(".") && n.endsWith(".tmp"))).toBe(true);
    const [x, y] = temps as [(typeof temps)[0], (typeof temps)[0]];
    moveIntoPlace(x);
    expect(linkIntoPlace(y)).toBe(true);
    expect(await readFile(join(dir, "x.json"), "utf8")).toBe(data);
    expect((await readdir(dir)).sort()).toEqual(["x.json", "y.json"]);
  });

  it("leaves no temp file behind when one of a batch cannot be written", async () => {
    await expect(
      writeTemps(
        [
          { dir, name: "ok.json", data: "ok" },
          { dir: join(dir, "missing"), name: "no.json", data: "no" },
        ],
        true,
      ),
    ).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(dir)).toEqual([]);
  });

  it("drops the temp file when the target is taken, and when a move fails", async () => {
    await writeFile(join(dir, "taken.json"), "old");
    const [taken] = await writeTemps([{ dir, name: "taken.json", data: "new" }], false);
    expect(linkIntoPlace(taken as NonNullable<typeof taken>)).toBe(false);
    const [blocked] = await writeTemps([{ dir, name: "sub", data: "file" }], false);
    await rm(join(dir, "sub"), { force: true });
    await mkdir(join(dir, "sub", "inner"), { recursive: true });
    // Renaming a file onto a non-empty folder fails (EISDIR/ENOTEMPTY): the temp file must go.
    expect(() => moveIntoPlace(blocked as NonNullable<typeof blocked>)).toThrow();
    expect((await readdir(dir)).sort()).toEqual(["sub", "taken.json"]);
    expect(await readFile(join(dir, "taken.json"), "utf8")).toBe("old");
  });
});
