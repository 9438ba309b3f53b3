/**
 * `npm run bench`: measures cairn's checkpoint write, latest-checkpoint read and resume against
 * the raw floor of each store and against LangGraph's checkpoint saver where the store has one
 * (with cairn's own LangGraph saver, CairnSaver, beside it on every store but the object stores),
 * the time and bytes of runs whose outputs grow and the resume of such a run, the example
 * pipeline end to end with checkpointing off and on, and what compression and encryption at rest
 * cost and save. The parent spawns one child process per
 * store, so one store's heap, JIT state and open handles never colour another's numbers,
 * collects each child's JSON from stdout, and renders Markdown. Benchmarks are never part of
 * `npm test`.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { measureAtRest } from "./lib/at-rest.js";
import { measureDag } from "./lib/dag.js";
import { measureDurability } from "./lib/durability.js";
import { measureEndToEnd } from "./lib/e2e.js";
import { measureGrowth } from "./lib/growth.js";
import { type BenchOptions, parseOptions, type ScenarioName } from "./lib/options.js";
import { standardPayloads } from "./lib/payload.js";
import { measureReplication, renderReplication } from "./lib/replication.js";
import { describeMachine, renderMarkdown } from "./lib/report.js";
import type { RunReport, StoreResult } from "./lib/results.js";
import { measureResume } from "./lib/resume.js";
import { measureReads, measureWrites, type ScenarioContext } from "./lib/scenarios.js";
import { measureStartup } from "./lib/startup.js";
import { BENCH_STORES, benchStore } from "./lib/stores.js";
import { measureWalks } from "./lib/walks.js";
import { measureWorkers } from "./lib/workers.js";
import { renderWorkers } from "./lib/workers-report.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = join(ROOT, "bench", "results");

/** Child: measures one store in `dir` and prints a {@link StoreResult} as JSON on stdout. */
async function runChild(options: BenchOptions): Promise<void> {
  const store = benchStore(options.store ?? "");
  if (!options.dir) throw new Error("--child needs --dir");
  const started = performance.now();
  // stdout carries the JSON result; progress goes to stderr, which the parent passes through.
  const log = (message: string) => console.error(`[${store.name}] ${message}`);
  const result: StoreResult = {
    store: store.name,
    durability: store.durability,
    rawFloor: store.rawFloor,
    rows: [],
    seconds: 0,
  };
  const availability = await store.connect?.();
  if (availability?.available === false) {
    // An unreachable server skips this store's rows; the parent reports it, the bench goes on.
    log(`skipped: ${availability.reason}`);
    result.skipped = availability.reason;
  } else {
    if (availability) {
      result.durability = availability.durability;
      result.server = availability.server;
      log(`${availability.server}; namespace of pid ${process.pid}`);
    }
    await mkdir(options.dir, { recursive: true });
    const ctx: ScenarioContext = {
      store,
      dir: options.dir,
      profile: options.profile,
      payloads: standardPayloads(),
      log,
    };
    try {
      const wanted = (name: ScenarioName) => {
        if (options.scenario !== undefined && options.scenario !== name) return false;
        const skip = store.skips?.[name];
        if (skip === undefined) return true;
        log(`${name}: not run on ${store.name}: ${skip}`);
        result.skippedScenarios = { ...result.skippedScenarios, [name]: skip };
        return false;
      };
      if (wanted("write")) result.rows.push(...(await measureWrites(ctx)));
      if (wanted("read")) result.rows.push(...(await measureReads(ctx)));
      if (wanted("resume")) result.rows.push(...(await measureResume(ctx)));
      if (wanted("growth")) result.growth = await measureGrowth(ctx);
      if (wanted("e2e")) result.e2e = await measureEndToEnd(ctx);
      if (wanted("startup")) result.startup = await measureStartup(ctx);
      if (wanted("walks")) result.walks = await measureWalks(ctx);
      if (wanted("atrest")) result.atRest = await measureAtRest(ctx);
      // Seconds of simulated I/O per run: only when asked for, never part of the full run.
      if (options.scenario === "dag" && wanted("dag")) result.dag = await measureDag(ctx);
      if (options.scenario === "durability" && wanted("durability"))
        result.durabilityModes = await measureDurability(ctx);
    } finally {
      await rm(options.dir, { recursive: true, force: true });
      // Logged, not thrown: a failed cleanup must not hide a scenario's error or void the numbers.
      await store
        .cleanup?.(process.pid)
        .then(log, (error: unknown) =>
          log(
            `cleanup failed, remove the namespace of pid ${process.pid} by hand: ${(error as Error).message}`,
          ),
        );
    }
  }
  result.seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** A failed child, with its pid so the parent can remove what it left on a server. */
class ChildFailed extends Error {
  constructor(
    message: string,
    readonly pid: number | undefined,
  ) {
    super(message);
  }
}

/** Runs one child and parses its stdout; rejects with its exit status when it fails. */
function spawnChild(options: BenchOptions, store: string, dir: string): Promise<StoreResult> {
  const args = ["--expose-gc", "--import", "tsx", "bench/run.ts", "--child", "--store", store, "--dir", dir];
  if (options.profile.name === "quick") args.push("--quick");
  if (options.scenario) args.push("--scenario", options.scenario);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    const fail = (message: string) => reject(new ChildFailed(message, child.pid));
    child.on("error", (error) => fail(error.message));
    child.on("close", (code, signal) => {
      if (code !== 0) return fail(`${store} child exited with ${signal ?? `code ${code}`}`);
      try {
        resolve(JSON.parse(stdout) as StoreResult);
      } catch (error) {
        fail(`${store} child printed no result: ${(error as Error).message}`);
      }
    });
  });
}

