import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type ApiError, getJson } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { StatusBadge } from "../components/StatusBadge";
import { fmtAgo, fmtBytes, fmtTime } from "../format";
import { asApiError } from "../hooks";
import { useLiveRefresh } from "../live";
import { href, navigate } from "../router";
import type { RunRow, RunsPage as RunsAnswer } from "../types";

const PAGE = 50;
/** Statuses a run summary can have (PipelineSummary.status). */
export const RUN_STATUSES = ["completed", "failed", "paused", "in_progress", "resumed", "expired"];

type Col =
  | "pipelineName"
  | "pipelineId"
  | "status"
  | "stagesDone"
  | "checkpoints"
  | "sizeBytes"
  | "lastUpdate"
  | "resumeCount";
const COLUMNS: { key: Col; label: string; num?: boolean }[] = [
  { key: "pipelineName", label: "Pipeline" },
  { key: "pipelineId", label: "Run id" },
  { key: "status", label: "Status" },
  { key: "stagesDone", label: "Stages", num: true },
  { key: "checkpoints", label: "Checkpoints", num: true },
  { key: "sizeBytes", label: "Size", num: true },
  { key: "lastUpdate", label: "Last update" },
  { key: "resumeCount", label: "Resumes", num: true },
];

function runsUrl(q: { name: string; status: string; sort: string }, cursor?: string): string {
  const p = new URLSearchParams();
  if (q.name) p.set("name", q.name);
  if (q.status) p.set("status", q.status);
  // The runs-by-name index lists newest first; the id scan sorts by id either way.
  p.set("sort", q.name ? "created" : q.sort === "-id" ? "-id" : "id");
  p.set("limit", String(PAGE));
  if (cursor) p.set("cursor", cursor);
  return `/api/runs?${p}`;
}

function compare(a: RunRow, b: RunRow, key: Col): number {
  const x = a[key];
  const y = b[key];
  if (x === y) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  return typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
}

