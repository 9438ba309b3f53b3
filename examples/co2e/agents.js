/**
 * The agents of the CO2e example: extract → validate → transform → aggregate → load → report.
 *
 * Plain ESM JavaScript with JSDoc types, so `cairn run examples/co2e/pipeline.yaml` loads them
 * with no build step (agents.d.ts carries the same types for TypeScript callers). Every output
 * is plain data (objects, arrays, strings, numbers), which is what a checkpoint can hold.
 * Paths in inputs are relative to the working directory.
 *
 * Set CAIRN_EXAMPLE_SLOW_MS to make each agent wait that long before it returns, so that a run
 * can be killed half-way and resumed.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** The folder of pipeline.yaml (this file sits beside it). */
const PIPELINE_FOLDER = dirname(fileURLToPath(import.meta.url));

/**
 * A path from pipeline.yaml's inputs, resolved against the pipeline file's folder (as cairn
 * resolves the agent modules), so the example runs the same from any working directory.
 * @param {string} path
 */
export function fromPipelineFolder(path) {
  return resolve(PIPELINE_FOLDER, path);
}

const VERSION = "1.0.0";

/**
 * What the agents use of the stage context cairn passes them.
 * @typedef {object} AgentContext
 * @property {string} pipelineId The run id: stable across retries and resumes.
 * @property {string} idempotencyKey Stable for this stage of this run.
 * @property {AbortSignal} [signal] Aborted when the stage times out or the run is stopped.
 */

/**
 * One CSV record, with its quantity parsed.
 * @typedef {object} EnergyRow
 * @property {number} line Line of the record in the CSV file (the header is line 1).
 * @property {string} record_id
 * @property {string} site
 * @property {string} country
 * @property {string} period Month, YYYY-MM.
 * @property {string} source electricity, natural_gas, diesel, petrol or lpg.
 * @property {number | null} quantity Null when the CSV field is not a number.
 * @property {string} [quantity_raw] The CSV field, when it is not a number.
 * @property {string} unit
 */

/**
 * An emission factor, as in emission-factors.json.
 * @typedef {object} EmissionFactor
 * @property {string} id
 * @property {string} source
 * @property {string} country An ISO country code, or "*" for any country.
 * @property {string} unit
 * @property {number} kg_co2e_per_unit
 * @property {number} scope
 * @property {string} publication
 * @property {string} publisher
 * @property {number} year
 * @property {string} table
 * @property {string} activity
 * @property {string} confidence
 * @property {string} [note]
 */

/**
 * @typedef {object} UnitConversion
 * @property {string[]} sources
 * @property {string} from
 * @property {string} to
 * @property {number} multiply_by
 * @property {string} basis
 */

/**
 * @typedef {object} FactorTable
 * @property {EmissionFactor[]} factors
 * @property {UnitConversion[]} unit_conversions
 */

/**
 * @typedef {object} ExtractOutput
 * @property {string} source The CSV path, as given.
 * @property {string} sha256 SHA-256 of the file's bytes.
 * @property {string[]} columns
 * @property {number} row_count
 * @property {EnergyRow[]} rows
 */

/**
 * @typedef {object} RejectedRow
 * @property {number} line
 * @property {string} record_id
 * @property {string} code A short reason code, e.g. negative_quantity.
 * @property {string} reason
 * @property {EnergyRow} row
 */

/**
 * @typedef {object} ValidateOutput
 * @property {EnergyRow[]} valid
 * @property {RejectedRow[]} rejected
 * @property {{ read: number, valid: number, rejected: number, by_reason: Record<string, number> }} counts
 */

/**
 * @typedef {object} EmissionRow
 * @property {string} record_id
 * @property {string} site
 * @property {string} country
 * @property {string} period
 * @property {string} source
 * @property {number} scope
 * @property {number} quantity As reported.
 * @property {string} unit As reported.
 * @property {number} activity The quantity in the factor's unit.
 * @property {string} activity_unit
 * @property {string} factor_id
 * @property {number} kg_co2e Rounded to the gram.
 */

