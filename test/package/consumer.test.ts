/**
 * The package as a user gets it: `npm pack` (of the `dist/` that global-setup built), installed
 * offline from the npm cache into a fresh project that has no database drivers, then imported,
 * type-checked, run from the command line and used as the README's quick start shows.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify, stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { blockAfter, consumerEnv, packInto, ROOT, writeConsumerProject } from "../support/consumer-app.js";

const run = promisify(execFile);
const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  exports: Record<string, unknown>;
  version: string;
  bin: Record<string, string>;
  files: string[];
};
let tmp: string;
let app: string;

/** Runs node in the consumer project. */
function node(args: string[], env: NodeJS.ProcessEnv = consumerEnv()) {
  return run(process.execPath, args, { cwd: app, env });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "cairn-consumer-"));
  app = join(tmp, "app");
  await mkdir(app);
  const tarball = await packInto(tmp);
  await writeConsumerProject(app, `../${tarball}`);
  // --offline: nothing may come from the network, only from the cache `npm ci` filled.
  await run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], { cwd: app, env: consumerEnv() });
  // The kit's entry point loads vitest, its optional peer: a consumer who uses the kit brings it.
  await symlink(join(ROOT, "node_modules", "vitest"), join(app, "node_modules", "vitest"), "dir");
  // So does the LangGraph entry's user: LangGraph's checkpoint package and its peer, @langchain/core.
  await mkdir(join(app, "node_modules", "@langchain"));
  for (const pkg of ["langgraph-checkpoint", "core"])
    await symlink(
      join(ROOT, "node_modules", "@langchain", pkg),
      join(app, "node_modules", "@langchain", pkg),
      "dir",
    );
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

it("installs under its npm name with its own dependencies and no database driver", async () => {
  const installed = await readdir(join(app, "node_modules"));
  expect(installed).toContain(manifest.name);
  for (const driver of ["better-sqlite3", "pg", "ioredis", "@aws-sdk", "@azure"])
    expect(installed).not.toContain(driver);
  const files = await readdir(join(app, "node_modules", manifest.name));
  expect(files).toEqual(expect.arrayContaining(["dist", "package.json", "README.md"]));
  // Whatever `files` lists and the repository has is shipped (LICENSE, CHANGELOG.md once written).
  const present = manifest.files.filter((file) => existsSync(join(ROOT, file)));
  expect(files).toEqual(expect.arrayContaining(present));
  expect(files).not.toContain("src");
  expect(files).not.toContain("test");
});

it("imports every entry point in `exports` as ESM", async () => {
  // Some of each entry point's exports; a new entry point in package.json adds its line here.
  const expected: Record<string, string[]> = {
    ".": ["Pipeline", "CheckpointManager", "openStore", "isCairnError"],
    "./testing": ["describeStoreConformance", "makeRecord"],
    "./workers": ["createWorker", "enqueueRun", "StoreNotSharedError"],
    "./langgraph": ["CairnSaver", "threadRunId", "threadPipelineName"],
  };
  const entries = Object.keys(manifest.exports).filter((key) => key !== "./package.json");
  expect(entries.sort()).toEqual(Object.keys(expected).sort());
  for (const entry of entries) {
    const specifier = manifest.name + entry.slice(1);
    const { stdout } = await node([
      "--input-type=module",
      "-e",
      `console.log(JSON.stringify(Object.keys(await import(${JSON.stringify(specifier)}))))`,
    ]);
    expect(JSON.parse(stdout), specifier).toEqual(expect.arrayContaining(expected[entry] ?? []));
  }
  const { stdout } = await node([
    "--input-type=module",
    "-e",
    `const m = await import("${manifest.name}/package.json", { with: { type: "json" } }); console.log(m.default.name)`,
  ]);
  expect(stdout.trim()).toBe(manifest.name);
});

