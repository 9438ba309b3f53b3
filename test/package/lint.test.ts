/**
 * `npm run lint` checks what git tracks: the store folder an example run leaves behind (`.cairn/`)
 * and the example's output folder are git-ignored, so Biome must skip them too. Checked on a
 * copy of the repo's Biome and git-ignore settings, so the repo's own files do not matter here.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = process.cwd();
const BADLY_FORMATTED_TS = "const  x = {a:1,\n}\nexport   default x\n";
const BADLY_FORMATTED_JSON = '{"a":1,\n    "b":2}';
let dir: string;

/** `biome check .` in the copy: its exit code and output. */
async function biomeCheck(): Promise<{ code: number; output: string }> {
  const biome = join(ROOT, "node_modules", "@biomejs", "biome", "bin", "biome");
  try {
    const { stdout, stderr } = await run(process.execPath, [biome, "check", "--colors=off", "."], {
      cwd: dir,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout}${failed.stderr}` };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-lint-"));
  await copyFile(join(ROOT, "biome.json"), join(dir, "biome.json"));
  await copyFile(join(ROOT, ".gitignore"), join(dir, ".gitignore"));
  await mkdir(join(dir, "src"));
  await writeFile(join(dir, "src", "ok.ts"), "export const ok = 1;\n");
  for (const ignored of [".cairn/checkpoints", "examples/out"]) {
    await mkdir(join(dir, ignored), { recursive: true });
    await writeFile(join(dir, ignored, "bad.ts"), BADLY_FORMATTED_TS);
    await writeFile(join(dir, ignored, "bad.json"), BADLY_FORMATTED_JSON);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("passes with badly formatted files in the git-ignored .cairn/ and examples/out/", async () => {
  const { code, output } = await biomeCheck();
  expect(output).not.toMatch(/\.cairn|examples\/out/);
  expect(code, output).toBe(0);
});

it("still fails on the same badly formatted files where git tracks them", async () => {
  await writeFile(join(dir, "src", "bad.ts"), BADLY_FORMATTED_TS);
  await writeFile(join(dir, "src", "bad.json"), BADLY_FORMATTED_JSON);
  const { code, output } = await biomeCheck();
  expect(code).not.toBe(0);
  expect(output).toContain("src/bad.ts");
  expect(output).toContain("src/bad.json");
});