/**
 * @typedef {EmissionFactor & { rows: number }} FactorUse
 * @typedef {UnitConversion & { rows: number }} ConversionUse
 */

/**
 * @typedef {object} TransformOutput
 * @property {EmissionRow[]} rows
 * @property {number} row_count
 * @property {number} kg_co2e_total
 * @property {FactorUse[]} factors_used
 * @property {ConversionUse[]} conversions_used
 * @property {{ path: string, sha256: string }} factors_file
 */

/**
 * @typedef {{ rows: number, t: number }} Total
 * @typedef {object} AggregateOutput
 * @property {number} row_count
 * @property {number} total_t Tonnes CO2e, rounded to the kilogram.
 * @property {(Total & { site: string, country: string })[]} by_site Largest first.
 * @property {(Total & { source: string, scope: number })[]} by_source Largest first.
 * @property {(Total & { period: string })[]} by_month In time order.
 * @property {(Total & { scope: number })[]} by_scope
 */

/**
 * @typedef {object} LoadOutput
 * @property {string} database
 * @property {string} run_id
 * @property {number} rows_written
 * @property {number} totals_written
 * @property {number} replaced_rows Rows of this run already in the database, replaced (a re-run after a crash).
 */

/**
 * @typedef {object} ReportOutput
 * @property {string} report Absolute path of the report written.
 * @property {string} database Absolute path of the SQLite database the load stage wrote.
 * @property {string} run_id
 * @property {number} rows_read
 * @property {number} rows_valid
 * @property {number} rows_rejected
 * @property {number} total_t
 * @property {Record<string, number>} by_scope_t
 * @property {Record<string, number>} by_source_t
 * @property {{ site: string, t: number } | null} top_site
 */

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Waits CAIRN_EXAMPLE_SLOW_MS milliseconds (default 0), giving up when the stage is aborted.
 * @param {AgentContext | undefined} ctx
 */
async function slowDown(ctx) {
  const ms = Number(process.env.CAIRN_EXAMPLE_SLOW_MS ?? 0);
  if (!Number.isFinite(ms) || ms <= 0) return;
  ctx?.signal?.throwIfAborted();
  await sleep(ms, undefined, ctx?.signal ? { signal: ctx.signal } : {});
}

/**
 * @param {Record<string, unknown>} inputs
 * @param {string} key
 * @param {string} agent
 * @returns {string}
 */
function stringInput(inputs, key, agent) {
  const value = inputs[key];
  if (typeof value !== "string" || value.length === 0)
    throw new TypeError(`${agent}: input ${key} must be a non-empty string (a path)`);
  return value;
}

/**
 * @template T
 * @param {Record<string, unknown>} inputs
 * @param {string} key
 * @param {string} agent
 * @returns {T[]}
 */
function arrayInput(inputs, key, agent) {
  const value = inputs[key];
  if (!Array.isArray(value)) throw new TypeError(`${agent}: input ${key} must be a list of rows`);
  return value;
}

/**
 * @param {Record<string, unknown>} inputs
 * @param {string} key
 * @param {string} agent
 * @returns {Record<string, any>}
 */
function objectInput(inputs, key, agent) {
  const value = inputs[key];
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new TypeError(`${agent}: input ${key} must be an object`);
  return /** @type {Record<string, any>} */ (value);
}

/** @param {string | Uint8Array} data */
const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/**
 * Rounds to a number of decimals, half away from zero.
 * @param {number} value
 * @param {number} decimals
 */
export function round(value, decimals) {
  const f = 10 ** decimals;
  return (Math.sign(value) * Math.round(Math.abs(value) * f)) / f;
}

/**
 * Writes a file atomically: a temporary file, then a rename.
 * @param {string} path
 * @param {string} text
 */
