/** Command-line flags and the two run profiles (quick smoke run, full run). */
import { parseArgs } from "node:util";
import type { Plan } from "./measure.js";
import type { Payload } from "./payload.js";

/** The scenarios a run can be limited to. */
export const SCENARIOS = [
  "write",
  "read",
  "resume",
  "growth",
  "e2e",
  "startup",
  "walks",
  "atrest",
  "dag",
  "durability",
  "replication",
  "workers",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** How much to measure. */
export interface Profile {
  name: "quick" | "full";
  /** Plan for the ~10 KB payload. */
  small: Plan;
  /** Plan for the ~1 MB payload: fewer samples, each one is much slower. */
  large: Plan;
  /** Run lengths (checkpoints) the resume test loads from; the first is the baseline. */
  resumeSizes: number[];
  resume: Plan;
  /** Growth: run lengths (stages, each adding a ~100 KB output), each run once. */
  growthStages: number[];
  /** Growth: the run length whose resume is timed after it is written, and the plan for it. */
  grownResumeStages: number;
  grownResume: Plan;
  /** End to end: runs of the example pipeline per variant (checkpointing off / on), batch 1. */
  e2e: Plan;
  /** Start-up: other runs in the store at each measurement (the first is the baseline). */
  startupSizes: number[];
  startup: Plan;
  /** Walks: run lengths whose validate, analyze and new write are timed (the first is the baseline). */
  walkSizes: number[];
}

// Sized so the full run stays well under ten minutes on 2 cores; filling the 10,000-checkpoint
// runs is most of it. Quick keeps every code path but finishes in seconds.
const PROFILES: Record<Profile["name"], Profile> = {
  quick: {
    name: "quick",
    small: { warmup: 5, rounds: 3, batch: 5 },
    large: { warmup: 1, rounds: 2, batch: 3 },
    resumeSizes: [10, 1000],
    resume: { warmup: 3, rounds: 3, batch: 5 },
    growthStages: [50],
    grownResumeStages: 50,
    grownResume: { warmup: 2, rounds: 3, batch: 1 },
    e2e: { warmup: 1, rounds: 3, batch: 1 },
    startupSizes: [0, 1000],
    startup: { warmup: 3, rounds: 2, batch: 5 },
    walkSizes: [100, 1000, 2000],
  },
  full: {
    name: "full",
    small: { warmup: 20, rounds: 10, batch: 20 },
    large: { warmup: 5, rounds: 10, batch: 6 },
    resumeSizes: [10, 1000, 10_000],
    resume: { warmup: 10, rounds: 10, batch: 10 },
    growthStages: [50, 200],
    grownResumeStages: 50,
    grownResume: { warmup: 2, rounds: 10, batch: 1 },
    e2e: { warmup: 2, rounds: 10, batch: 1 },
    startupSizes: [0, 10_000, 100_000],
    startup: { warmup: 5, rounds: 8, batch: 5 },
    walkSizes: [1000, 10_000, 20_000],
  },
};

/** The plan for a payload: the large plan from 100 KB up. */
export function planFor(profile: Profile, payload: Payload): Plan {
  return payload.jsonBytes >= 100_000 ? profile.large : profile.small;
}

/** Parsed flags. */
export interface BenchOptions {
  profile: Profile;
  /** Only this store (`--store`). */
  store: string | undefined;
  /** Only this scenario (`--scenario`). */
  scenario: ScenarioName | undefined;
  /** Internal: this process is a child measuring one store in `dir`. */
  child: boolean;
  dir: string | undefined;
}

const USAGE = `usage: npm run bench -- [--quick] [--store memory|file|sqlite|postgres|redis|s3|azure] [--scenario write|read|resume|growth|e2e|startup|walks|atrest|dag|durability|replication|workers]
  --quick      smoke run (fewer samples, resume up to 1,000 checkpoints, growth 50 stages), under a minute
  --store      measure one store only
  --scenario   measure one scenario only (replication: across stores, see bench/lib/replication.ts;
               workers: BullMQ and pg-boss worker fleets, see bench/lib/workers.ts; both only run
               when named)
Servers: CAIRN_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) and
CAIRN_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0); CAIRN_BENCH_WORKERS_LEASE_MS sets the workers
scenario's lease TTL (default 5000); s3 runs on Ceph RGW (scripts/rgw.sh start,
or the running cluster), azure on azurite (scripts/azurite.mjs); a server that is unreachable or
cannot start skips its store.
A full run of every store writes bench/results/latest.md; other runs only print and save JSON.`;

/** Parses `argv` (without node and script); exits with usage on a bad flag. */
export function parseOptions(argv: string[]): BenchOptions {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const scenario = values.scenario as ScenarioName | undefined;
  if (scenario !== undefined && !SCENARIOS.includes(scenario)) {
    console.error(`unknown scenario "${scenario}"\n${USAGE}`);
    process.exit(2);
  }
  return {
    profile: PROFILES[values.quick ? "quick" : "full"],
    store: values.store,
    scenario,
    child: values.child ?? false,
    dir: values.dir,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      store: { type: "string" },
      scenario: { type: "string" },
      child: { type: "boolean" },
      dir: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
}
