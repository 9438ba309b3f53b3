import type { ChartConfiguration, TooltipItem } from "chart.js";
import { useMemo } from "preact/hooks";
import { statusColor } from "../colors";
import { fmtDuration, fmtTime } from "../format";
import type { Attempt } from "../types";
import { ChartView } from "./ChartView";

interface Bar {
  x: [number, number];
  y: string;
  a: Attempt;
}

/** Stages shown each with its own labelled row; a longer run gets a fixed-height chart. */
const MAX_ROWS = 40;

const sessionName = (n: number): string => (n === 0 ? "first run" : `resume ${n}`);

/**
 * The stage attempts of a run across its resumes as horizontal floating bars: one row per stage,
 * x = time since the first start (a linear axis: Chart.js' time axis needs a date adapter).
 */
export function Gantt({ timeline, stageOrder }: { timeline: Attempt[]; stageOrder: string[] }) {
  const config = useMemo((): ChartConfiguration | null => {
    if (timeline.length === 0) return null;
    const starts = timeline.map((a) => new Date(a.start).getTime()).filter(Number.isFinite);
    const t0 = Math.min(...starts);
    const now = Date.now();
    const stages = [...stageOrder];
    for (const a of timeline) if (!stages.includes(a.stage)) stages.push(a.stage);
    const byStatus = new Map<string, Bar[]>();
    for (const a of timeline) {
      const s = new Date(a.start).getTime() - t0;
      // An attempt still running (or cut short without an end) reaches to now.
      const e = (a.end ? new Date(a.end).getTime() : now) - t0;
      const bars = byStatus.get(a.status) ?? [];
      bars.push({ x: [s, Math.max(e, s + 1)], y: a.stage, a });
      byStatus.set(a.status, bars);
    }
    return {
      type: "bar",
      data: {
        labels: stages,
        datasets: [...byStatus].map(([status, bars]) => ({
          label: status,
          data: bars as unknown as number[],
          backgroundColor: statusColor(status),
          borderColor: "#263238",
          borderWidth: 1,
          grouped: false,
          barPercentage: 0.6,
          minBarLength: 3,
        })),
      },
      options: {
        indexAxis: "y",
        animation: false,
        maintainAspectRatio: false,
        parsing: { xAxisKey: "x", yAxisKey: "y" },
        scales: {
          x: {
            type: "linear",
            min: 0,
            title: { display: true, text: `time since first start (${fmtTime(new Date(t0).toISOString())})` },
            ticks: { callback: (v) => fmtDuration(Number(v)) },
          },
          // Every stage keeps its label: a row without one cannot be read.
          y: { type: "category", ticks: { autoSkip: stages.length > MAX_ROWS } },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: (item: TooltipItem<"bar">) => {
                const bar = item.raw as Bar;
                const a = bar.a;
                const dur = a.end
                  ? fmtDuration(new Date(a.end).getTime() - new Date(a.start).getTime())
                  : "running";
                const approx = a.approximate ? " (approximate: from checkpoint times)" : "";
                return `${a.stage} · attempt ${a.attempt} · ${sessionName(a.session)} · ${a.status} · ${dur}${approx}`;
              },
            },
          },
        },
      },
    } as ChartConfiguration;
  }, [timeline, stageOrder]);
  if (!config) return <p class="muted">No stage attempts recorded.</p>;
  // One readable row per stage up to MAX_ROWS stages; beyond, the chart stays that tall and labels thin out.
  const height = 100 + 28 * Math.min(MAX_ROWS, Math.max(2, config.data.labels?.length ?? 1));
  return <ChartView config={config} testid="gantt" height={height} />;
}
