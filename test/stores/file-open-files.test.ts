/**
 * A checkpoint with more new outputs than a process may hold files open: the file store writes
 * them a batch at a time (`OPEN_FILES_PER_BATCH`), never all at once, so it stays under the
 * common limit of 1,024 open files (here a child process limited to 256).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";

const run = promisify(execFile);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const WRITER = fileURLToPath(new URL("./fixtures/many-outputs.ts", import.meta.url));
let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("writes a checkpoint with 1,100 new outputs under a limit of 256 open files", async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-open-files-"));
  const { stdout } = await run(
    "bash",
    ["-c", 'ulimit -n 256 && exec "$0" --import "$1" "$2" "$3" 1100', process.execPath, TSX, WRITER, dir],
    { encoding: "utf8" },
  );
  expect(stdout.trim()).toBe("1100");
}, 60_000);
