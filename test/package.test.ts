/**
 * The package as a user installs it: the built `dist/` under `node_modules/cairn`, imported by
 * name from a project that has no database drivers installed.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify, stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "cairn-pkg-"));
  const pkg = join(project, "node_modules", "cairn");
  await mkdir(pkg, { recursive: true });
  await cp("dist", join(pkg, "dist"), { recursive: true });
  await cp("package.json", join(pkg, "package.json"));
  // The package's own dependencies are installed with it; the optional database drivers are not.
  const manifest = JSON.parse(await readFile("package.json", "utf8")) as {
    dependencies: Record<string, string>;
  };
  for (const dep of Object.keys(manifest.dependencies)) {
    const link = join(project, "node_modules", dep);
    await mkdir(dirname(link), { recursive: true }); // scoped packages: node_modules/@scope/name
    await symlink(resolve("node_modules", dep), link, "dir");
  }
});
afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

it("imports by name without loading any driver, and names the missing one when a store needs it", async () => {
  const script = `
    import { CheckpointManager, isCairnError } from "cairn";
    const m = new CheckpointManager({ strategy: "file", config: { basePath: "./store" } });
    const id = await m.createCheckpoint({ pipelineId: "p", stageName: "s", stageIndex: 0, agentOutputs: { s: 1 } });
    const loaded = await m.loadCheckpoint(id);
    const sqlite = new CheckpointManager({ strategy: "sqlite", config: { dbPath: "./x.db" } });
    let code;
    try { await sqlite.listPipelines(); } catch (e) { code = isCairnError(e) && e.code + " " + e.message; }
    console.log(JSON.stringify({ output: loaded.agentOutputs.s, code }));
  `;
  await writeFile(join(project, "main.mjs"), script);
  const { stdout } = await run(process.execPath, ["main.mjs"], { cwd: project });
  const result = JSON.parse(stdout);
  expect(result.output).toBe(1);
  expect(result.code).toMatch(/^CAIRN_MISSING_DRIVER .*better-sqlite3/);
});

it("publishes the conformance kit as cairn/testing: a consumer's vitest runs it against a store", async () => {
  // vitest is the kit's optional peer dependency: the consumer brings it.
  await symlink(resolve("node_modules", "vitest"), join(project, "node_modules", "vitest"), "dir");
  await writeFile(
    join(project, "kit.test.mjs"),
    `import { openStore } from "cairn";
     import { describeStoreConformance } from "cairn/testing";
     describeStoreConformance("memory, from the package", () => openStore("memory:"));
    `,
  );
  const { stdout } = await run(
    process.execPath,
    [join(project, "node_modules", "vitest", "vitest.mjs"), "run", "--root", project, "kit.test.mjs"],
    { cwd: project, env: { ...process.env, CI: "", NO_COLOR: "1" } },
  );
  // Every test ran or was skipped with a reason; none failed (a failure rejects `run` above).
  const plain = stripVTControlCharacters(stdout);
  expect(plain).toMatch(/Tests\s+\d+ passed \| \d+ skipped/);
}, 120_000);
