/**
 * The report's section for CairnSaver (issue 19): its rows set against the native LangGraph
 * saver of the same store and durability, and each of the targets met or missed by how
 * much. The `cairn-saver` rows themselves also appear in the write, read and resume tables.
 */
import { SAVER_NORMAL_VARIANT, SAVER_VARIANT } from "./cairn-saver.js";
import { ms, ratio, table } from "./markdown.js";
import type { GrowthRow, Row, StoreResult } from "./results.js";

/** Growth: CairnSaver's bytes at most this many times the sum of the outputs, on every store. */
const BYTES_TARGET = 1.1;
/** Resume on the grown thread: native p50 / CairnSaver p50 at least this, per store. */
const GROWN_RESUME_TARGET: Record<string, number> = { sqlite: 5, postgres: 20 };
/** Writes and latest reads: no slower than the native saver (native p50 / CairnSaver p50 ≥ 1). */
const SAME_SPEED = 1;

/**
 * The CairnSaver variant a native saver's row is set against: the one with the same durability.
 * SqliteSaver as shipped commits at synchronous=NORMAL, so its row meets CairnSaver on a store
 * set to normal where the table has one; `langgraph (synchronous=FULL)` meets the default.
 */
const SAVER_COUNTERPART: Record<string, readonly string[]> = {
  langgraph: [SAVER_NORMAL_VARIANT, SAVER_VARIANT],
  "langgraph (synchronous=FULL)": [SAVER_VARIANT],
};

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** `met (x)` or `**missed** by …`, for a p50 that must be at most `allowedMs`. */
function timeVerdict(saverMs: number, allowedMs: number): string {
  return saverMs <= allowedMs
    ? "met"
    : `**missed** by ${ms(saverMs - allowedMs)} ms (p50 must be ≤ ${ms(allowedMs)} ms, ${((1 - allowedMs / saverMs) * 100).toFixed(0)} % less)`;
}

/** One line of the speed table: CairnSaver vs the native saver on one case. */
function speedLine(
  scenario: string,
  store: string,
  kase: string,
  saver: { variant: string; p50: number },
  native: { variant: string; p50: number } | undefined,
  target: number | undefined,
): string[] {
  const speedUp = native ? ratio(native.p50, saver.p50) : "no native saver";
  const verdict = native && target !== undefined ? timeVerdict(saver.p50, native.p50 / target) : "";
  return [
    scenario,
    store,
    /^\d+$/.test(kase) ? `${Number(kase).toLocaleString("en-US")} checkpoints` : kase,
    saver.variant,
    ms(saver.p50),
    native?.variant ?? "–",
    native ? ms(native.p50) : "–",
    speedUp,
    target === undefined ? "–" : `≥ ${target}×`,
    verdict,
  ];
}

/** Write, read and resume rows: each native row against its CairnSaver counterpart; file and redis alone. */
function rowLines(rows: readonly Row[]): string[][] {
  const lines: string[][] = [];
  const used = new Set<Row>();
  for (const native of rows) {
    for (const variant of SAVER_COUNTERPART[native.variant] ?? []) {
      const saver = rows.find(
        (r) =>
          r.scenario === native.scenario &&
          r.store === native.store &&
          r.case === native.case &&
          r.variant === variant,
      );
      if (!saver) continue;
      used.add(saver);
      const target = native.scenario === "resume" ? undefined : SAME_SPEED;
      lines.push(
        speedLine(
          native.scenario,
          native.store,
          native.case,
          { variant: saver.variant, p50: saver.summary.p50Ms },
          { variant: native.variant, p50: native.summary.p50Ms },
          target,
        ),
      );
      break;
    }
  }
  for (const saver of rows) {
    if (saver.variant !== SAVER_VARIANT || used.has(saver)) continue;
    const p50 = { variant: saver.variant, p50: saver.summary.p50Ms };
    lines.push(speedLine(saver.scenario, saver.store, saver.case, p50, undefined, undefined));
  }
  return lines;
}