it("type-checks a strict consumer file under node16 and bundler resolution", async () => {
  await writeFile(
    join(app, "consumer.ts"),
    `import { CheckpointManager, isCairnError, Pipeline, type PipelineResults } from "${manifest.name}";
import { describeStoreConformance, type StoreHarness } from "${manifest.name}/testing";

const pipeline = new Pipeline({ name: "typed", steps: [{ name: "a", agent: (inputs) => inputs }] });
export const results: Promise<PipelineResults> = pipeline.execute();
const manager = new CheckpointManager({ strategy: "memory" });
export const id: Promise<string> = manager.createCheckpoint({ pipelineId: "p", stageName: "a", stageIndex: 0 });
export function code(error: unknown): string | undefined {
  return isCairnError(error) ? error.code : undefined;
}
export const kit: typeof describeStoreConformance = describeStoreConformance;
export type Harness = StoreHarness;
// The declarations are real types, not any: each misuse below must be a compile error.
// @ts-expect-error: a step needs an agent
new Pipeline({ name: "typed", steps: [{ name: "a" }] });
// @ts-expect-error: a checkpoint id is a string
export const wrong: Promise<number> = manager.createCheckpoint({ pipelineId: "p", stageName: "a", stageIndex: 0 });
`,
  );
  const typeRoots = JSON.stringify(join(ROOT, "node_modules", "@types"));
  // node16 checks the shipped declarations in full (skipLibCheck off), as the strictest consumer
  // would; bundler checks that they resolve there too.
  const settings: [module: string, resolution: string, skipLibCheck: boolean][] = [
    ["node16", "node16", false],
    ["esnext", "bundler", true],
  ];
  for (const [module, resolution, skipLibCheck] of settings) {
    await writeFile(
      join(app, "tsconfig.json"),
      `{ "compilerOptions": { "strict": true, "noEmit": true, "target": "ES2022", "lib": ["ES2023"],
         "module": "${module}", "moduleResolution": "${resolution}", "skipLibCheck": ${skipLibCheck},
         "types": ["node"], "typeRoots": [${typeRoots}] }, "files": ["consumer.ts"] }`,
    );
    const tsc = node([join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
    await expect(tsc, resolution).resolves.toBeDefined();
  }
}, 60_000);

it("runs both commands with npx: cairn and cairn-pipelines", async () => {
  expect(Object.keys(manifest.bin).sort()).toEqual(["cairn", manifest.name].sort());
  for (const bin of Object.keys(manifest.bin)) {
    const { stdout } = await run("npx", ["--offline", bin, "--help"], { cwd: app, env: consumerEnv() });
    expect(stdout, bin).toMatch(/^Usage: cairn \[options\] \[command\]/);
    expect(stdout, bin).toContain("validate");
  }
  // The command reads its version from the installed package.json.
  const { stdout } = await run("npx", ["--offline", "cairn", "--version"], { cwd: app, env: consumerEnv() });
  expect(stdout.trim()).toBe(manifest.version);
});

it("runs the README's quick start as written, on a file store in the project", async () => {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  await writeFile(join(app, "quickstart.ts"), blockAfter(readme, "<!-- consumer-test -->"));
  const { stdout } = await node([join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "quickstart.ts"]);
  expect(stdout).toMatch(/^completed /);
  const list = await run("npx", ["--offline", "cairn", "list", "--store", "file:./checkpoints", "--json"], {
    cwd: app,
    env: consumerEnv(),
  });
  expect(JSON.stringify(JSON.parse(list.stdout))).toMatch(/"status":"completed"/);
});

it("names the missing driver when a store needs one, and uses it once the consumer installs it", async () => {
  const script = `
    import { CheckpointManager, isCairnError } from "${manifest.name}";
    const sqlite = new CheckpointManager({ strategy: "sqlite", config: { dbPath: "./x.db" } });
    try {
      const id = await sqlite.createCheckpoint({ pipelineId: "p", stageName: "s", stageIndex: 0, agentOutputs: { s: 1 } });
      console.log(JSON.stringify({ output: (await sqlite.loadCheckpoint(id)).agentOutputs.s }));
    } catch (e) {
      console.log(JSON.stringify({ code: isCairnError(e) ? e.code + " " + e.message : String(e) }));
    } finally {
      await sqlite.close();
    }
  `;
  await writeFile(join(app, "sqlite.mjs"), script);
  const missing = JSON.parse((await node(["sqlite.mjs"])).stdout);
  expect(missing.code).toMatch(/^CAIRN_MISSING_DRIVER .*better-sqlite3/);
  // The driver is a native module: linking the repo's built copy stands in for `npm install
  // better-sqlite3`, which would compile or download a binary.
  await symlink(
    join(ROOT, "node_modules", "better-sqlite3"),
    join(app, "node_modules", "better-sqlite3"),
    "dir",
  );
  const installed = JSON.parse((await node(["sqlite.mjs"])).stdout);
  expect(installed).toEqual({ output: 1 });
});

it("publishes the conformance kit: the consumer's vitest runs it against a store", async () => {
  await writeFile(
    join(app, "kit.test.mjs"),
    `import { openStore } from "${manifest.name}";
     import { describeStoreConformance } from "${manifest.name}/testing";
     describeStoreConformance("memory, from the package", () => openStore("memory:"));
    `,
  );
  const { stdout } = await node(
    [join(app, "node_modules", "vitest", "vitest.mjs"), "run", "--root", app, "kit.test.mjs"],
    { ...consumerEnv(), CI: "" },
  );
  // Every test ran or was skipped with a reason; none failed (a failure rejects `node` above).
  expect(stripVTControlCharacters(stdout)).toMatch(/Tests\s+\d+ passed \| \d+ skipped/);
}, 120_000);

it("serves the web console from the installed package: the page built into dist/, no network", async () => {
  const { spawn } = await import("node:child_process");
  const child = spawn(
    process.execPath,
    [
      join(app, "node_modules", manifest.name, "dist/cli/main.js"),
      "ui",
      "--json",
      "--port",
      "0",
      "--allow-actions",
      "--store",
      `file:${join(app, "console-store")}`,
      "--audit-log",
      join(app, "audit.jsonl"),
    ],
    { cwd: app, env: consumerEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0] ?? "");
      });
      child.stderr.on("data", (chunk: Buffer) => {
        err += chunk.toString();
      });
      child.on("exit", (code) => reject(new Error(`cairn ui exited ${code}: ${err}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    const script = /<script[^>]+src="([^"]+)"/.exec(html)?.[1];
    expect(script).toMatch(/^\/assets\/.+\.js$/);
    const asset = await fetch(new URL(script as string, url));
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toMatch(/javascript/);
    const runs = await fetch(new URL("api/runs", url));
    expect(await runs.json()).toMatchObject({ runs: [] });
  } finally {
    child.kill("SIGTERM");
  }
});
