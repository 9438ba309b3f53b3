/**
 * The console's runs page (`listRunsPage`, src/ui/api/runs.ts) on a large store: 100,000 runs in
 * 10 pipelines, each run an `extract` checkpoint, then a `pipeline_complete` one (70%), a failed
 * `load` (2%), or nothing more (paused). Timed, p50 and p99 over repeated requests: the first
 * page by id (it lists every run id), a name-filtered page (the runs-by-name index), a
 * status-filtered page (scans at most 500 runs), both filters, and `listPipelineIds` alone.
 * The store is filled by `putCheckpoint` directly (many at once, no fsync on sqlite); the timed
 * manager opens the store as a user does.
 *
 * With `--statistics`, the statistics page (`statistics`: a full pass over the store) is timed once too.
 *
 * Run: `node --import tsx bench/ui-runs.ts [--runs 100000] [--stores sqlite,postgres] [--samples 15] [--statistics]`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { computeChecksum } from "../src/core/formats.js";
import type { CheckpointRecord, StoredMetadata } from "../src/core/record.js";
import { FORMAT_VERSION } from "../src/core/types.js";
import { CheckpointManager } from "../src/index.js";
import { buildBody } from "../src/manager/build.js";
import { listRunsPage } from "../src/ui/api/runs.js";
import { statistics } from "../src/ui/api/statistics.js";
import { openSqlite, SQLITE_STORE_PRAGMAS } from "./lib/raw-floors.js";
import { dropPostgresSchema, POSTGRES_URL, probePostgres, withParams } from "./lib/servers.js";
import { summarize } from "./lib/stats.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "100000" },
    stores: { type: "string", default: "sqlite,postgres" },
    samples: { type: "string", default: "15" },
    statistics: { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
const SAMPLES = Number(values.samples);
const STAGES = ["extract", "load"];
const START = Date.UTC(2026, 0, 1);

/** A well-formed record: its body built and its checksum computed as cairn's own writer does. */
function record(
  runId: string,
  name: string,
  sequence: number,
  stage: string,
  at: number,
  status: "completed" | "failed",
  parent: StoredMetadata | undefined,
): CheckpointRecord {
  const completed = stage === "extract" ? ["extract"] : stage === "pipeline_complete" ? STAGES : ["extract"];
  const body = buildBody({
    stateText: JSON.stringify({ inputs: { n: sequence } }),
    completedStages: completed,
    pendingStages: STAGES.filter((s) => !completed.includes(s)),
    provenanceHashes: {},
    outputs: new Map(),
  });
  const metadata: StoredMetadata = {
    checkpoint_id: `${runId}_${stage}_${sequence}`,
    pipeline_id: runId,
    pipeline_name: name,
    stage_name: stage,
    stage_index: stage === "extract" ? 0 : 1,
    sequence,
    timestamp: new Date(at).toISOString(),
    status,
    checksum: "",
    data_size: Buffer.byteLength(body),
    error_message: status === "failed" ? "warehouse unreachable" : null,
    resume_count: 0,
    parent_checkpoint_id: parent?.checkpoint_id ?? null,
    parent_checksum: parent?.checksum ?? null,
    format_version: FORMAT_VERSION,
  };
  metadata.checksum = computeChecksum(metadata, body);
  return { metadata, body };
}

/** Writes run `i`: an extract checkpoint, then complete (70%), failed load (2%) or nothing. */
async function putRun(manager: CheckpointManager, i: number): Promise<void> {
  const store = await manager.getStore();
  const runId = `run-${String(i).padStart(6, "0")}`;
  const name = `p${i % 10}`;
  const at = START + i * 1000;
  const first = record(runId, name, 1, "extract", at, "completed", undefined);
  await store.putCheckpoint(first, []);
  const kind = i % 100;
  if (kind < 70)
    await store.putCheckpoint(
      record(runId, name, 2, "pipeline_complete", at + 500, "completed", first.metadata),
      [],
    );
  else if (kind < 72)
    await store.putCheckpoint(record(runId, name, 2, "load", at + 500, "failed", first.metadata), []);
}

async function fill(manager: CheckpointManager, concurrency: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < RUNS) {
      const i = next++;
      await putRun(manager, i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - started) / 1000;
}

interface Row {
  store: string;
  request: string;
  p50: number;
  p99: number;
  scanned: string;
}