/** Parent: runs the children one after another (never in parallel: they would share cores and disk). */
async function runParent(options: BenchOptions): Promise<number> {
  const started = performance.now();
  const stores = options.store ? [benchStore(options.store)] : BENCH_STORES;
  const payloads = standardPayloads();
  const root = await mkdtemp(join(os.tmpdir(), "cairn-bench-"));
  const results: StoreResult[] = [];
  const failures: string[] = [];
  const skipped: string[] = [];
  try {
    for (const store of stores) {
      console.error(`[bench] ${store.name} (${options.profile.name})`);
      try {
        const result = await spawnChild(options, store.name, join(root, store.name));
        if (result.skipped) skipped.push(store.name);
        results.push(result);
      } catch (error) {
        failures.push((error as Error).message);
        console.error(`[bench] ${(error as Error).message}`);
        const pid = error instanceof ChildFailed ? error.pid : undefined;
        // A child that died mid-run may have left its schema or keys on the server.
        if (store.cleanup && pid !== undefined) {
          await store.cleanup(pid).then(
            (done) => console.error(`[bench] ${store.name}: ${done}`),
            (cleanupError: unknown) =>
              console.error(`[bench] ${store.name}: cleanup failed: ${(cleanupError as Error).message}`),
          );
        }
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  const { small, large, resume, resumeSizes, growthStages, grownResumeStages, grownResume, e2e } =
    options.profile;
  const report: RunReport = {
    date: new Date().toISOString(),
    profile: options.profile.name,
    machine: describeMachine(),
    plans: {
      "10 KB": small,
      "1 MB": large,
      resume: { ...resume, sizes: resumeSizes },
      growth: { stages: growthStages, runs: 1 },
      "grown resume": { ...grownResume, stages: grownResumeStages },
      "end to end": e2e,
    },
    payloads: payloads.map((p) => ({ label: p.label, records: p.records.length, jsonBytes: p.jsonBytes })),
    stores: results,
    failures,
    seconds: (performance.now() - started) / 1000,
  };
  const markdown = renderMarkdown(report);
  process.stdout.write(markdown);
  await mkdir(RESULTS, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, "-");
  await writeFile(join(RESULTS, `${stamp}-${report.profile}.json`), `${JSON.stringify(report, null, 2)}\n`);
  // latest.md is committed: only a complete full run of every store may replace it. A skipped
  // store (server unreachable) is not a failure, but its rows are missing, so it is not complete.
  const complete = options.profile.name === "full" && !options.store && !options.scenario;
  if (complete && failures.length === 0 && skipped.length === 0) {
    await writeFile(join(RESULTS, "latest.md"), markdown);
    console.error("[bench] wrote bench/results/latest.md");
  } else if (skipped.length > 0) {
    console.error(
      `[bench] skipped ${skipped.join(", ")} (server unreachable): bench/results/latest.md left unchanged`,
    );
  } else {
    console.error("[bench] partial or failed run: bench/results/latest.md left unchanged");
  }
  return failures.length === 0 ? 0 : 1;
}

/** The replication scenario: pairs of stores, in this process (the writer is a child of its own). */
async function runReplication(options: BenchOptions): Promise<number> {
  const result = await measureReplication(options.profile.name, (m) => console.error(`[replication] ${m}`));
  const markdown = renderReplication(result);
  process.stdout.write(markdown);
  await mkdir(RESULTS, { recursive: true });
  const stamp = result.date.replace(/[:.]/g, "-");
  await writeFile(
    join(RESULTS, `${stamp}-replication-${options.profile.name}.json`),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  return 0;
}

/** The workers scenario: worker processes on both engines, from this process (see bench/lib/workers.ts). */
async function runWorkers(options: BenchOptions): Promise<number> {
  const result = await measureWorkers(options.profile.name, (m) => console.error(`[workers] ${m}`));
  const markdown = renderWorkers(result);
  process.stdout.write(markdown);
  await mkdir(RESULTS, { recursive: true });
  const stamp = result.date.replace(/[:.]/g, "-");
  await writeFile(
    join(RESULTS, `${stamp}-workers-${options.profile.name}.json`),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  // Like latest.md: only a full run replaces the committed report.
  if (options.profile.name === "full") {
    await writeFile(join(RESULTS, "workers.md"), markdown);
    console.error("[bench] wrote bench/results/workers.md");
  }
  return 0;
}

const options = parseOptions(process.argv.slice(2));
try {
  if (options.scenario === "replication" && !options.child) process.exitCode = await runReplication(options);
  else if (options.scenario === "workers" && !options.child) process.exitCode = await runWorkers(options);
  else if (options.child) await runChild(options);
  else process.exitCode = await runParent(options);
} catch (error) {
  // A bad --store or a failed child setup: one line, not a stack trace, and a failing exit code.
  console.error(`[bench] ${(error as Error).message}`);
  process.exitCode = 1;
}