async function writeAtomic(path, text) {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/**
 * Parses CSV text (RFC 4180: quoted fields, doubled quotes, CRLF or LF).
 * @param {string} text
 * @returns {{ line: number, fields: string[] }[]} Records with the line they start on.
 */
export function parseCsv(text) {
  /** @type {{ line: number, fields: string[] }[]} */
  const records = [];
  /** @type {string[]} */
  let fields = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === "")) records.push({ line: start, fields });
    fields = [];
    field = "";
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === "\n") line++;
        field += c;
      }
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      fields.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRecord();
      line++;
      start = line;
    } else field += c;
  }
  if (quoted) throw new Error(`CSV: a quoted field opened on line ${start} is never closed`);
  if (field !== "" || fields.length > 0) endRecord();
  return records;
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;
const COLUMNS = ["record_id", "site", "country", "period", "source", "quantity", "unit"];

/**
 * Reads and checks an emission factor file.
 * @param {string} path
 * @returns {Promise<{ table: FactorTable, sha256: string }>}
 */
export async function loadFactors(path) {
  const text = await readFile(fromPipelineFolder(path), "utf8");
  const table = JSON.parse(text);
  if (!Array.isArray(table?.factors)) throw new Error(`${path}: no "factors" list`);
  for (const f of table.factors) {
    if (typeof f.id !== "string" || typeof f.source !== "string" || typeof f.unit !== "string")
      throw new Error(`${path}: every factor needs an id, a source and a unit`);
    if (typeof f.kg_co2e_per_unit !== "number" || !(f.kg_co2e_per_unit >= 0))
      throw new Error(`${path}: factor ${f.id} has no valid kg_co2e_per_unit`);
  }
  table.unit_conversions ??= [];
  return { table, sha256: sha256(text) };
}

/**
 * The factor for a row, and the multiplier that turns its quantity into the factor's unit.
 * A factor in the row's own unit wins over a conversion; a country's own factor over "*".
 * @param {FactorTable} table
 * @param {{ source: string, country: string, unit: string }} row
 * @returns {{ factor: EmissionFactor, multiplier: number, conversion: UnitConversion | undefined } | undefined}
 */
export function resolveFactor(table, row) {
  const candidates = table.factors
    .filter((f) => f.source === row.source && (f.country === row.country || f.country === "*"))
    .sort((a, b) => Number(b.country === row.country) - Number(a.country === row.country));
  const direct = candidates.find((f) => f.unit === row.unit);
  if (direct) return { factor: direct, multiplier: 1, conversion: undefined };
  for (const conversion of table.unit_conversions) {
    if (conversion.from !== row.unit || !conversion.sources.includes(row.source)) continue;
    const factor = candidates.find((f) => f.unit === conversion.to);
    if (factor) return { factor, multiplier: conversion.multiply_by, conversion };
  }
  return undefined;
}

/**
 * Units the factor table can handle for each source.
 * @param {FactorTable} table
 * @returns {Map<string, Set<string>>}
 */
function unitsBySource(table) {
  /** @type {Map<string, Set<string>>} */
  const units = new Map();
  for (const f of table.factors) {
    const set = units.get(f.source) ?? new Set();
    set.add(f.unit);
    units.set(f.source, set);
  }
  for (const c of table.unit_conversions) for (const source of c.sources) units.get(source)?.add(c.from);
  return units;
}

// ---------------------------------------------------------------------------------------------
// Agents

