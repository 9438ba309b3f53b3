/**
 * Each store with a driver names it when it is missing, opened through the registry as users do: a real child process, started in an
 * empty folder, whose module resolver cannot find the driver package, as for a user without it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { runWithoutPackages } from "../support/missing-package.js";

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
  const script = `import { openStore } from ${JSON.stringify(moduleUrl("../../src/stores/registry.ts"))};
    openStore(${JSON.stringify({ strategy, config: config() })}).then(
      () => console.log("opened"),
      (e) => console.log(JSON.stringify({ code: e.code, packageName: e.packageName, cause: e.cause?.code })),
    );`;
  const stdout = await runWithoutPackages(script, { missing: [pkg], cwd: dir });
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
  const script = `const root = await import(${JSON.stringify(moduleUrl("../../src/index.ts"))});
    console.log(typeof root.Pipeline);`;
  // Every request for an optional peer is refused, as for a user who installed none of them.
  const stdout = await runWithoutPackages(script, { missing: peers, cwd: dir });
  expect(peers).toContain("@opentelemetry/api");
  expect(peers).toContain("@langchain/langgraph-checkpoint");
  expect(stdout.trim()).toBe("function");
});
