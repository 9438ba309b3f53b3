/**
 * Without `@langchain/langgraph-checkpoint` installed, importing `cairn-pipelines/langgraph` is a
 * `MissingDriverError` naming the package, not a bare module-not-found: a child process whose
 * resolver cannot find it, as for a user who never installed it.
 */
import { expect, it } from "vitest";
import { runWithoutPackages } from "../support/missing-package.js";

it("names the missing LangGraph package when the langgraph entry is imported without it", async () => {
  const entry = JSON.stringify(new URL("../../src/langgraph/index.ts", import.meta.url).href);
  const script = `const outcome = await import(${entry}).then(
      () => "imported",
      (e) => ({ code: e.code, packageName: e.packageName, message: e.message }));
    console.log(JSON.stringify(outcome));`;
  const stdout = await runWithoutPackages(script, { missing: ["@langchain/langgraph-checkpoint"] });
  expect(JSON.parse(stdout)).toEqual({
    code: "CAIRN_MISSING_DRIVER",
    packageName: "@langchain/langgraph-checkpoint",
    message: expect.stringContaining(
      'CairnSaver (cairn-pipelines/langgraph) needs the "@langchain/langgraph-checkpoint" package',
    ),
  });
}, 60_000);
