/**
 * The CO2e example end to end: the pipeline of examples/co2e/pipeline.yaml, built from that file's
 * steps, run over the shipped data set. Every figure is checked against an independent computation
 * from the CSV and the factor file made here, not by calling the agents.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  type AgentContext,
  AggregateAgent,
  type AggregateOutput,
  ExtractAgent,
  LoadAgent,
  type LoadOutput,
  ReportAgent,
  type ReportOutput,
  TransformAgent,
  type TransformOutput,
  ValidateAgent,
  type ValidateOutput,
} from "../../examples/co2e/agents.js";
import {
  type Agent,
  type AgentObject,
  CheckpointManager,
  Pipeline,
  type PipelineOptions,
  StageFailedError,
  type StepDefinition,
} from "../../src/index.js";
import { runCairn } from "../support/cli.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = join(ROOT, "examples/co2e");
const CSV = join(EXAMPLE, "data/energy-use.csv");
const FACTORS = join(EXAMPLE, "data/emission-factors.json");

// ------------------------------------------------------------------------------------------------
// The expected figures, computed here from the CSV and the factor file.

interface Factor {
  id: string;
  source: string;
  country: string;
  unit: string;
  kg_co2e_per_unit: number;
  scope: number;
}
const factorFile = JSON.parse(readFileSync(FACTORS, "utf8")) as { factors: Factor[] };

/** Units each source may be reported in, with the factor unit and the multiplier to it. */
const UNITS: Record<string, Record<string, [string, number]>> = {
  electricity: { kWh: ["kWh", 1], MWh: ["kWh", 1000] },
  natural_gas: { kWh: ["kWh", 1], m3: ["m3", 1], therm: ["kWh", 29.3071] },
  diesel: { litres: ["litres", 1], US_gal: ["litres", 3.785411784] },
  petrol: { litres: ["litres", 1], US_gal: ["litres", 3.785411784] },
  lpg: { litres: ["litres", 1], US_gal: ["litres", 3.785411784] },
};

function factorFor(source: string, country: string, unit: string): Factor | undefined {
  const candidates = factorFile.factors.filter((f) => f.source === source && f.unit === unit);
  return (
    candidates.find((f) => f.country === country) ?? candidates.find((f) => f.country === "*") ?? undefined
  );
}

/** Splits one CSV line (no line breaks inside fields in this file). */
function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      const end = line.indexOf('",', i + 1) === -1 ? line.length - 1 : line.indexOf('",', i + 1);
      out.push(line.slice(i + 1, end).replaceAll('""', '"'));
      i = end + 2;
    } else {
      const comma = line.indexOf(",", i);
      out.push(line.slice(i, comma === -1 ? undefined : comma));
      if (comma === -1) break;
      i = comma + 1;
    }
    if (i > line.length) break;
  }
  return out;
}

interface Expected {
  read: number;
  valid: number;
  rejected: number;
  byReason: Record<string, number>;
  kgByRecord: Map<string, number>;
  totalT: number;
  bySourceT: Record<string, number>;
  byScopeT: Record<string, number>;
  sites: number;
  months: number;
}

function expectedFigures(): Expected {
  const lines = readFileSync(CSV, "utf8").trimEnd().split("\n");
  const header = splitCsvLine(lines[0] as string);
  expect(header).toEqual(["record_id", "site", "country", "period", "source", "quantity", "unit"]);
  const seen = new Set<string>();
  const byReason: Record<string, number> = {};
  const kgByRecord = new Map<string, number>();
  const bySource: Record<string, number> = {};
  const byScope: Record<string, number> = {};
  const sites = new Set<string>();
  const months = new Set<string>();
  let valid = 0;
  for (const line of lines.slice(1)) {
    const [id = "", site = "", country = "", period = "", source = "", quantity = "", unit = ""] =
      splitCsvLine(line);
    const duplicate = seen.has(id);
    seen.add(id);
    const conversion = UNITS[source]?.[unit];
    const reason = duplicate
      ? "duplicate_record_id"
      : site === ""
        ? "missing_site"
        : !/^\d{4}-(0[1-9]|1[0-2])$/.test(period)
          ? "invalid_period"
          : !UNITS[source]
            ? "unknown_source"
            : !conversion
              ? "unknown_unit"
              : !/^-?\d+(\.\d+)?$/.test(quantity)
                ? "invalid_quantity"
                : quantity.startsWith("-")
                  ? "negative_quantity"
                  : undefined;
    if (reason) {
      byReason[reason] = (byReason[reason] ?? 0) + 1;
      continue;
    }
    const [factorUnit, multiplier] = conversion as [string, number];
    const factor = factorFor(source, country, factorUnit);
    if (!factor) throw new Error(`no factor for ${source} in ${country}`);
    const kg = Number(quantity) * multiplier * factor.kg_co2e_per_unit;
    kgByRecord.set(id, kg);
    bySource[source] = (bySource[source] ?? 0) + kg;
    byScope[factor.scope] = (byScope[factor.scope] ?? 0) + kg;
    sites.add(site);
    months.add(period);
    valid++;
  }
  const tonnes = (kg: Record<string, number>) =>
    Object.fromEntries(Object.entries(kg).map(([k, v]) => [k, v / 1000]));
  return {
    read: lines.length - 1,
    valid,
    rejected: lines.length - 1 - valid,
    byReason,
    kgByRecord,
    totalT: [...kgByRecord.values()].reduce((a, b) => a + b, 0) / 1000,
    bySourceT: tonnes(bySource),
    byScopeT: tonnes(byScope),
    sites: sites.size,
    months: months.size,
  };
}

