/**
 * Each store with a driver names it when it is missing, opened through the registry as users do: a real child process, started in an
 * empty folder, whose module resolver cannot find the driver package, as for a user without it.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";

const run = promisify(execFile);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const moduleUrl = (path: string) => new URL(path, import.meta.url).href;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-nodriver-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it.each([
  { pkg: "better-sqlite3", strategy: "sqlite", config: () => ({ dbPath: join(dir, "x.db") }) },
  { pkg: "pg", strategy: "postgres", config: () => ({ connectionString: "postgres://127.0.0.1/x" }) },
  { pkg: "ioredis", strategy: "redis", config: () => ({ url: "redis://127.0.0.1:6379/0" }) },
  {
    pkg: "@aws-sdk/client-s3",
    strategy: "s3",
    config: () => ({ bucket: "b", endpoint: "http://127.0.0.1:1" }),
  },
  {
    pkg: "@azure/storage-blob",
    strategy: "azure",
    config: () => ({ container: "runs", connectionString: "UseDevelopmentStorage=true" }),
  },
])("the $strategy store names $pkg when it is not installed", async ({ pkg, strategy, config }) => {
  const hooks = `export async function resolve(specifier, context, next) {
    if (specifier === ${JSON.stringify(pkg)}) {
      throw Object.assign(new Error("Cannot find package '${pkg}'"), { code: "ERR_MODULE_NOT_FOUND" });
    }
    return next(specifier, context);
  }`;
  const register = `import { register } from "node:module";
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const script = `import { openStore } from ${JSON.stringify(moduleUrl("../../src/stores/registry.ts"))};
    openStore(${JSON.stringify({ strategy, config: config() })}).then(
      () => console.log("opened"),
      (e) => console.log(JSON.stringify({ code: e.code, packageName: e.packageName, cause: e.cause?.code })),
    );`;
  const { stdout } = await run(
    process.execPath,
    [
      "--import",
      TSX,
      "--import",
      `data:text/javascript,${encodeURIComponent(register)}`,
      "--input-type=module",
      "--eval",
      script,
    ],
    { cwd: dir },
  );
  expect(JSON.parse(stdout)).toEqual({
    code: "CAIRN_MISSING_DRIVER",
    packageName: pkg,
    cause: "ERR_MODULE_NOT_FOUND",
  });
});

it("importing cairn-pipelines loads none of its optional peer dependencies", async () => {
  const peers = Object.keys(
    (
      createRequire(import.meta.url)("../../package.json") as {
        peerDependenciesMeta: Record<string, unknown>;
      }
    ).peerDependenciesMeta,
  );
  // Every request for an optional peer is refused, as for a user who installed none of them.
  const hooks = `const peers = new Set(${JSON.stringify(peers)});
  export async function resolve(specifier, context, next) {
    if (peers.has(specifier)) {
      throw Object.assign(new Error("Cannot find package '" + specifier + "'"), { code: "ERR_MODULE_NOT_FOUND" });
    }
    return next(specifier, context);
  }`;
  const register = `import { register } from "node:module";
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const script = `const root = await import(${JSON.stringify(moduleUrl("../../src/index.ts"))});
    console.log(typeof root.Pipeline);`;
  const { stdout } = await run(
    process.execPath,
    [
      "--import",
      TSX,
      "--import",
      `data:text/javascript,${encodeURIComponent(register)}`,
      "--input-type=module",
      "--eval",
      script,
    ],
    { cwd: dir },
  );
  expect(peers).toContain("@opentelemetry/api");
  expect(stdout.trim()).toBe("function");
});
