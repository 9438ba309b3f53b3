/**
 * "Without it, no cost": importing cairn-pipelines loads nothing of `@opentelemetry/api`; the
 * first execution imports it once; without the package (or with `CAIRN_TELEMETRY=off`) runs work
 * as usual and the import is not tried again. Real child processes, whose module resolver
 * reports every request for the package (or cannot find it, as for a user without it).
 */
import { afterEach, expect, it } from "vitest";
import { loadOtel, otelNow, resetOtelForTests } from "../../src/telemetry/index.js";
import { runWithoutPackages } from "../support/missing-package.js";

const ROOT = JSON.stringify(new URL("../../src/index.ts", import.meta.url).href);
const PKG = "@opentelemetry/api";

/** Imports the root, says so, then runs a 2-stage checkpointed pipeline twice on the memory store. */
const SCRIPT = `const { Pipeline } = await import(${ROOT});
  console.log("imported");
  const pipeline = new Pipeline({
    name: "lazy", checkpointEnabled: true, checkpointStrategy: "memory",
    steps: [{ name: "a", agent: () => ({ a: 1 }) }, { name: "b", agent: () => ({ b: 2 }) }],
  });
  for (let i = 0; i < 2; i++) console.log((await pipeline.execute({ resume: false })).status);`;

/** Runs SCRIPT with the API refused (`missing`) or announced as "otel-api-loaded" on each load. */
async function runScript(missing: boolean, env: Record<string, string> = {}): Promise<string[]> {
  const stdout = await runWithoutPackages(SCRIPT, {
    ...(missing ? { missing: [PKG] } : { announce: { [PKG]: "otel-api-loaded" } }),
    env: { ...process.env, CAIRN_TELEMETRY: "", ...env },
  });
  return stdout.trim().split("\n");
}

afterEach(() => {
  resetOtelForTests();
  delete process.env.CAIRN_TELEMETRY;
});

it("importing cairn-pipelines loads no telemetry; the first execution loads the API once", async () => {
  expect(await runScript(false)).toEqual(["imported", "otel-api-loaded", "completed", "completed"]);
}, 60_000);

it("without @opentelemetry/api, pipelines run as usual", async () => {
  expect(await runScript(true)).toEqual(["imported", "completed", "completed"]);
}, 60_000);

it("CAIRN_TELEMETRY=off never loads the API", async () => {
  expect(await runScript(false, { CAIRN_TELEMETRY: "off" })).toEqual(["imported", "completed", "completed"]);
}, 60_000);

it("a failed import turns telemetry off for the process and is not tried again", async () => {
  resetOtelForTests();
  let attempts = 0;
  const missing = async () => {
    attempts++;
    throw Object.assign(new Error(`Cannot find package '${PKG}'`), { code: "ERR_MODULE_NOT_FOUND" });
  };
  expect(await loadOtel(missing)).toBeNull();
  expect(await loadOtel(missing)).toBeNull();
  expect(otelNow()).toBeNull();
  expect(attempts).toBe(1);
});
