/**
 * Generates energy-use.csv: a synthetic, deterministic data set of monthly energy and fuel use
 * at 30 sites (UK and US) over 2023-2024, with a small share of deliberately bad rows that the
 * pipeline's validate stage must reject. Same seed, same bytes: the file is committed, and
 * `node generate.mjs --check` verifies that it still matches this script.
 *
 *   node examples/co2e/data/generate.mjs            # writes energy-use.csv next to this file
 *   node examples/co2e/data/generate.mjs --stdout   # prints it instead
 *   node examples/co2e/data/generate.mjs --check    # exits 1 when the committed file differs
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SEED = 20240601;

/** mulberry32: a small, well-known 32-bit PRNG; good enough for synthetic data. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Site profiles: monthly base use per source, in the unit the site reports in. `winter` is the
 * extra share of gas use in the coldest month (heating), `trend` a yearly drift (efficiency work).
 */
const PROFILES = {
  office: [
    ["electricity", "kWh", 22_000],
    ["natural_gas", "kWh", 18_000, { winter: 1.6 }],
  ],
  store: [
    ["electricity", "kWh", 16_000],
    ["natural_gas", "kWh", 9_000, { winter: 1.4 }],
  ],
  warehouse: [
    ["electricity", "kWh", 70_000],
    ["natural_gas", "kWh", 40_000, { winter: 1.5 }],
    ["diesel", "litres", 9_000],
    ["lpg", "litres", 1_400],
  ],
  plant: [
    ["electricity", "MWh", 520],
    ["natural_gas", "m3", 48_000, { winter: 0.5 }],
    ["diesel", "litres", 700],
  ],
  fleet: [
    ["diesel", "litres", 6_500],
    ["petrol", "litres", 3_200],
  ],
  us_office: [
    ["electricity", "kWh", 30_000],
    ["natural_gas", "therm", 1_800, { winter: 1.8 }],
  ],
  us_warehouse: [
    ["electricity", "kWh", 85_000],
    ["natural_gas", "therm", 3_500, { winter: 1.5 }],
    ["diesel", "US_gal", 2_600],
    ["lpg", "US_gal", 420],
    ["petrol", "US_gal", 600],
  ],
};

/** [site, country, profile, size multiplier] */
const SITES = [
  ["London HQ", "GB", "office", 2.4],
  ["Manchester Office", "GB", "office", 1.1],
  ["Edinburgh Office", "GB", "office", 0.8],
  ["Cardiff Office", "GB", "office", 0.6],
  ["Belfast Office", "GB", "office", 0.5],
  ["Bristol Store", "GB", "store", 1.0],
  ["Leeds Store", "GB", "store", 1.2],
  ["Glasgow Store", "GB", "store", 0.9],
  ["Nottingham Store", "GB", "store", 0.8],
  ["Brighton Store", "GB", "store", 0.7],
  ["Norwich Store", "GB", "store", 0.6],
  ["York Store", "GB", "store", 0.6],
  ["Daventry Distribution Centre", "GB", "warehouse", 1.6],
  ["Doncaster Distribution Centre", "GB", "warehouse", 1.2],
  ["Avonmouth Warehouse", "GB", "warehouse", 0.8],
  ["Trafford Park, Manchester", "GB", "warehouse", 1.0],
  ["Sheffield Plant", "GB", "plant", 1.3],
  ["Port Talbot Plant", "GB", "plant", 1.9],
  ["Teesside Plant", "GB", "plant", 1.0],
  ["Southampton Plant", "GB", "plant", 0.7],
  ["UK Sales Fleet", "GB", "fleet", 1.0],
  ["UK Service Fleet", "GB", "fleet", 1.5],
  ["Chicago Office", "US", "us_office", 1.0],
  ["Boston Office", "US", "us_office", 0.7],
  ["Austin Office", "US", "us_office", 0.6],
  ["Columbus Warehouse", "US", "us_warehouse", 1.2],
  ["Reno Warehouse", "US", "us_warehouse", 0.8],
  ["Atlanta Warehouse", "US", "us_warehouse", 1.0],
  ["Newark Warehouse", "US", "us_warehouse", 0.9],
  ["Dallas Warehouse", "US", "us_warehouse", 1.1],
];

