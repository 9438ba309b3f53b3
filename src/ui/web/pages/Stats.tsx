import type { ChartConfiguration } from "chart.js";
import { useMemo } from "preact/hooks";
import { Card } from "../components/Card";
import { ChartView } from "../components/ChartView";
import { ErrorBanner } from "../components/ErrorBanner";
import { StatusBadge } from "../components/StatusBadge";
import { fmtAgo, fmtBytes, fmtDuration, fmtTime } from "../format";
import { useFetch } from "../hooks";
import { useLiveRefresh } from "../live";
import type { Statistics } from "../types";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Tick labels as precise as the span needs: seconds within 10 min, the date beyond a day. */
function timeTicks(span: number): (v: number | string) => string {
  return (v) => {
    const t = fmtTime(new Date(Number(v)).toISOString());
    if (span <= 10 * 60_000) return t.slice(11, 19);
    if (span <= DAY) return t.slice(11, 16);
    return t.slice(5, 16);
  };
}

function scatter(
  points: { x: number; y: number }[],
  label: string,
  color: string,
  yTick: (v: number) => string,
): ChartConfiguration {
  const xs = points.map((p) => p.x);
  const lo = xs.length > 0 ? Math.min(...xs) : 0;
  const hi = xs.length > 0 ? Math.max(...xs) : 0;
  const timeTick = timeTicks(hi - lo);
  // The axis ends at the data (a "nice" linear bound would run minutes past the newest point).
  const pad = Math.max(1000, (hi - lo) * 0.02);
  return {
    type: "scatter",
    data: { datasets: [{ label, data: points, backgroundColor: color, pointRadius: 3 }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {
        // Linear milliseconds: Chart.js' time axis needs a date adapter the console does not ship.
        x: { type: "linear", min: lo - pad, max: hi + pad, ticks: { callback: timeTick, maxTicksLimit: 8 } },
        y: { type: "linear", beginAtZero: true, ticks: { callback: (v) => yTick(Number(v)) } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => {
              const p = item.raw as { x: number; y: number };
              return `${fmtTime(new Date(p.x).toISOString())}: ${yTick(p.y)}`;
            },
          },
        },
      },
    },
  };
}

/** Bucket widths for "checkpoints written", smallest first, with how a bucket is named. */
const BUCKETS: { ms: number; name: string; label: (t: string) => string }[] = [
  { ms: 60_000, name: "minute", label: (t) => t.slice(11, 16) },
  { ms: 5 * 60_000, name: "5 minutes", label: (t) => t.slice(11, 16) },
  { ms: 15 * 60_000, name: "15 minutes", label: (t) => t.slice(5, 16) },
  { ms: HOUR, name: "hour", label: (t) => `${t.slice(5, 13)}:00` },
  { ms: 6 * HOUR, name: "6 hours", label: (t) => `${t.slice(5, 13)}:00` },
  { ms: DAY, name: "day", label: (t) => t.slice(0, 10) },
  { ms: 7 * DAY, name: "week", label: (t) => t.slice(0, 10) },
];

/** Checkpoints written per bucket, gaps included: per hour over a day, finer or coarser as needed. */
function perBucket(times: number[]): ChartConfiguration {
  const lo = Math.min(...times);
  const hi = Math.max(...times);
  // At most 72 bars: the smallest bucket that covers the span in that many.
  const bucket = BUCKETS.find((b) => (hi - lo) / b.ms < 72) ?? (BUCKETS.at(-1) as (typeof BUCKETS)[number]);
  const start = Math.floor(lo / bucket.ms) * bucket.ms;
  const counts = new Array<number>(Math.floor((hi - start) / bucket.ms) + 1).fill(0);
  for (const t of times) {
    const i = Math.floor((t - start) / bucket.ms);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const labels = counts.map((_, i) => bucket.label(fmtTime(new Date(start + i * bucket.ms).toISOString())));
  return {
    type: "bar",
    data: {
      labels,
      datasets: [
        {
          label: `checkpoints per ${bucket.name}`,
          data: counts,
          backgroundColor: "#1565c0",
          maxBarThickness: 40,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { display: true, position: "bottom" } },
    },
  };
}

/** Totals, resume success rate and charts over the newest checkpoints. */
export function StatsPage() {
  const st = useFetch<Statistics>("/api/statistics");
  // Statistics read the whole store: refresh at most every few seconds.
  useLiveRefresh(st.reload, undefined, 3000);
  const d = st.data;
  const charts = useMemo(() => {
    if (!d || d.series.length === 0) return null;
    const pts = d.series
      .map((s) => ({ ...s, x: new Date(s.t).getTime() }))
      .filter((s) => Number.isFinite(s.x));
    return {
      sizes: scatter(
        pts.map((s) => ({ x: s.x, y: s.size })),
        "checkpoint size",
        "#2e7d32",
        fmtBytes,
      ),
      durations: scatter(
        pts.filter((s) => s.stageMs !== null).map((s) => ({ x: s.x, y: s.stageMs ?? 0 })),
        "stage duration",
        "#ef8f00",
        fmtDuration,
      ),
      perHour: perBucket(pts.map((s) => s.x)),
    };
  }, [d]);
  const rate = d?.resumes.successRate;
  return (
    <section>
      <h2>Statistics</h2>
      <ErrorBanner error={st.error} />
      {!d && !st.error && <p class="muted">loading…</p>}
      {d && (
        <>
          <dl class="cards" data-testid="totals">
            <Card label="Runs" value={String(d.totals.runs)} testid="total-runs" />
            <Card label="Checkpoints" value={String(d.totals.checkpoints)} testid="total-checkpoints" />
            <Card label="Completed runs" value={String(d.totals.completed)} />
            <Card label="Active runs" value={String(d.totals.active)} />
            <Card label="Failed runs" value={String(d.totals.failed)} warn={d.totals.failed > 0} />
            <Card label="Unreadable entries" value={String(d.totals.corrupt)} warn={d.totals.corrupt > 0} />
            <Card label="Stored" value={fmtBytes(d.totals.storedBytes)} />
            <Card
              label="Resume success rate"
              value={rate === null || rate === undefined ? "–" : `${Math.round(rate * 100)}%`}
              testid="resume-rate"
            />
          </dl>
          <p class="muted small">
            {d.resumes.resumedRuns} run(s) resumed, {d.resumes.resumedCompleted} of them completed.
          </p>
          {d.computedAt && (
            <p class="muted small" data-testid="stats-computed">
              Computed {fmtAgo(d.computedAt)} in {fmtDuration(d.computeMs ?? null)} (a pass over every run;
              kept a minute, then refreshed behind the page).
            </p>
          )}
          <h3>Checkpoints by status</h3>
          <div class="by-status" data-testid="by-status">
            {Object.entries(d.byStatus).map(([s, n]) => (
              <span key={s} class="status-count">
                <StatusBadge status={s} /> {n}
              </span>
            ))}
          </div>
          {!charts && <p class="muted">No checkpoints yet.</p>}
          {charts && (
            <div class="chart-grid">
              <figure>
                <figcaption>Checkpoint sizes over time</figcaption>
                <ChartView config={charts.sizes} testid="chart-sizes" />
              </figure>
              <figure>
                <figcaption>Stage durations over time</figcaption>
                <ChartView config={charts.durations} testid="chart-durations" />
              </figure>
              <figure class="wide-figure">
                <figcaption>Checkpoints written</figcaption>
                <ChartView config={charts.perHour} testid="chart-per-hour" />
              </figure>
            </div>
          )}
          <p class="muted small">Charts cover the newest {d.series.length} checkpoints.</p>
        </>
      )}
    </section>
  );
}