/** Reads the CSV at `inputs.source` and parses its rows. */
export class ExtractAgent {
  name = "ExtractAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `source`: path of the CSV file.
   * @param {AgentContext} [ctx]
   * @returns {Promise<ExtractOutput>}
   */
  async process(inputs, ctx) {
    const source = stringInput(inputs, "source", this.name);
    const bytes = await readFile(fromPipelineFolder(source));
    const [header, ...records] = parseCsv(bytes.toString("utf8"));
    const columns = (header?.fields ?? []).map((c) => c.trim());
    const missing = COLUMNS.filter((c) => !columns.includes(c));
    if (missing.length > 0) throw new Error(`${source}: missing column(s) ${missing.join(", ")}`);
    const at = Object.fromEntries(COLUMNS.map((c) => [c, columns.indexOf(c)]));
    /** @param {string[]} fields @param {string} column */
    const get = (fields, column) => (fields[at[column] ?? -1] ?? "").trim();
    /** @type {EnergyRow[]} */
    const rows = records.map(({ line, fields }) => {
      const text = get(fields, "quantity");
      const quantity = NUMBER.test(text) ? Number(text) : null;
      return {
        line,
        record_id: get(fields, "record_id"),
        site: get(fields, "site"),
        country: get(fields, "country"),
        period: get(fields, "period"),
        source: get(fields, "source"),
        quantity,
        ...(quantity === null ? { quantity_raw: text } : {}),
        unit: get(fields, "unit"),
      };
    });
    await slowDown(ctx);
    return { source, sha256: sha256(bytes), columns, row_count: rows.length, rows };
  }
}

/** Splits rows into valid and rejected ones, with the first reason each rejected row fails. */
export class ValidateAgent {
  name = "ValidateAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `rows`: the extracted rows; `factors`: path of the factor file.
   * @param {AgentContext} [ctx]
   * @returns {Promise<ValidateOutput>}
   */
  async process(inputs, ctx) {
    /** @type {EnergyRow[]} */
    const rows = arrayInput(inputs, "rows", this.name);
    const { table } = await loadFactors(stringInput(inputs, "factors", this.name));
    const units = unitsBySource(table);
    /** @type {Map<string, number>} */
    const seen = new Map();
    /** @type {EnergyRow[]} */
    const valid = [];
    /** @type {RejectedRow[]} */
    const rejected = [];
    /** @type {Record<string, number>} */
    const byReason = {};

    /** @param {EnergyRow} row @returns {[string, string] | undefined} */
    const check = (row) => {
      if (!row.record_id) return ["missing_record_id", "record_id is empty"];
      const first = seen.get(row.record_id);
      if (first !== undefined)
        return ["duplicate_record_id", `record_id ${row.record_id} already appears on line ${first}`];
      if (!row.site) return ["missing_site", "site is empty"];
      if (!row.country) return ["missing_country", "country is empty"];
      if (!PERIOD.test(row.period)) return ["invalid_period", `period "${row.period}" is not YYYY-MM`];
      const known = units.get(row.source);
      if (!known) return ["unknown_source", `source "${row.source}" has no emission factor`];
      if (!known.has(row.unit))
        return [
          "unknown_unit",
          `unit "${row.unit}" is not a unit of ${row.source} (expected ${[...known].join(", ")})`,
        ];
      if (!resolveFactor(table, row))
        return ["no_factor", `no ${row.source} factor in ${row.unit} for country ${row.country}`];
      if (row.quantity === null || !Number.isFinite(row.quantity))
        return ["invalid_quantity", `quantity "${row.quantity_raw ?? ""}" is not a number`];
      if (row.quantity < 0) return ["negative_quantity", `quantity ${row.quantity} is negative`];
      return undefined;
    };

    for (const row of rows) {
      const problem = check(row);
      if (row.record_id && !seen.has(row.record_id)) seen.set(row.record_id, row.line);
      if (problem) {
        const [code, reason] = problem;
        rejected.push({ line: row.line, record_id: row.record_id, code, reason, row });
        byReason[code] = (byReason[code] ?? 0) + 1;
      } else valid.push(row);
    }
    await slowDown(ctx);
    return {
      valid,
      rejected,
      counts: { read: rows.length, valid: valid.length, rejected: rejected.length, by_reason: byReason },
    };
  }
}