const expected = expectedFigures();

// ------------------------------------------------------------------------------------------------
// The pipeline, built from the steps of pipeline.yaml.

interface YamlStep {
  name: string;
  agent: string;
  inputs: Record<string, unknown>;
  retries?: number;
  retry_delay_ms?: number;
  timeout_ms?: number;
}
const definition = parseYaml(readFileSync(join(EXAMPLE, "pipeline.yaml"), "utf8")) as {
  name: string;
  agents: Record<string, string>;
  steps: YamlStep[];
};

const AGENT_CLASSES = {
  ExtractAgent,
  ValidateAgent,
  TransformAgent,
  AggregateAgent,
  LoadAgent,
  ReportAgent,
} as const;
type AgentName = keyof typeof AGENT_CLASSES;

/**
 * The YAML's steps with fresh agent instances (or the given replacements), its input paths
 * made absolute, and the database and report moved to `dir`.
 */
function stepsFromYaml(dir: string, replace: Partial<Record<AgentName, Agent>> = {}): StepDefinition[] {
  return definition.steps.map((s) => {
    const name = s.agent as AgentName;
    const inputs = Object.fromEntries(
      Object.entries(s.inputs).map(([key, value]) => {
        if (typeof value !== "string" || value.startsWith("$")) return [key, value];
        if (key === "database") return [key, join(dir, "co2e.db")];
        if (key === "report") return [key, join(dir, "co2e-report.md")];
        // Paths in pipeline.yaml are relative to its folder.
        return [key, join(EXAMPLE, value)];
      }),
    );
    return {
      name: s.name,
      agent: replace[name] ?? new AGENT_CLASSES[name](),
      inputs,
      ...(s.retries !== undefined ? { retries: s.retries } : {}),
      ...(s.retry_delay_ms !== undefined ? { retryDelayMs: s.retry_delay_ms } : {}),
      ...(s.timeout_ms !== undefined ? { timeoutMs: s.timeout_ms } : {}),
    };
  });
}

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "cairn-co2e-"));
  dirs.push(dir);
  return dir;
}

function pipeline(
  dir: string,
  store: Partial<PipelineOptions>,
  replace: Partial<Record<AgentName, Agent>> = {},
) {
  const p = new Pipeline({
    name: definition.name,
    checkpointEnabled: true,
    ...store,
    steps: stepsFromYaml(dir, replace),
  });
  closers.push(() => p.close());
  return p;
}

function memoryStore(): CheckpointManager {
  const manager = new CheckpointManager({ strategy: "memory" });
  closers.push(() => manager.close());
  return manager;
}

