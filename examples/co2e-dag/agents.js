/**
 * The agents of the CO2e DAG example: the CO2e example's extract and validate, then one branch
 * per country (transform, aggregate) running side by side, joined by a report over the countries.
 *
 * The shared agents come from ../co2e/agents.js and resolve their paths against that folder
 * (where the data set lives); the agents here resolve theirs against this folder. Like the CO2e
 * agents, each waits CAIRN_EXAMPLE_SLOW_MS milliseconds (default 0) before it returns: a
 * simulated I/O wait (a remote API, a warehouse query), which is what lets independent branches
 * overlap; the computation itself is a few milliseconds.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { AggregateAgent, ExtractAgent, round, TransformAgent, ValidateAgent } from "../co2e/agents.js";

export { AggregateAgent, ExtractAgent, ValidateAgent };

const VERSION = "1.0.0";
const FOLDER = dirname(fileURLToPath(import.meta.url));

/**
 * @typedef {import("../co2e/agents.js").AgentContext} AgentContext
 * @typedef {import("../co2e/agents.js").EnergyRow} EnergyRow
 * @typedef {import("../co2e/agents.js").AggregateOutput} AggregateOutput
 * @typedef {import("../co2e/agents.js").TransformOutput} TransformOutput
 * @typedef {import("../co2e/agents.js").ValidateOutput} ValidateOutput
 */

/**
 * @typedef {object} CountryReportOutput
 * @property {string} report Absolute path of the report written.
 * @property {string} run_id
 * @property {number} rows_valid
 * @property {number} rows_rejected
 * @property {number} total_t Tonnes CO2e over every country, rounded to the kilogram.
 * @property {Record<string, number>} by_country_t
 * @property {Record<string, number>} by_scope_t
 */

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

/** The CO2e transform, over the valid rows of one country (`inputs.country`, an ISO code). */
export class CountryTransformAgent {
  name = "CountryTransformAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `rows`: valid rows; `country`; `factors`: path of the
   *   factor file, relative to examples/co2e.
   * @param {AgentContext} [ctx]
   * @returns {Promise<TransformOutput & { country: string }>}
   */
  async process(inputs, ctx) {
    const country = inputs.country;
    if (typeof country !== "string" || country.length === 0)
      throw new TypeError(`${this.name}: input country must be a non-empty string`);
    if (!Array.isArray(inputs.rows)) throw new TypeError(`${this.name}: input rows must be an array`);
    /** @type {EnergyRow[]} */
    const rows = inputs.rows.filter((/** @type {EnergyRow} */ r) => r.country === country);
    const out = await new TransformAgent().process({ rows, factors: inputs.factors }, ctx);
    return { ...out, country };
  }
}

/** Joins the per-country totals into one Markdown report, written to `inputs.report`. */
export class CountryReportAgent {
  name = "CountryReportAgent";
  version = VERSION;

  /**
   * @param {Record<string, unknown>} inputs `countries`: aggregate output by country code;
   *   `validation`: the validate counts; `report`: path, relative to this folder.
   * @param {AgentContext} [ctx]
   * @returns {Promise<CountryReportOutput>}
   */
  async process(inputs, ctx) {
    const countries = /** @type {Record<string, AggregateOutput>} */ (inputs.countries);
    const counts = /** @type {ValidateOutput["counts"]} */ (inputs.validation);
    if (typeof inputs.report !== "string") throw new TypeError(`${this.name}: input report must be a path`);
    if (!countries || typeof countries !== "object" || !counts)
      throw new TypeError(`${this.name}: inputs countries and validation are required`);
    const codes = Object.keys(countries).sort();
    /** @type {Record<string, number>} */
    const byCountry = {};
    /** @type {Record<string, number>} */
    const byScope = {};
    let total = 0;
    for (const code of codes) {
      const totals = /** @type {AggregateOutput} */ (countries[code]);
      byCountry[code] = totals.total_t;
      total += totals.total_t;
      for (const s of totals.by_scope)
        byScope[String(s.scope)] = round((byScope[String(s.scope)] ?? 0) + s.t, 3);
    }
    const totalT = round(total, 3);
    const fmt = (/** @type {number} */ t) =>
      t.toLocaleString("en-GB", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    const runId = ctx?.pipelineId ?? "unknown";
    const md = [
      "# CO2e report by country",
      "",
      `Run \`${runId}\` of the cairn CO2e DAG example: one branch per country, run side by side.`,
      "",
      "| Country | Rows | tonnes CO2e | Share |",
      "| --- | ---: | ---: | ---: |",
      ...codes.map((code) => {
        const t = countries[code];
        const share = totalT > 0 ? `${fmt((100 * (t?.total_t ?? 0)) / totalT)}%` : "-";
        return `| ${code} | ${t?.row_count ?? 0} | ${fmt(t?.total_t ?? 0)} | ${share} |`;
      }),
      `| **Total** | **${codes.reduce((n, c) => n + (countries[c]?.row_count ?? 0), 0)}** | **${fmt(totalT)}** | |`,
      "",
      `Rows read: ${counts.read}; valid: ${counts.valid}; rejected: ${counts.rejected}.`,
      "",
    ];
    const path = resolve(FOLDER, inputs.report);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, `${md.join("\n")}\n`);
    await rename(tmp, path);
    await slowDown(ctx);
    return {
      report: path,
      run_id: runId,
      rows_valid: counts.valid,
      rows_rejected: counts.rejected,
      total_t: totalT,
      by_country_t: byCountry,
      by_scope_t: byScope,
    };
  }
}
