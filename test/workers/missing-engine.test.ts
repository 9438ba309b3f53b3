/**
 * Without `bullmq` installed, `cairn-pipelines/workers` still imports, and using the BullMQ engine
 * is a `MissingDriverError` naming the package: a child process whose resolver cannot find it.
 */
import { expect, it } from "vitest";
import { runWithoutPackages } from "../support/missing-package.js";

const moduleUrl = (path: string) => new URL(path, import.meta.url).href;

it("imports without bullmq, and names the package when the BullMQ engine is used", async () => {
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
  const stdout = await runWithoutPackages(script, { missing: ["bullmq"] });
  const expected = {
    code: "CAIRN_MISSING_DRIVER",
    packageName: "bullmq",
    message: expect.stringContaining('The bullmq worker engine needs the "bullmq" package'),
  };
  expect(JSON.parse(stdout)).toEqual({ worker: expected, enqueued: expected });
});