/** The runs table: filters, server sort, click-to-sort, "Load more", live refresh. */
export function RunsPage({ query }: { query: URLSearchParams }) {
  const q = useMemo(
    () => ({
      name: query.get("name") ?? "",
      status: query.get("status") ?? "",
      sort: query.get("sort") ?? "",
    }),
    [query],
  );
  const [rows, setRows] = useState<RunRow[]>([]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [info, setInfo] = useState<{ scanned: number; mode: string } | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [nameInput, setNameInput] = useState(q.name);
  const [local, setLocal] = useState<{ key: Col; dir: 1 | -1 } | undefined>(undefined);
  const gen = useRef(0);

  const loadFirst = useCallback(async () => {
    const g = ++gen.current;
    setLoading(true);
    try {
      const page = await getJson<RunsAnswer>(runsUrl(q));
      if (g !== gen.current) return;
      setRows(page.runs);
      setNext(page.nextCursor);
      setInfo({ scanned: page.scanned, mode: page.mode });
      setError(undefined);
    } catch (e) {
      if (g === gen.current) setError(asApiError(e));
    } finally {
      // Unconditional: a live refresh that superseded this request does not manage the flag.
      setLoading(false);
    }
  }, [q]);

  useEffect(() => {
    setNameInput(q.name);
    setRows([]);
    setNext(undefined);
    void loadFirst();
  }, [loadFirst, q.name]);

  const loadMore = async (): Promise<void> => {
    if (!next) return;
    const g = gen.current;
    setLoading(true);
    try {
      const page = await getJson<RunsAnswer>(runsUrl(q, next));
      if (g !== gen.current) return;
      setRows((old) => {
        const seen = new Set(old.map((r) => r.pipelineId));
        return [...old, ...page.runs.filter((r) => !seen.has(r.pipelineId))];
      });
      setNext(page.nextCursor);
      setInfo((i) => ({ scanned: (i?.scanned ?? 0) + page.scanned, mode: page.mode }));
      setError(undefined);
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setLoading(false);
    }
  };

  // On a change, refetch from the start as many rows as are shown (new runs appear, statuses move).
  const refreshVisible = useCallback(async () => {
    const g = ++gen.current;
    const want = Math.max(rowsRef.current, PAGE);
    try {
      const all: RunRow[] = [];
      const seen = new Set<string>();
      let cursor: string | undefined;
      let scanned = 0;
      let mode = "";
      for (let i = 0; i < 20; i++) {
        const page = await getJson<RunsAnswer>(runsUrl(q, cursor));
        if (g !== gen.current) return;
        for (const r of page.runs) if (!seen.has(r.pipelineId)) seen.add(r.pipelineId) && all.push(r);
        scanned += page.scanned;
        mode = page.mode;
        cursor = page.nextCursor;
        if (!cursor || all.length >= want) break;
      }
      setRows(all);
      setNext(cursor);
      setInfo({ scanned, mode });
      setError(undefined);
    } catch (e) {
      if (g === gen.current) setError(asApiError(e));
    }
  }, [q]);
  const rowsRef = useRef(0);
  rowsRef.current = rows.length;
  useLiveRefresh(() => void refreshVisible());

  const setQuery = (patch: Partial<typeof q>): void => {
    const n = { ...q, ...patch };
    if (n.name) n.sort = "";
    navigate(href(["runs"], n));
  };

  const shown = useMemo(() => {
    if (!local) return rows;
    return [...rows].sort((a, b) => compare(a, b, local.key) * local.dir);
  }, [rows, local]);

  return (
    <section>
      <h2>Runs</h2>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ name: nameInput.trim() });
        }}
      >
        <label>
          Pipeline name{" "}
          <input
            type="search"
            value={nameInput}
            placeholder="exact name (index)"
            data-testid="filter-name"
            onInput={(e) => setNameInput(e.currentTarget.value)}
          />
        </label>
        <button type="submit">Filter</button>
        <label>
          Status{" "}
          <select
            value={q.status}
            data-testid="filter-status"
            onChange={(e) => setQuery({ status: e.currentTarget.value })}
          >
            <option value="">any</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Order{" "}
          <select
            value={q.sort}
            data-testid="sort"
            onChange={(e) => setQuery({ sort: e.currentTarget.value })}
          >
            {q.name ? (
              <option value="">newest first</option>
            ) : (
              <>
                <option value="">run id ↑</option>
                <option value="-id">run id ↓</option>
              </>
            )}
          </select>
        </label>
      </form>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      <table class="grid" data-testid="runs-table">
        <thead>
          <tr>
            {COLUMNS.map((c) => (
              <th key={c.key} class={c.num ? "num" : ""}>
                <button
                  type="button"
                  class="th-sort"
                  title="Sort the loaded rows"
                  onClick={() =>
                    setLocal(
                      local?.key === c.key
                        ? { key: c.key, dir: local.dir === 1 ? -1 : 1 }
                        : { key: c.key, dir: 1 },
                    )
                  }
                >
                  {c.label}
                  {local?.key === c.key ? (local.dir === 1 ? " ▲" : " ▼") : ""}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <RunTr key={r.pipelineId} r={r} />
          ))}
        </tbody>
      </table>
      {!loading && rows.length === 0 && !error && (
        <p class="muted" data-testid="runs-empty">
          No runs{q.name || q.status ? " match these filters" : " in this store"}.
        </p>
      )}
      <div class="pager">
        {next && (
          <button type="button" onClick={() => void loadMore()} disabled={loading} data-testid="load-more">
            Load more
          </button>
        )}
        {loading && <span class="muted">loading…</span>}
        {info && (
          <span class="muted" data-testid="runs-info">
            {rows.length} shown ·{" "}
            {info.mode === "index" ? "runs-by-name index" : `scanned ${info.scanned} runs`}
            {next ? " · more available" : ""}
          </span>
        )}
      </div>
      <p class="muted small">
        Statuses come from each run's newest checkpoint, not verified here (as in <code>cairn list</code>); a
        run's page checks every checkpoint.
      </p>
    </section>
  );
}

function RunTr({ r }: { r: RunRow }) {
  const link = href(["runs", r.pipelineId]);
  return (
    <tr
      class="clickable"
      data-testid="run-row"
      data-run-id={r.pipelineId}
      data-status={r.status}
      onClick={(e) => {
        if (!(e.target instanceof HTMLAnchorElement)) navigate(link);
      }}
    >
      <td>{r.pipelineName}</td>
      <td class="mono ids">
        <a href={link}>{r.pipelineId}</a>
        {r.thread && <div class="muted small">thread {r.thread.threadId}</div>}
      </td>
      <td>
        <StatusBadge status={r.status} />
        {r.encrypted && (
          <span class="badge s-encrypted" title="encrypted; the server has no key for it">
            encrypted
          </span>
        )}
        {r.corrupt > 0 && (
          <span class="badge s-corrupt" data-testid="corrupt-count">
            {r.corrupt} corrupt
          </span>
        )}
      </td>
      <td class="num">
        {r.stagesDone}/{r.stagesTotal}
      </td>
      <td class="num">{r.checkpoints}</td>
      <td class="num nowrap">{fmtBytes(r.sizeBytes)}</td>
      <td class="nowrap" title={r.lastUpdate ?? ""}>
        {fmtTime(r.lastUpdate)} <span class="muted small">{fmtAgo(r.lastUpdate)}</span>
      </td>
      <td class="num">{r.resumeCount}</td>
    </tr>
  );
}
