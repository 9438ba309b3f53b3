/**
 * Without the `pg-boss` package, the pg-boss engine says which package to install: a real child
 * process whose module resolver cannot find pg-boss, as for a user without it.
 */
import { expect, it } from "vitest";
import { runWithoutPackages } from "../support/missing-package.js";

const ADAPTER = new URL("../../src/workers/pg-boss.ts", import.meta.url).href;

it.each(["enqueue", "startWorker"])("%s names pg-boss when it is not installed", async (operation) => {
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
  const stdout = await runWithoutPackages(script, { missing: ["pg-boss"] });
  expect(JSON.parse(stdout)).toEqual({
    code: "CAIRN_MISSING_DRIVER",
    packageName: "pg-boss",
    message: 'The pg-boss worker engine needs the "pg-boss" package: run `npm install pg-boss`',
  });
});
