/** Renders a run as Markdown: the machine, the method, and one table per scenario. */
import os from "node:os";
import type { Row, RunReport } from "./results.js";

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

/** Milliseconds with about three significant digits. */
function ms(x: number): string {
  if (!Number.isFinite(x)) return "–";
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

function ops(x: number): string {
  if (!Number.isFinite(x)) return "–";
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1);
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return "–";
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i < 3 ? "---" : "---:"));
  return [header, align, ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** A scenario where every variant is compared with the raw floor of the same store and case. */
function versusRaw(rows: Row[]): string {
  const raw = (row: Row) =>
    rows.find((r) => r.store === row.store && r.case === row.case && r.variant === "raw");
  return table(
    ["store", "payload", "variant", "ops/s", "p50 ms", "p99 ms", "samples", "cairn/raw (p50)"],
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
      ];
    }),
  );
}

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
    ...report.failures.map((f) => `- **FAILED**: ${f}`),
    "",
  ];
  const sections: [string, string, string][] = [
    [
      "Checkpoint write",
      "`createCheckpoint` with the payload as one stage's output, vs the same payload `JSON.stringify`-ed and written durably by the bare driver. Each round writes into a fresh run (so history stays at most one batch long, and the first write of a round also creates the run); each sample changes one number of the payload so its output hash is new and nothing is deduplicated.",
      versusRaw(of("write")),
    ],
    [
      "Latest-checkpoint read",
      "`loadLatestCheckpoint(pipelineId)` (finds the newest checkpoint, verifies the checksum and every output hash, decodes) vs reading the raw document back and `JSON.parse`. Data is in the OS page cache (file, sqlite) or the server's memory (postgres shared buffers, redis) for both.",
      versusRaw(of("read")),
    ],
    [
      "Resume: loadLatestCheckpoint by run length",
      "Runs of a 10-stage pipeline repeated within one run: small state, at most 10 small outputs per checkpoint. Runs are filled without waiting for the disk (file `fsync: false`, SQLite `synchronous=OFF` on an adopted connection, PostgreSQL `synchronous_commit=off` on an adopted pool; same stored data; Redis through the measured configuration, since its persistence is the server's), then read through the store's default configuration; `fill s` is that fill time. `t/t(10)` is the p50 relative to the 10-checkpoint run.",
      resumeTable(of("resume")),
    ],
  ];
  for (const [title, text, body] of sections) {
    lines.push(`## ${title}`, "", text, "", body, "");
  }
  lines.push(
    "Method: one child process per store; warm-up iterations first; compared variants run interleaved in rounds (order alternating, GC between batches); p50/p99 over all samples; ops/s = 1000 / mean latency, one operation at a time; `performance.now()`. Server stores talk to their server over TCP; each child writes only into its own namespace (PostgreSQL schema `cairn_bench_<pid>`, Redis key prefix `cairn-bench:<pid>:`), removed at the end; a server that does not answer skips its store's rows.",
    "",
  );
  return lines.join("\n");
}
