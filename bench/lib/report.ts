/** Renders a run as Markdown: the machine, the method, and one table per scenario. */

import { createRequire } from "node:module";
import os from "node:os";
import { atRestBytesTable, atRestNote, atRestTimesTable } from "./at-rest-report.js";
import { dagSection } from "./dag.js";
import { durabilitySection } from "./durability.js";
import { ms, ratio, table } from "./markdown.js";
import { roundTripsSection, skippedScenarioLines } from "./object-report.js";
import { PEER_SAVERS } from "./peer.js";
import type { EndToEndRow, GrowthRow, Row, RunReport, StartupRow } from "./results.js";
import { saverSection } from "./saver-report.js";
import { WALKS_NOTE, walksTable } from "./walks-report.js";

/** The machine the numbers come from; without it they mean nothing to a reader. */
export function describeMachine(): Record<string, string> {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model.trim() ?? "unknown"} × ${cpus.length}`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  };
}

function ops(x: number): string {
  if (!Number.isFinite(x)) return "–";
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1);
}

/**
 * The cairn variant a LangGraph variant is set against: the one with the same durability. As
 * shipped, SqliteSaver commits at synchronous=NORMAL, so its row meets `cairn (synchronous=normal)`
 * where the table has one; `langgraph (synchronous=FULL)` meets cairn's default.
 */
const CAIRN_COUNTERPART: Record<string, readonly string[]> = {
  langgraph: ["cairn (synchronous=normal)", "cairn"],
  "langgraph (synchronous=FULL)": ["cairn"],
};

/** On a LangGraph row: its p50 over the p50 of the cairn row of the same durability (> 1: cairn is faster). */
function speedUp(rows: Row[], row: Row): string {
  for (const variant of CAIRN_COUNTERPART[row.variant] ?? []) {
    const cairn = rows.find((r) => r.store === row.store && r.case === row.case && r.variant === variant);
    if (cairn) return `${ratio(row.summary.p50Ms, cairn.summary.p50Ms)} (vs ${variant})`;
  }
  return "";
}

/** A scenario where every variant is compared with the raw floor of the same store and case. */
function versusRaw(rows: Row[]): string {
  const raw = (row: Row) =>
    rows.find((r) => r.store === row.store && r.case === row.case && r.variant === "raw");
  return table(
    [
      "store",
      "payload",
      "variant",
      "ops/s",
      "p50 ms",
      "p99 ms",
      "samples",
      "p50 / raw p50",
      "cairn speed-up (langgraph p50 / p50 of the cairn row of the same durability)",
    ],
    rows.map((row) => {
      const floor = raw(row);
      const s = row.summary;
      const versus = row.variant === "raw" || !floor ? "" : ratio(s.p50Ms, floor.summary.p50Ms);
      return [
        row.store,
        row.case,
        row.variant,
        ops(s.opsPerSec),
        ms(s.p50Ms),
        ms(s.p99Ms),
        String(s.samples),
        versus,
        speedUp(rows, row),
      ];
    }),
  );
}

const mb = (bytes: number | undefined) => (bytes === undefined ? "–" : `${(bytes / 1e6).toFixed(1)} MB`);
const seconds = (s: number | undefined) => (s === undefined ? "–" : `${s.toFixed(s >= 10 ? 1 : 2)} s`);

function growthTable(rows: GrowthRow[]): string {
  return table(
    [
      "store",
      "stages",
      "sum of outputs",
      "naive full snapshots",
      "cairn time",
      "cairn bytes",
      "cairn bytes / outputs",
      "LangGraph time",
      "LangGraph bytes",
      "LangGraph bytes / outputs",
      "cairn speed-up (LangGraph time / cairn time)",
    ],
    rows.map((r) => [
      r.store,
      String(r.stages),
      mb(r.outputBytes),
      mb(r.naiveBytes),
      seconds(r.cairnSeconds),
      mb(r.cairnBytes),
      ratio(r.cairnBytes, r.outputBytes),
      seconds(r.langgraphSeconds),
      mb(r.langgraphBytes),
      r.langgraphBytes === undefined ? "–" : ratio(r.langgraphBytes, r.outputBytes),
      r.langgraphSeconds === undefined ? "no saver" : ratio(r.langgraphSeconds, r.cairnSeconds),
    ]),
  );
}

/** The issue's target for resume on a grown run (issue 6), per store. */
const GROWN_RESUME_TARGET_MS = 50;

function grownResumeTable(rows: GrowthRow[]): string {
  return table(
    [
      "store",
      "stages",
      "outputs loaded",
      "cairn load p50 ms",
      "cairn load p99 ms",
      `cairn load ≤ ${GROWN_RESUME_TARGET_MS} ms`,
      "cairn load + decode all p50 ms",
      "cairn load + decode all p99 ms",
      "LangGraph p50 ms",
      "LangGraph p99 ms",
      "samples",
      "cairn speed-up (LangGraph p50 / cairn load + decode all p50)",
    ],
    rows.flatMap((r) => {
      if (!r.resume) return [];
      const { cairn, cairnDecoded, langgraph } = r.resume;
      const decoded = cairnDecoded ?? cairn;
      return [
        [
          r.store,
          String(r.stages),
          mb(r.outputBytes),
          ms(cairn.p50Ms),
          ms(cairn.p99Ms),
          cairn.p50Ms <= GROWN_RESUME_TARGET_MS ? "yes" : "**no**",
          ms(decoded.p50Ms),
          ms(decoded.p99Ms),
          langgraph ? ms(langgraph.p50Ms) : "–",
          langgraph ? ms(langgraph.p99Ms) : "–",
          String(cairn.samples),
          langgraph ? ratio(langgraph.p50Ms, decoded.p50Ms) : "no saver",
        ],
      ];
    }),
  );
}

/** Milliseconds with a sign: what checkpointing adds (negative when it is within the noise). */
const addedMs = (x: number) => (x < 0 ? `−${ms(-x)}` : `+${ms(x)}`);

function endToEndTable(rows: EndToEndRow[]): string {
  return table(
    [
      "store",
      "pipeline",
      "checkpoints per run",
      "off p50 ms",
      "off p99 ms",
      "on p50 ms",
      "on p99 ms",
      "runs per side",
      "overhead (on p50 / off p50)",
      "added ms (on p50 − off p50)",
    ],
    rows.map((r) => [
      r.store,
      `${r.pipeline} (${r.stages} stages)`,
      String(r.checkpointsPerRun),
      ms(r.off.p50Ms),
      ms(r.off.p99Ms),
      ms(r.on.p50Ms),
      ms(r.on.p99Ms),
      String(r.on.samples),
      ratio(r.on.p50Ms, r.off.p50Ms),
      addedMs(r.on.p50Ms - r.off.p50Ms),
    ]),
  );
}

/** Start-up targets (issue 10): at the largest store, p50 within this factor of the empty store's. */
const STARTUP_TARGET: Record<string, number> = {
  file: 3,
  sqlite: 1.5,
  postgres: 1.5,
  redis: 1.5,
  memory: 1.5,
};

function startupTable(rows: StartupRow[]): string {
  const sizes = [...new Set(rows.flatMap((r) => r.points.map((p) => p.others)))].sort((a, b) => a - b);
  return table(
    [
      "store",
      ...sizes.map((n) => `p50 ms, ${n.toLocaleString("en-US")} other runs`),
      "p99 ms at the largest",
      "largest / empty",
      "target",
      "fill s (all)",
    ],
    rows.map((r) => {
      const base = r.points[0]?.summary.p50Ms ?? Number.NaN;
      const last = r.points.at(-1);
      return [
        r.store,
        ...sizes.map((n) => {
          const p = r.points.find((x) => x.others === n);
          return p ? ms(p.summary.p50Ms) : "-";
        }),
        last ? ms(last.summary.p99Ms) : "-",
        last ? ratio(last.summary.p50Ms, base) : "-",
        `≤ ${STARTUP_TARGET[r.store] ?? 1.5}×`,
        r.points.reduce((sum, p) => sum + p.fillSeconds, 0).toFixed(1),
      ];
    }),
  );
}

function resumeTable(rows: Row[]): string {
  return table(
    [
      "store",
      "checkpoints in run",
      "variant",
      "ops/s",
      "p50 ms",
      "p99 ms",
      "samples",
      "t/t(10) (p50)",
      "fill s",
      "cairn speed-up (langgraph p50 / p50 of the cairn row of the same durability)",
    ],
    rows.map((row) => {
      const base = rows.find((r) => r.store === row.store && r.variant === row.variant && r.case === "10");
      const s = row.summary;
      const n = Number(row.case).toLocaleString("en-US");
      const versus = base && base !== row ? ratio(s.p50Ms, base.summary.p50Ms) : "";
      const fill = row.fillSeconds === undefined ? "" : row.fillSeconds.toFixed(1);
      return [
        row.store,
        n,
        row.variant,
        ops(s.opsPerSec),
        ms(s.p50Ms),
        ms(s.p99Ms),
        String(s.samples),
        versus,
        fill,
        speedUp(rows, row),
      ];
    }),
  );
}

/** The installed LangGraph packages, from their package.json files. */
const PEER_VERSIONS = (() => {
  const require = createRequire(import.meta.url);
  const names = [
    "@langchain/langgraph-checkpoint",
    "@langchain/langgraph-checkpoint-sqlite",
    "@langchain/langgraph-checkpoint-postgres",
  ];
  try {
    return names
      .map((n) => `${n}@${(require(`${n}/package.json`) as { version: string }).version}`)
      .join(", ");
  } catch {
    return names.join(", ");
  }
})();

/** The whole report as Markdown. */
export function renderMarkdown(report: RunReport): string {
  const all = report.stores.flatMap((s) => s.rows);
  const of = (scenario: Row["scenario"]) => all.filter((r) => r.scenario === scenario);
  const m = report.machine;
  const payloads = report.payloads
    .map(
      (p) =>
        `${p.label} = ${p.records.toLocaleString("en-US")} records, ${p.jsonBytes.toLocaleString("en-US")} bytes of JSON`,
    )
    .join("; ");
  const lines = [
    "# cairn benchmarks",
    "",
    `- Date: ${report.date} — ${report.profile} run, ${report.seconds.toFixed(0)} s in total`,
    `- Machine: ${m.cpu}, ${m.memory}, ${m.os}; Node ${m.node}`,
    `- Plans (warm-up, rounds × batch per variant): ${Object.entries(report.plans)
      .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
      .join("; ")}`,
    `- Payloads: ${payloads} (seeded meter readings)`,
    ...report.stores.map((s) =>
      s.skipped
        ? `- ${s.store}: **SKIPPED**, no rows: ${s.skipped}`
        : `- ${s.store}: ${s.server ? `${s.server}; ` : ""}${s.durability}; raw floor: ${s.rawFloor} (${s.seconds.toFixed(0)} s)`,
    ),
    ...skippedScenarioLines(report.stores),
    ...report.failures.map((f) => `- **FAILED**: ${f}`),
    `- Peer (variant \`langgraph\`): LangGraph.js checkpoint savers ${PEER_VERSIONS} — ${Object.entries(
      PEER_SAVERS,
    )
      .map(([store, saver]) => `${store}: ${saver}`)
      .join(
        "; ",
      )}. file and redis: no LangGraph rows (no LangGraph saver in scope for them). Variant \`cairn-saver\`: cairn's own LangGraph saver on every store but the object stores (see its section).`,
    "",
  ];
  const sections: [string, string, string][] = [
    [
      "Checkpoint write",
      "`createCheckpoint` with the payload as one stage's output, vs the same payload `JSON.stringify`-ed and written durably by the bare driver. Each round writes into a fresh run (so history stays at most one batch long, and the first write of a round also creates the run); each sample changes one number of the payload so its output hash is new and nothing is deduplicated. `langgraph` (memory, sqlite, postgres): the store's LangGraph saver, `put` of the next superstep with the payload as the one changed channel (`newVersions`), a fresh thread per round, same payloads, in the same rounds. `cairn-saver` (every store but the object stores): CairnSaver driven by the same code through the store's measured configuration; on sqlite `cairn-saver (synchronous=normal)` stands beside SqliteSaver as shipped.",
      versusRaw(of("write")),
    ],
    [
      "Latest-checkpoint read",
      "`loadLatestCheckpoint(pipelineId)` (finds the newest checkpoint, verifies the checksum and every output hash, decodes) vs reading the raw document back and `JSON.parse`. Data is in the OS page cache (file, sqlite) or the server's memory (postgres shared buffers, redis) for both. `langgraph`: `getTuple({ configurable: { thread_id } })` of a thread whose latest checkpoint holds the payload as a channel value, and every channel value read; `cairn-saver`: the same through CairnSaver (which parses a plain JSON value when it is first read, so the read is timed).",
      versusRaw(of("read")),
    ],
    [
      "Resume: loadLatestCheckpoint by run length",
      "Runs of a 10-stage pipeline repeated within one run: small state, at most 10 small outputs per checkpoint. Runs are filled as the Pipeline writes them (under the run's lease, every write fenced) without waiting for the disk (file `fsync: false`, SQLite `synchronous=OFF` on an adopted connection, PostgreSQL `synchronous_commit=off` on an adopted pool; same stored data; Redis through the measured configuration, since its persistence is the server's), then read through the store's default configuration: `loadLatestCheckpoint` and every output read; `fill s` is that fill time. `t/t(10)` is the p50 relative to the 10-checkpoint run. `langgraph` rows: the same runs as LangGraph threads (one channel per stage, filled through a saver on the same tables that does not wait for the disk), read with `getTuple({ configurable: { thread_id } })` through the default saver, every channel value read; `cairn-saver` rows: the same threads through CairnSaver, filled through the store's fast filler (as cairn's runs) and read through a CairnSaver on the measured configuration.",
      resumeTable(of("resume")),
    ],
  ];
  const trips = roundTripsSection(all);
  if (trips) sections.push(trips);
  const growth = report.stores.flatMap((s) => s.growth ?? []);
  if (growth.length > 0) {
    sections.push([
      "Growth: runs whose outputs accumulate",
      "Each stage adds a ~100 KB output (seeded meter readings, a different seed per stage) and is checkpointed with all outputs so far, through each store's measured (durable) configuration; each run is written once and timed end to end (checkpoint writes only, the stage work is not in it). cairn: `createCheckpoint` with every output so far, each output encoded once as the Pipeline does (`EncodedOutput`), so a checkpoint stores only its new output. LangGraph: one channel per stage, `put` with `newVersions` naming only the new channel. Sum of outputs = their JSON bytes, each counted once; naive full snapshots = what storing every output in every checkpoint would take (computed, not written). Bytes: file = sum of file sizes; sqlite = database file after close; postgres = `pg_total_relation_size` of the tables (TOAST compresses: cairn lz4, LangGraph's bytea pglz); memory and redis (cairn) = checkpoint bodies + stored outputs through the store API; MemorySaver = its serialized checkpoints + metadata.",
      growthTable(growth),
    ]);
  }
  if (growth.some((r) => r.resume)) {
    sections.push([
      "Resume on a grown run",
      "The 50-stage growth run above (each stage adds a ~100 KB output), resumed right after it is written: a fresh reader loads its newest checkpoint with every output, as a run resuming in a new process would. cairn load: `loadLatestCheckpoint(runId)` (finds the newest checkpoint, reads every output and verifies its checksum and every output hash; an output decodes when it is first read, so a resume decodes only the outputs its next stages read) on a new CheckpointManager; cairn load + decode all: the same, then every output read, which is what LangGraph's `getTuple` always does, so the speed-up is computed against it through the store's measured (durable) configuration. LangGraph: `getTuple({ configurable: { thread_id } })` and every channel value read, through a new default saver on the same tables (MemorySaver: the same instance, its memory is the process's). Nothing is cached in-process but what the store keeps (page cache, PostgreSQL shared buffers, the named memory store, Redis). Warm-up first, then one sample per side per round, interleaved. The target (issue 6) is ≤ 50 ms on every store.",
      grownResumeTable(growth),
    ]);
  }
  const saver = saverSection(report.stores);
  if (saver) sections.push(saver);
  const e2e = report.stores.flatMap((s) => (s.e2e ? [s.e2e] : []));
  if (e2e.length > 0) {
    sections.push([
      "End to end: the example pipeline",
      "`examples/co2e/pipeline.yaml` loaded as `cairn run` loads it (agents from `agents.js`: extract the shipped 2,139-row CSV, validate, transform, aggregate, load into SQLite, write a Markdown report), its database and report moved into the bench's temporary folder. `execute({ resume: false })` timed whole, a fresh run each time, with checkpointing off (no store) and on (through the store's measured configuration; server stores in the child's own namespace), off and on runs interleaved after a warm-up. With checkpointing on, a run also takes and releases the run's lease and writes a checkpoint after every stage plus one on completion (`checkpoints per run`). Both sides include the agents' own work, among it the load stage's fsync'ed SQLite commit, so the disk's noise is on both; the added ms (a difference of medians) can be within that noise.",
      endToEndTable(e2e),
    ]);
  }
  const startup = report.stores.flatMap((s) => (s.startup ? [s.startup] : []));
  if (startup.length > 0) {
    sections.push([
      "Start-up: execute() with many other runs in the store",
      "A two-stage pipeline with one unfinished run (stage b always fails, so the run stays unfinished): `execute()` is timed from the call until stage b's agent starts, which includes finding the newest unfinished run of the pipeline through the store's runs-by-name index (`listRuns`), taking the run's lease, loading and verifying the resume point, recording the resume and planning. One store namespace per size (folder, schema tables or key prefix) holds the pipeline's unfinished run, created first, and then 0, 10,000 or 100,000 other runs (half finished runs of the same pipeline, created after it, so they come first in the index; half runs of 50 other pipelines), filled through the fast filler as in the resume scenario. Then the sizes are measured in interleaved rounds, each through the store's measured configuration, so warm-up and machine noise fall on all of them alike. Target (issue 10): at 100,000 other runs ≤ 1.5 × the time at 0 on sqlite, postgres and redis, ≤ 3 × on file.",
      startupTable(startup),
    ]);
  }
  const walks = report.stores.flatMap((s) => (s.walks ? [s.walks] : []));
  if (walks.length > 0)
    sections.push(["Walks: validate and analyze by run length", WALKS_NOTE, walksTable(walks)]);
  const atRest = report.stores.flatMap((s) => (s.atRest ? [s.atRest] : []));
  if (atRest.length > 0) {
    sections.push([
      "At rest: compression and encryption",
      atRestNote(atRest),
      `${atRestBytesTable(atRest)}\n\n${atRestTimesTable(atRest)}`,
    ]);
  }
  const dag = report.stores.flatMap((s) => (s.dag ? [s.dag] : []));
  if (dag.length > 0) sections.push(dagSection(dag));
  const modes = report.stores.flatMap((s) => s.durabilityModes ?? []);
  if (modes.length > 0) sections.push(durabilitySection(modes));
  for (const [title, text, body] of sections) {
    lines.push(`## ${title}`, "", text, "", body, "");
  }
  lines.push(
    "Method: one child process per store; warm-up iterations first; compared variants run interleaved in rounds (order alternating, GC between batches); p50/p99 over all samples; ops/s = 1000 / mean latency, one operation at a time; `performance.now()`. Server stores talk to their server over TCP; each child writes only into its own namespace (PostgreSQL schema `cairn_bench_<pid>`, Redis key prefix `cairn-bench:<pid>:`, S3 bucket / Azure container `cairn-bench-<pid>`), removed at the end; a server that does not answer or cannot start skips its store's rows. s3 runs on Ceph RGW (`scripts/rgw.sh`), azure on azurite in memory (`scripts/azurite.mjs`).",
    "",
  );
  return lines.join("\n");
}