/** Converts units and computes kg CO2e per row with the factors of `inputs.factors`. */
export class TransformAgent {
  name = "TransformAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `rows`: valid rows; `factors`: path of the factor file.
   * @param {AgentContext} [ctx]
   * @returns {Promise<TransformOutput>}
   */
  async process(inputs, ctx) {
    /** @type {EnergyRow[]} */
    const rows = arrayInput(inputs, "rows", this.name);
    const factorsPath = stringInput(inputs, "factors", this.name);
    const { table, sha256: factorsHash } = await loadFactors(factorsPath);
    /** @type {Map<string, FactorUse>} */
    const factorsUsed = new Map();
    /** @type {Map<UnitConversion, ConversionUse>} */
    const conversionsUsed = new Map();
    let totalKg = 0;
    /** @type {EmissionRow[]} */
    const out = rows.map((row) => {
      const resolved = resolveFactor(table, row);
      if (!resolved || row.quantity === null)
        throw new Error(`record ${row.record_id} (line ${row.line}) cannot be converted; validate it first`);
      const { factor, multiplier, conversion } = resolved;
      const activity = row.quantity * multiplier;
      const kg = activity * factor.kg_co2e_per_unit;
      totalKg += kg;
      const use = factorsUsed.get(factor.id) ?? { ...factor, rows: 0 };
      use.rows++;
      factorsUsed.set(factor.id, use);
      if (conversion) {
        const c = conversionsUsed.get(conversion) ?? { ...conversion, rows: 0 };
        c.rows++;
        conversionsUsed.set(conversion, c);
      }
      return {
        record_id: row.record_id,
        site: row.site,
        country: row.country,
        period: row.period,
        source: row.source,
        scope: factor.scope,
        quantity: row.quantity,
        unit: row.unit,
        activity: round(activity, 6),
        activity_unit: factor.unit,
        factor_id: factor.id,
        kg_co2e: round(kg, 3),
      };
    });
    await slowDown(ctx);
    return {
      rows: out,
      row_count: out.length,
      kg_co2e_total: round(totalKg, 3),
      factors_used: [...factorsUsed.values()],
      conversions_used: [...conversionsUsed.values()],
      factors_file: { path: factorsPath, sha256: factorsHash },
    };
  }
}