const PERIODS = [];
for (const year of [2023, 2024])
  for (let m = 1; m <= 12; m++) PERIODS.push(`${year}-${String(m).padStart(2, "0")}`);

/** Decimal places a meter or invoice would show for a unit. */
const DECIMALS = { kWh: 0, MWh: 3, m3: 1, therm: 1, litres: 1, US_gal: 1 };

const format = (value, unit) => value.toFixed(DECIMALS[unit] ?? 2);

function csvField(value) {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV text of the data set. */
export function generate() {
  const random = prng(SEED);
  const between = (lo, hi) => lo + (hi - lo) * random();
  const pick = (list) => list[Math.floor(random() * list.length)];

  /** @type {{site: string, country: string, period: string, source: string, quantity: string, unit: string, dupOf?: object}[]} */
  const rows = [];
  for (const period of PERIODS) {
    const month = Number(period.slice(5));
    const yearIndex = Number(period.slice(0, 4)) - 2023;
    // 1 in January and December, 0 in July: how much heating is needed.
    const cold = (Math.cos(((month - 1) / 12) * 2 * Math.PI) + 1) / 2;
    for (const [site, country, profile, size] of SITES) {
      for (const [source, unit, base, options = {}] of PROFILES[profile]) {
        const seasonal = source === "natural_gas" ? 0.35 + (options.winter ?? 1) * cold : 1;
        const cooling = source === "electricity" ? 1 + 0.08 * (1 - cold) : 1;
        const trend = 1 - 0.03 * yearIndex;
        const value = base * size * seasonal * cooling * trend * between(0.88, 1.12);
        rows.push({ site, country, period, source, quantity: format(value, unit), unit });
      }
    }
  }

  // Deliberately bad rows, as they turn up in real exports.
  const bad = [];
  const sample = () => rows[Math.floor(random() * rows.length)];
  for (let i = 0; i < 12; i++) {
    // A meter correction booked as a negative reading.
    const r = sample();
    bad.push({ ...r, quantity: `-${r.quantity}` });
  }
  const wrongUnits = {
    electricity: ["kVA", "kW"],
    natural_gas: ["ft3", "MJ"],
    diesel: ["kg", "gal"],
    petrol: ["kg", "gal"],
    lpg: ["kg", "tonnes"],
  };
  for (let i = 0; i < 10; i++) {
    const r = sample();
    bad.push({ ...r, unit: pick(wrongUnits[r.source]) });
  }
  for (let i = 0; i < 8; i++) bad.push({ ...sample(), site: "" });
  for (let i = 0; i < 5; i++) bad.push({ ...sample(), quantity: pick(["n/a", "", "TBC"]) });
  for (let i = 0; i < 3; i++) bad.push({ ...sample(), period: pick(["2024-13", "2023/07", "July 2024"]) });
  for (let i = 0; i < 3; i++) bad.push({ ...sample(), source: pick(["coal", "heating_oil"]) });

  const all = [...rows];
  for (const row of bad) all.splice(Math.floor(random() * (all.length + 1)), 0, row);
  // Duplicates: the same record exported twice, some lines further down.
  for (let i = 0; i < 10; i++) {
    const at = Math.floor(random() * (all.length - 200));
    const original = all[at];
    if (original.dupOf) continue;
    all.splice(at + 1 + Math.floor(random() * 150), 0, { ...original, dupOf: original });
  }

  const ids = new Map();
  let next = 1;
  const lines = ["record_id,site,country,period,source,quantity,unit"];
  for (const row of all) {
    let id;
    if (row.dupOf) id = ids.get(row.dupOf);
    else {
      id = `E${String(next++).padStart(6, "0")}`;
      ids.set(row, id);
    }
    lines.push(
      [id, row.site, row.country, row.period, row.source, row.quantity, row.unit].map(csvField).join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const target = join(dirname(fileURLToPath(import.meta.url)), "energy-use.csv");
  const text = generate();
  if (process.argv.includes("--stdout")) process.stdout.write(text);
  else if (process.argv.includes("--check")) {
    const same = readFileSync(target, "utf8") === text;
    console.log(same ? `${target} matches generate.mjs` : `${target} differs from generate.mjs output`);
    process.exitCode = same ? 0 : 1;
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${text.split("\n").length - 2} rows to ${target}`);
  }
}