async function measure(store: string, manager: CheckpointManager, storeHint: string): Promise<Row[]> {
  const ctx = { manager, storeHint };
  const cases: [string, () => Promise<{ scanned?: number }>][] = [
    ["first page by id (50 runs)", () => listRunsPage(ctx, { limit: 50 })],
    ["name-filtered page (index, 50 runs)", () => listRunsPage(ctx, { name: "p3", limit: 50 })],
    [
      "status-filtered page (failed, ≤ 500 scanned)",
      () => listRunsPage(ctx, { status: "failed", limit: 50 }),
    ],
    [
      "name + status (p3, failed, index)",
      () => listRunsPage(ctx, { name: "p3", status: "failed", limit: 50 }),
    ],
    [
      "listPipelineIds alone",
      async () => {
        await (await manager.getStore()).listPipelineIds();
        return {};
      },
    ],
  ];
  const rows: Row[] = [];
  for (const [request, run] of cases) {
    await run();
    await run();
    const samples: number[] = [];
    let scanned: number | undefined;
    for (let i = 0; i < SAMPLES; i++) {
      const t = performance.now();
      const out = await run();
      samples.push(performance.now() - t);
      scanned = out.scanned;
    }
    const s = summarize(samples);
    rows.push({
      store,
      request,
      p50: s.p50Ms,
      p99: s.p99Ms,
      scanned: scanned === undefined ? "" : String(scanned),
    });
    console.error(`  ${store}: ${request}: p50 ${s.p50Ms.toFixed(1)} ms`);
  }
  if (values.statistics) {
    const t = performance.now();
    await statistics(ctx);
    const ms = performance.now() - t;
    rows.push({
      store,
      request: "statistics page (once, every run read)",
      p50: ms,
      p99: ms,
      scanned: String(RUNS),
    });
    console.error(`  ${store}: statistics: ${ms.toFixed(0)} ms`);
  }
  return rows;
}

async function sqliteRows(): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), "cairn-bench-ui-"));
  try {
    const dbPath = join(dir, "cairn.db");
    // The filler adopts a connection without fsync per commit; the timed manager opens the file as a user does.
    const pragmas = SQLITE_STORE_PRAGMAS.map((p) => p.replace("synchronous = FULL", "synchronous = OFF"));
    const db = await openSqlite(dbPath, pragmas);
    const filler = new CheckpointManager({ strategy: "sqlite", config: { database: db } });
    const seconds = await fill(filler, 1);
    await filler.close();
    db.close();
    console.error(`sqlite: filled ${RUNS} runs in ${seconds.toFixed(0)} s`);
    const manager = new CheckpointManager({ store: `sqlite:${dbPath}` });
    try {
      return await measure("sqlite", manager, ` --store sqlite:${dbPath}`);
    } finally {
      await manager.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function postgresRows(): Promise<Row[]> {
  const available = await probePostgres(POSTGRES_URL);
  if (!available.available) {
    console.error(`postgres skipped: ${available.reason}`);
    return [];
  }
  const schema = `cairn_uibench_${process.pid}`;
  const url = withParams(POSTGRES_URL, { schema });
  try {
    const filler = new CheckpointManager({ store: url });
    const seconds = await fill(filler, 24);
    await filler.close();
    console.error(`postgres: filled ${RUNS} runs in ${seconds.toFixed(0)} s`);
    const manager = new CheckpointManager({ store: url });
    try {
      return await measure("postgres", manager, " --store postgres://…");
    } finally {
      await manager.close();
    }
  } finally {
    console.error(await dropPostgresSchema(POSTGRES_URL, schema));
  }
}

async function main(): Promise<void> {
  const stores = String(values.stores).split(",");
  const rows: Row[] = [];
  if (stores.includes("sqlite")) rows.push(...(await sqliteRows()));
  if (stores.includes("postgres")) rows.push(...(await postgresRows()));
  console.log(`Runs page with ${RUNS.toLocaleString("en-US")} runs (${SAMPLES} samples each)\n`);
  console.log("| store | request | p50 ms | p99 ms | runs summarized |");
  console.log("|---|---|---:|---:|---:|");
  for (const r of rows) {
    console.log(`| ${r.store} | ${r.request} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.scanned} |`);
  }
}

await main();