function query<T>(dbPath: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

function expectFigures(outputs: Record<string, unknown>) {
  const validate = outputs.validate as ValidateOutput;
  expect(validate.counts).toEqual({
    read: expected.read,
    valid: expected.valid,
    rejected: expected.rejected,
    by_reason: expected.byReason,
  });
  const aggregate = outputs.aggregate as AggregateOutput;
  expect(Math.abs(aggregate.total_t - expected.totalT)).toBeLessThan(0.005);
  expect(aggregate.row_count).toBe(expected.valid);
  expect(aggregate.by_site).toHaveLength(expected.sites);
  expect(aggregate.by_month).toHaveLength(expected.months);
  expect(aggregate.by_source.map((s) => s.source).sort()).toEqual(Object.keys(expected.bySourceT).sort());
  for (const s of aggregate.by_source)
    expect(Math.abs(s.t - (expected.bySourceT[s.source] ?? Number.NaN))).toBeLessThan(0.005);
  for (const s of aggregate.by_scope)
    expect(Math.abs(s.t - (expected.byScopeT[s.scope] ?? Number.NaN))).toBeLessThan(0.005);
}

describe("CO2e example", () => {
  it("ships the data set that generate.mjs produces", () => {
    const generated = execFileSync(process.execPath, [join(EXAMPLE, "data/generate.mjs"), "--stdout"], {
      encoding: "utf8",
    });
    expect(generated).toBe(readFileSync(CSV, "utf8"));
    expect(expected.read).toBeGreaterThanOrEqual(2000);
    expect(expected.read).toBeLessThanOrEqual(5000);
    // Every kind of bad row is present, in a small share.
    expect(Object.keys(expected.byReason).sort()).toEqual([
      "duplicate_record_id",
      "invalid_period",
      "invalid_quantity",
      "missing_site",
      "negative_quantity",
      "unknown_source",
      "unknown_unit",
    ]);
    expect(expected.rejected / expected.read).toBeLessThan(0.05);
  });

  it("names in pipeline.yaml the agent classes of agents.js", () => {
    for (const [name, ref] of Object.entries(definition.agents)) {
      expect(ref).toBe(`./agents.js:${name}`);
      expect(Object.keys(AGENT_CLASSES)).toContain(name);
      expect(new AGENT_CLASSES[name as AgentName]()).toMatchObject({ name, version: "1.0.0" });
    }
    expect(definition.steps.map((s) => s.name)).toEqual([
      "extract",
      "validate",
      "transform",
      "aggregate",
      "load",
      "report",
    ]);
  });

  it("computes the figures of an independent computation, loads them, reports them, and a second run does not duplicate the first", async () => {
    const dir = tempDir();
    const manager = memoryStore();
    const first = await pipeline(dir, { checkpointStore: manager }).execute();
    expect(first.status).toBe("completed");
    expectFigures(first.finalOutputs);

    // Row by row: every valid record, with its kg CO2e to the gram.
    const transform = first.finalOutputs.transform as TransformOutput;
    expect(transform.rows).toHaveLength(expected.valid);
    for (const row of transform.rows)
      expect(Math.abs(row.kg_co2e - (expected.kgByRecord.get(row.record_id) ?? Number.NaN))).toBeLessThan(
        0.001,
      );
    expect(transform.factors_used.map((f) => f.id).sort()).toEqual(
      factorFile.factors.map((f) => f.id).sort(),
    );

    // The database holds the run's rows and totals.
    const db = join(dir, "co2e.db");
    const load = first.finalOutputs.load as LoadOutput;
    expect(load).toMatchObject({ run_id: first.pipelineId, rows_written: expected.valid, replaced_rows: 0 });
    const [stored] = query<{ n: number; kg: number; ids: number }>(
      db,
      "SELECT count(*) AS n, sum(kg_co2e) AS kg, count(DISTINCT record_id) AS ids FROM co2e_emissions WHERE run_id = ?",
      first.pipelineId,
    );
    expect(stored?.n).toBe(expected.valid);
    expect(stored?.ids).toBe(expected.valid);
    expect(Math.abs((stored?.kg ?? 0) / 1000 - expected.totalT)).toBeLessThan(0.005);
    const [total] = query<{ tonnes: number }>(
      db,
      "SELECT tonnes FROM co2e_totals WHERE run_id = ? AND dimension = 'total'",
      first.pipelineId,
    );
    expect(Math.abs((total?.tonnes ?? 0) - expected.totalT)).toBeLessThan(0.005);

    // The report: totals, sites, sources, rejected rows, factors with their publications.
    const summary = first.finalOutputs.report as ReportOutput;
    expect(summary).toMatchObject({
      run_id: first.pipelineId,
      rows_read: expected.read,
      rows_valid: expected.valid,
      rows_rejected: expected.rejected,
    });
    const report = readFileSync(join(dir, "co2e-report.md"), "utf8");
    const oneDecimal = (t: number) =>
      t.toLocaleString("en-GB", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    expect(report).toContain(`| **Total** | **${oneDecimal(expected.totalT)}** |`);
    expect(report).toContain(`| 1 | ${summary.top_site?.site} |`);
    for (const code of Object.keys(expected.byReason)) expect(report).toContain(`| ${code} |`);
    for (const f of factorFile.factors) expect(report).toContain(f.id);
    expect(report).toContain("UK Government GHG Conversion Factors for Company Reporting 2024");

    // A second run into the same database adds its own rows and leaves the first run's alone.
    const second = await pipeline(dir, { checkpointStore: manager }).execute();
    expect(second.pipelineId).not.toBe(first.pipelineId);
    expect(second.skippedStages).toEqual([]);
    const perRun = query<{ run_id: string; n: number }>(
      db,
      "SELECT run_id, count(*) AS n FROM co2e_emissions GROUP BY run_id ORDER BY run_id",
    );
    expect(perRun).toEqual(
      [first.pipelineId, second.pipelineId].sort().map((run_id) => ({ run_id, n: expected.valid })),
    );
    expect(
      query(
        db,
        "SELECT run_id, record_id FROM co2e_emissions GROUP BY run_id, record_id HAVING count(*) > 1",
      ),
    ).toEqual([]);
    expect(query(db, "SELECT run_id FROM co2e_runs")).toHaveLength(2);
  });

  it("replaces, never duplicates, the rows of a load that committed and then crashed", async () => {
    const dir = tempDir();
    let crashes = 0;
    class CrashAfterCommit extends LoadAgent {
      override async process(inputs: Record<string, unknown>, ctx: AgentContext): Promise<LoadOutput> {
        const out = await super.process(inputs, ctx);
        if (crashes++ === 0) throw new Error("crashed after the commit, before the checkpoint");
        return out;
      }
    }
    const results = await pipeline(
      dir,
      { checkpointStore: memoryStore() },
      { LoadAgent: new CrashAfterCommit() },
    ).execute();
    // The YAML gives load 2 retries: the second attempt runs for the same run id.
    expect(results.stepsResults.load?.attempts).toBe(2);
    expect(results.finalOutputs.load).toMatchObject({
      rows_written: expected.valid,
      replaced_rows: expected.valid,
    });
    const [row] = query<{ n: number }>(
      join(dir, "co2e.db"),
      "SELECT count(*) AS n FROM co2e_emissions WHERE run_id = ?",
      results.pipelineId,
    );
    expect(row?.n).toBe(expected.valid);
  });

  it("runs from any working directory (its paths are relative to pipeline.yaml) and says where the report and database went", async () => {
    const dir = tempDir();
    const result = await runCairn(
      ["run", join(EXAMPLE, "pipeline.yaml"), "--store", `file:${join(dir, "store")}`],
      {
        cwd: dir,
      },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Output of report:");
    expect(result.stdout).toMatch(new RegExp(`report: +${join(ROOT, "examples/out/co2e-report.md")}\n`));
    expect(result.stdout).toMatch(new RegExp(`database: +${join(ROOT, "examples/out/co2e.db")}\n`));
    expect(existsSync(join(dir, "examples"))).toBe(false);
  });

  it("resumes after a failure at aggregate and skips extract, validate and transform", async () => {
    const dir = tempDir();
    const store = { checkpointStrategy: "file", checkpointConfig: { base_path: join(dir, "checkpoints") } };
    const calls: string[] = [];
    const counted = (failAggregateOnce: boolean): Partial<Record<AgentName, Agent>> => {
      let failed = false;
      const wrap = (name: AgentName, agent: AgentObject): AgentObject => ({
        name,
        version: "1.0.0",
        process: (inputs, ctx) => {
          calls.push(name);
          if (failAggregateOnce && name === "AggregateAgent" && !failed) {
            failed = true;
            throw new Error("aggregate fell over");
          }
          return agent.process(inputs, ctx);
        },
      });
      return Object.fromEntries(
        (Object.keys(AGENT_CLASSES) as AgentName[]).map((name) => [
          name,
          wrap(name, new AGENT_CLASSES[name]()),
        ]),
      );
    };

    const error = await pipeline(dir, store, counted(true))
      .execute()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageFailedError);
    expect(error).toMatchObject({ stageName: "aggregate" });
    expect(calls).toEqual(["ExtractAgent", "ValidateAgent", "TransformAgent", "AggregateAgent"]);
    expect(existsSync(join(dir, "co2e.db"))).toBe(false);

    calls.length = 0;
    const resumed = await pipeline(dir, store, counted(false)).execute();
    expect(resumed.status).toBe("completed");
    expect(resumed.pipelineId).toBe((error as StageFailedError).pipelineId);
    expect(resumed.resumedFrom).toBe((error as StageFailedError).checkpointId);
    expect(resumed.skippedStages).toEqual(["extract", "validate", "transform"]);
    expect(calls).toEqual(["AggregateAgent", "LoadAgent", "ReportAgent"]);
    expectFigures(resumed.finalOutputs);
    const [row] = query<{ n: number }>(
      join(dir, "co2e.db"),
      "SELECT count(*) AS n FROM co2e_emissions WHERE run_id = ?",
      resumed.pipelineId,
    );
    expect(row?.n).toBe(expected.valid);
  });

  it("waits CAIRN_EXAMPLE_SLOW_MS before returning, and stops waiting when the stage is aborted", async () => {
    const before = process.env.CAIRN_EXAMPLE_SLOW_MS;
    process.env.CAIRN_EXAMPLE_SLOW_MS = "60000";
    try {
      const controller = new AbortController();
      const ctx: AgentContext = { pipelineId: "r", idempotencyKey: "r:aggregate", signal: controller.signal };
      const pending = new AggregateAgent().process({ rows: [] }, ctx);
      controller.abort(new Error("stopped"));
      // The wait itself is aborted; were it not cut short, the test would time out.
      await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    } finally {
      if (before === undefined) delete process.env.CAIRN_EXAMPLE_SLOW_MS;
      else process.env.CAIRN_EXAMPLE_SLOW_MS = before;
    }
  });
});