/** Totals per site, source, month and scope, in tonnes CO2e rounded to the kilogram. */
export class AggregateAgent {
  name = "AggregateAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `rows`: the transformed rows.
   * @param {AgentContext} [ctx]
   * @returns {Promise<AggregateOutput>}
   */
  async process(inputs, ctx) {
    /** @type {EmissionRow[]} */
    const rows = arrayInput(inputs, "rows", this.name);
    /**
     * @template {Record<string, string | number>} K
     * @param {(row: EmissionRow) => K} keyOf
     * @returns {(K & Total)[]}
     */
    const group = (keyOf) => {
      /** @type {Map<string, { key: K, rows: number, kg: number }>} */
      const groups = new Map();
      for (const row of rows) {
        const key = keyOf(row);
        const id = JSON.stringify(key);
        const g = groups.get(id) ?? { key, rows: 0, kg: 0 };
        g.rows++;
        g.kg += row.kg_co2e;
        groups.set(id, g);
      }
      return [...groups.values()].map((g) => ({ ...g.key, rows: g.rows, t: round(g.kg / 1000, 3) }));
    };
    const largestFirst = (/** @type {Total} */ a, /** @type {Total} */ b) => b.t - a.t;
    const totalKg = rows.reduce((sum, row) => sum + row.kg_co2e, 0);
    const result = {
      row_count: rows.length,
      total_t: round(totalKg / 1000, 3),
      by_site: group((r) => ({ site: r.site, country: r.country })).sort(
        (a, b) => largestFirst(a, b) || a.site.localeCompare(b.site),
      ),
      by_source: group((r) => ({ source: r.source, scope: r.scope })).sort(largestFirst),
      by_month: group((r) => ({ period: r.period })).sort((a, b) => a.period.localeCompare(b.period)),
      by_scope: group((r) => ({ scope: r.scope })).sort((a, b) => a.scope - b.scope),
    };
    await slowDown(ctx);
    return result;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS co2e_runs (
  run_id TEXT PRIMARY KEY,
  idempotency_key TEXT NOT NULL,
  loaded_at TEXT NOT NULL,
  row_count INTEGER NOT NULL,
  total_t REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS co2e_emissions (
  run_id TEXT NOT NULL,
  record_id TEXT NOT NULL,
  site TEXT NOT NULL,
  country TEXT NOT NULL,
  period TEXT NOT NULL,
  source TEXT NOT NULL,
  scope INTEGER NOT NULL,
  quantity REAL NOT NULL,
  unit TEXT NOT NULL,
  activity REAL NOT NULL,
  activity_unit TEXT NOT NULL,
  factor_id TEXT NOT NULL,
  kg_co2e REAL NOT NULL,
  PRIMARY KEY (run_id, record_id)
);
CREATE TABLE IF NOT EXISTS co2e_totals (
  run_id TEXT NOT NULL,
  dimension TEXT NOT NULL,
  key TEXT NOT NULL,
  row_count INTEGER NOT NULL,
  tonnes REAL NOT NULL,
  PRIMARY KEY (run_id, dimension, key)
);
`;

/**
 * Writes the rows and totals of a run into SQLite in one transaction. Idempotent per run: the
 * run's earlier rows, if any (a re-run after a crash between the commit and the checkpoint),
 * are deleted first, so rows are replaced, never duplicated.
 */
export class LoadAgent {
  name = "LoadAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `rows`: transformed rows; `totals`: the aggregate output; `database`: path.
   * @param {AgentContext} ctx
   * @returns {Promise<LoadOutput>}
   */
  async process(inputs, ctx) {
    /** @type {EmissionRow[]} */
    const rows = arrayInput(inputs, "rows", this.name);
    const totals = /** @type {AggregateOutput} */ (objectInput(inputs, "totals", this.name));
    const database = stringInput(inputs, "database", this.name);
    if (!ctx?.pipelineId) throw new TypeError(`${this.name}: needs the stage context (a run id)`);
    /** @type {typeof import("better-sqlite3")} */
    let Database;
    try {
      Database = (await import("better-sqlite3")).default;
    } catch (error) {
      throw new Error(
        `${this.name}: this example writes SQLite through better-sqlite3; install it (npm install better-sqlite3): ${/** @type {Error} */ (error).message}`,
      );
    }
    await mkdir(dirname(fromPipelineFolder(database)), { recursive: true });
    const db = new Database(fromPipelineFolder(database));
    try {
      db.pragma("busy_timeout = 5000");
      db.exec(SCHEMA);
      const runId = ctx.pipelineId;
      const insertRow = db.prepare(
        `INSERT INTO co2e_emissions (run_id, record_id, site, country, period, source, scope, quantity,
           unit, activity, activity_unit, factor_id, kg_co2e)
         VALUES (@run_id, @record_id, @site, @country, @period, @source, @scope, @quantity,
           @unit, @activity, @activity_unit, @factor_id, @kg_co2e)`,
      );
      const insertTotal = db.prepare(
        "INSERT INTO co2e_totals (run_id, dimension, key, row_count, tonnes) VALUES (?, ?, ?, ?, ?)",
      );
      /** @type {[string, string, number, number][]} */
      const totalRows = [
        ["total", "all", totals.row_count, totals.total_t],
        ...totals.by_scope.map(
          (s) => /** @type {[string, string, number, number]} */ (["scope", String(s.scope), s.rows, s.t]),
        ),
        ...totals.by_source.map(
          (s) => /** @type {[string, string, number, number]} */ (["source", s.source, s.rows, s.t]),
        ),
        ...totals.by_site.map(
          (s) => /** @type {[string, string, number, number]} */ (["site", s.site, s.rows, s.t]),
        ),
        ...totals.by_month.map(
          (m) => /** @type {[string, string, number, number]} */ (["month", m.period, m.rows, m.t]),
        ),
      ];
      const write = db.transaction(() => {
        const replaced = db.prepare("DELETE FROM co2e_emissions WHERE run_id = ?").run(runId).changes;
        db.prepare("DELETE FROM co2e_totals WHERE run_id = ?").run(runId);
        db.prepare("DELETE FROM co2e_runs WHERE run_id = ?").run(runId);
        db.prepare(
          "INSERT INTO co2e_runs (run_id, idempotency_key, loaded_at, row_count, total_t) VALUES (?, ?, ?, ?, ?)",
        ).run(runId, ctx.idempotencyKey ?? runId, new Date().toISOString(), rows.length, totals.total_t);
        for (const row of rows) insertRow.run({ run_id: runId, ...row });
        for (const t of totalRows) insertTotal.run(runId, ...t);
        return replaced;
      });
      const replaced = write();
      await slowDown(ctx);
      return {
        database,
        run_id: runId,
        rows_written: rows.length,
        totals_written: totalRows.length,
        replaced_rows: replaced,
      };
    } finally {
      db.close();
    }
  }
}

/**
 * @param {number} value
 * @param {number} [decimals]
 */
const fmt = (value, decimals = 1) =>
  value.toLocaleString("en-GB", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });

/** @param {string} text */
const cell = (text) => String(text).replaceAll("|", "\\|").replaceAll("\n", " ");

/** Writes a Markdown report to `inputs.report` and returns a summary of the run. */
export class ReportAgent {
  name = "ReportAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `totals`, `validation` (the validate counts),
   *   `rejected`, `factors` (factors used), `conversions` (optional), `load` (optional), `report`: path.
   * @param {AgentContext} [ctx]
   * @returns {Promise<ReportOutput>}
   */
  async process(inputs, ctx) {
    const totals = /** @type {AggregateOutput} */ (objectInput(inputs, "totals", this.name));
    const counts = /** @type {ValidateOutput["counts"]} */ (objectInput(inputs, "validation", this.name));
    /** @type {RejectedRow[]} */
    const rejected = arrayInput(inputs, "rejected", this.name);
    /** @type {FactorUse[]} */
    const factors = arrayInput(inputs, "factors", this.name);
    /** @type {ConversionUse[]} */
    const conversions = Array.isArray(inputs.conversions) ? inputs.conversions : [];
    const load = /** @type {LoadOutput | undefined} */ (
      inputs.load && typeof inputs.load === "object" ? inputs.load : undefined
    );
    const report = stringInput(inputs, "report", this.name);
    const runId = ctx?.pipelineId ?? "unknown";
    const share = (/** @type {number} */ t) =>
      totals.total_t > 0 ? `${fmt((100 * t) / totals.total_t)}%` : "-";
    const scopeT = (/** @type {number} */ scope) => totals.by_scope.find((s) => s.scope === scope)?.t ?? 0;

    const md = [];
    md.push("# CO2e report", "");
    md.push(`Run \`${runId}\` of the cairn CO2e example pipeline.`, "");
    md.push("## Totals", "");
    md.push("| | tonnes CO2e |", "| --- | ---: |");
    md.push(`| **Total** | **${fmt(totals.total_t)}** |`);
    md.push(`| Scope 1 (fuels burnt on site and in vehicles) | ${fmt(scopeT(1))} |`);
    md.push(`| Scope 2 (purchased electricity, location-based) | ${fmt(scopeT(2))} |`, "");
    md.push(
      `Rows read: ${fmt(counts.read, 0)}; valid: ${fmt(counts.valid, 0)}; rejected: ${fmt(counts.rejected, 0)}. ` +
        `Sites: ${totals.by_site.length}; months: ${totals.by_month.length}` +
        (totals.by_month.length > 0
          ? ` (${totals.by_month[0]?.period} to ${totals.by_month[totals.by_month.length - 1]?.period}).`
          : "."),
      "",
    );

    md.push(
      "## Top sites",
      "",
      "| # | Site | Country | Rows | tonnes CO2e | Share |",
      "| ---: | --- | --- | ---: | ---: | ---: |",
    );
    totals.by_site.slice(0, 10).forEach((s, i) => {
      md.push(`| ${i + 1} | ${cell(s.site)} | ${s.country} | ${s.rows} | ${fmt(s.t)} | ${share(s.t)} |`);
    });
    md.push("");

    md.push(
      "## By source",
      "",
      "| Source | Scope | Rows | tonnes CO2e | Share |",
      "| --- | ---: | ---: | ---: | ---: |",
    );
    for (const s of totals.by_source)
      md.push(`| ${s.source} | ${s.scope} | ${s.rows} | ${fmt(s.t)} | ${share(s.t)} |`);
    md.push("");

    md.push("## By month", "", "| Month | Rows | tonnes CO2e |", "| --- | ---: | ---: |");
    for (const m of totals.by_month) md.push(`| ${m.period} | ${m.rows} | ${fmt(m.t)} |`);
    md.push("");

    md.push("## Rejected rows", "");
    if (rejected.length === 0) md.push("None.", "");
    else {
      md.push("| Reason | Rows |", "| --- | ---: |");
      for (const [code, n] of Object.entries(counts.by_reason).sort((a, b) => b[1] - a[1]))
        md.push(`| ${code} | ${n} |`);
      md.push("", "| Line | record_id | Reason |", "| ---: | --- | --- |");
      for (const r of rejected.slice(0, 200))
        md.push(`| ${r.line} | ${cell(r.record_id)} | ${cell(r.reason)} |`);
      if (rejected.length > 200) md.push(`| | | … and ${rejected.length - 200} more |`);
      md.push("");
    }

    md.push("## Method", "");
    md.push(
      "kg CO2e = quantity × unit conversion × emission factor, per row. Electricity is Scope 2, " +
        "location-based, without transmission and distribution losses; fuels are Scope 1 combustion, " +
        "without well-to-tank emissions. One factor set is applied to every period and, for fuels, to " +
        "every country; real reporting would use each year's (and country's) factors.",
      "",
    );
    md.push("## Emission factors used", "");
    md.push("| Factor | Source | Country | kg CO2e | per | Rows | Publication | Table | Confidence |");
    md.push("| --- | --- | --- | ---: | --- | ---: | --- | --- | --- |");
    for (const f of factors) {
      md.push(
        `| ${f.id} | ${f.source} | ${f.country === "*" ? "any" : f.country} | ${f.kg_co2e_per_unit} | ${f.unit} | ${f.rows} | ` +
          `${cell(f.publisher)}, ${cell(f.publication)} ${f.year} | ${cell(f.table)} | ${f.confidence} |`,
      );
    }
    const notes = factors.filter((f) => f.note);
    if (notes.length > 0) {
      md.push("");
      for (const f of notes) md.push(`- ${f.id}: ${f.note}`);
    }
    if (conversions.length > 0) {
      md.push("", "Unit conversions:", "");
      for (const c of conversions)
        md.push(
          `- ${c.from} → ${c.to} (${c.sources.join(", ")}): × ${c.multiply_by}, ${c.rows} rows. ${c.basis}`,
        );
    }
    md.push("");
    if (load) {
      md.push("## Load", "");
      md.push(
        `${load.rows_written} rows and ${load.totals_written} totals written to \`${load.database}\` under run_id \`${load.run_id}\`` +
          (load.replaced_rows > 0
            ? ` (replacing ${load.replaced_rows} rows of an interrupted attempt).`
            : "."),
        "",
      );
    }
    await writeAtomic(fromPipelineFolder(report), md.join("\n"));
    await slowDown(ctx);
    const top = totals.by_site[0];
    return {
      // Where the files went, as absolute paths: cairn run prints them at the end of the run.
      report: fromPipelineFolder(report),
      database: fromPipelineFolder(load.database),
      run_id: runId,
      rows_read: counts.read,
      rows_valid: counts.valid,
      rows_rejected: counts.rejected,
      total_t: totals.total_t,
      by_scope_t: Object.fromEntries(totals.by_scope.map((s) => [`scope_${s.scope}`, s.t])),
      by_source_t: Object.fromEntries(totals.by_source.map((s) => [s.source, s.t])),
      top_site: top ? { site: top.site, t: top.t } : null,
    };
  }
}
