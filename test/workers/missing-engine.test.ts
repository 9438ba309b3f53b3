/**
 * Without `bullmq` installed, `cairn-pipelines/workers` still imports, and using the BullMQ engine
 * is a `MissingDriverError` naming the package: a child process whose resolver cannot find it.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const moduleUrl = (path: string) => new URL(path, import.meta.url).href;

it("imports without bullmq, and names the package when the BullMQ engine is used", async () => {
  const hooks = `export async function resolve(specifier, context, next) {
    if (specifier === "bullmq") {
      throw Object.assign(new Error("Cannot find package 'bullmq'"), { code: "ERR_MODULE_NOT_FOUND" });
    }
    return next(specifier, context);
  }`;
  const register = `import { register } from "node:module";
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const script = `
    const { createWorker, enqueueRun } = await import(${JSON.stringify(moduleUrl("../../src/workers/index.ts"))});
    const { Pipeline } = await import(${JSON.stringify(moduleUrl("../../src/index.ts"))});
    const pipeline = new Pipeline({ name: "p", steps: [{ name: "a", agent: () => 1 }], checkpointEnabled: true,
      checkpointStore: "postgres://127.0.0.1:1/x" });
    const report = (e) => ({ code: e.code, packageName: e.packageName, message: e.message });
    const worker = await createWorker({ engine: "bullmq", connection: "redis://127.0.0.1:1", pipelines: { p: pipeline } })
      .then(() => "started", report);
    const enqueued = await enqueueRun({ engine: "bullmq", connection: "redis://127.0.0.1:1", pipeline: "p" })
      .then(() => "enqueued", report);
    console.log(JSON.stringify({ worker, enqueued }));`;
  const { stdout } = await run(process.execPath, [
    "--import",
    TSX,
    "--import",
    `data:text/javascript,${encodeURIComponent(register)}`,
    "--input-type=module",
    "--eval",
    script,
  ]);
  const expected = {
    code: "CAIRN_MISSING_DRIVER",
    packageName: "bullmq",
    message: expect.stringContaining('The bullmq worker engine needs the "bullmq" package'),
  };
  expect(JSON.parse(stdout)).toEqual({ worker: expected, enqueued: expected });
});
