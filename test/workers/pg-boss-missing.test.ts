/**
 * Without the `pg-boss` package, the pg-boss engine says which package to install: a real child
 * process whose module resolver cannot find pg-boss, as for a user without it.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const ADAPTER = new URL("../../src/workers/pg-boss.ts", import.meta.url).href;

it.each(["enqueue", "startWorker"])("%s names pg-boss when it is not installed", async (operation) => {
  const hooks = `export async function resolve(specifier, context, next) {
    if (specifier === "pg-boss") {
      throw Object.assign(new Error("Cannot find package 'pg-boss'"), { code: "ERR_MODULE_NOT_FOUND" });
    }
    return next(specifier, context);
  }`;
  const register = `import { register } from "node:module";
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const settings = {
    connection: "postgres://127.0.0.1:1/none",
    queue: "cairn-runs",
    leaseTtlMs: 2000,
    concurrency: 1,
  };
  const script = `import { adapter } from ${JSON.stringify(ADAPTER)};
    const settings = { ...${JSON.stringify(settings)}, onError: () => {} };
    const call = ${JSON.stringify(operation)} === "enqueue"
      ? adapter.enqueue(settings, { pipeline: "p", runId: "r" })
      : adapter.startWorker(settings, async () => ({ kind: "completed" }));
    call.then(
      () => console.log("started"),
      (e) => console.log(JSON.stringify({ code: e.code, packageName: e.packageName, message: e.message })),
    );`;
  const { stdout } = await run(process.execPath, [
    "--import",
    TSX,
    "--import",
    `data:text/javascript,${encodeURIComponent(register)}`,
    "--input-type=module",
    "--eval",
    script,
  ]);
  expect(JSON.parse(stdout)).toEqual({
    code: "CAIRN_MISSING_DRIVER",
    packageName: "pg-boss",
    message: 'The pg-boss worker engine needs the "pg-boss" package: run `npm install pg-boss`',
  });
});