/** Resume on the grown thread: CairnSaver's getTuple against the native saver's. */
function grownLines(growth: readonly GrowthRow[]): string[][] {
  return growth.flatMap((g) => {
    const saver = g.resume?.saver;
    if (!saver) return [];
    const native = g.resume?.langgraph;
    return [
      speedLine(
        "resume on the grown thread",
        g.store,
        `${g.stages} stages, ${mb(g.outputBytes)}`,
        { variant: SAVER_VARIANT, p50: saver.p50Ms },
        native ? { variant: "langgraph", p50: native.p50Ms } : undefined,
        GROWN_RESUME_TARGET[g.store],
      ),
    ];
  });
}

function bytesTable(growth: readonly GrowthRow[]): string {
  return table(
    [
      "store",
      "stages",
      "sum of outputs",
      "CairnSaver bytes",
      "CairnSaver bytes / outputs",
      `target ≤ ${BYTES_TARGET}×`,
      "cairn bytes / outputs",
      "CairnSaver time",
      "native saver time",
      "native time / CairnSaver time",
      "CairnSaver bytes measured as",
    ],
    growth.flatMap((g) => {
      if (g.saverBytes === undefined || g.saverSeconds === undefined) return [];
      const allowed = g.outputBytes * BYTES_TARGET;
      const verdict =
        g.saverBytes <= allowed
          ? "met"
          : `**missed** by ${mb(g.saverBytes - allowed)} (${ratio(g.saverBytes, g.outputBytes)})`;
      return [
        [
          g.store,
          String(g.stages),
          mb(g.outputBytes),
          mb(g.saverBytes),
          ratio(g.saverBytes, g.outputBytes),
          verdict,
          ratio(g.cairnBytes, g.outputBytes),
          `${g.saverSeconds.toFixed(2)} s`,
          g.langgraphSeconds === undefined ? "no native saver" : `${g.langgraphSeconds.toFixed(2)} s`,
          g.langgraphSeconds === undefined ? "–" : ratio(g.langgraphSeconds, g.saverSeconds),
          g.saverBytesMethod ?? "",
        ],
      ];
    }),
  );
}

/** The section, or undefined when no store measured CairnSaver. */
export function saverSection(stores: readonly StoreResult[]): [string, string, string] | undefined {
  const rows = stores.flatMap((s) => s.rows);
  const growth = stores.flatMap((s) => s.growth ?? []);
  const lines = [...rowLines(rows), ...grownLines(growth)];
  if (lines.length === 0 && !growth.some((g) => g.saverBytes !== undefined)) return undefined;
  const speed = table(
    [
      "scenario",
      "store",
      "case",
      "CairnSaver",
      "p50 ms",
      "native saver",
      "p50 ms",
      "speed-up (native p50 / CairnSaver p50)",
      "target",
      "verdict",
    ],
    lines,
  );
  const text = [
    "`CairnSaver` (`cairn-pipelines/langgraph`) driven by the same code as the LangGraph savers (one `put` per superstep, only the changed channel in `newVersions`; reads with `getTuple({ configurable: { thread_id } })` and every channel value read, since CairnSaver parses a plain JSON value when it is first read and LangGraph's savers inside `getTuple`), in the same rounds on the same payloads, through each store's measured configuration (`new CairnSaver(options)` with the options of the `cairn` rows; the resume threads are filled through the store's fast filler, as cairn's runs are). It runs on every store; the native savers only on memory, sqlite and postgres.",
    `Targets (issue 19): writes and latest reads no slower than the native saver of the same store and durability (sqlite: \`${SAVER_NORMAL_VARIANT}\` against SqliteSaver as shipped, \`${SAVER_VARIANT}\` against \`langgraph (synchronous=FULL)\`); resume on the grown thread ≥ 5× faster than SqliteSaver and ≥ 20× faster than PostgresSaver; growth bytes ≤ ${BYTES_TARGET}× the outputs on every store, measured as cairn's own growth rows on that store. Resume by run length has no target and is shown for comparison.`,
  ].join(" ");
  return ["CairnSaver against the native savers (issue 19)", text, `${speed}\n\n${bytesTable(growth)}`];
}
