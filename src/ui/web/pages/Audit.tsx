import { useCallback, useEffect, useState } from "preact/hooks";
import { type ApiError, getJson } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { StatusBadge } from "../components/StatusBadge";
import { fmtTime, preview } from "../format";
import { asApiError } from "../hooks";
import { useLiveRefresh } from "../live";
import { href } from "../router";
import type { AuditEntry, AuditPage as Page } from "../types";

const LIMIT = 100;

/** The audit trail: who did what to which run or checkpoint, and how it ended. */
export function AuditPage() {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [before, setBefore] = useState<string | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(false);

  const load = useCallback(async (cursor?: string) => {
    setLoading(true);
    try {
      const p = new URLSearchParams({ limit: String(LIMIT) });
      if (cursor) p.set("before", cursor);
      const page = await getJson<Page>(`/api/audit?${p}`);
      setEntries((old) => (cursor ? [...old, ...page.entries] : page.entries));
      setBefore(page.nextBefore);
      setError(undefined);
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setLoading(false);
    }
  }, []);
  useEffect(() => void load(), [load]);
  // Actions append entries; keep the newest page current (older pages stay as loaded).
  useLiveRefresh(
    () => {
      if (entries.length <= LIMIT) void load();
    },
    undefined,
    1000,
  );

  return (
    <section>
      <div class="title-row">
        <h2>Audit trail</h2>
        <span class="spacer" />
        <button type="button" onClick={() => void load()} data-testid="audit-refresh">
          Refresh
        </button>
      </div>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      <table class="grid" data-testid="audit-table">
        <thead>
          <tr>
            <th>At</th>
            <th>User</th>
            <th>Client</th>
            <th>Action</th>
            <th>Target</th>
            <th>Outcome</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.hash} data-testid="audit-row" data-action={e.action} data-outcome={e.outcome}>
              <td title={e.at}>{fmtTime(e.at)}</td>
              <td>{e.user}</td>
              <td class="mono">{e.client}</td>
              <td class="mono">{e.action}</td>
              <td class="mono">
                {e.target.checkpointId ? (
                  <a href={href(["checkpoints", e.target.checkpointId])}>{e.target.checkpointId}</a>
                ) : e.target.pipelineId ? (
                  <a href={href(["runs", e.target.pipelineId])}>{e.target.pipelineId}</a>
                ) : (
                  ""
                )}
              </td>
              <td>
                <StatusBadge status={e.outcome} testid="outcome" />
              </td>
              <td class="mono small val">{e.detail === undefined ? "" : preview(e.detail, 160)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && entries.length === 0 && !error && <p class="muted">No audit entries yet.</p>}
      <div class="pager">
        {before && (
          <button
            type="button"
            disabled={loading}
            onClick={() => void load(before)}
            data-testid="audit-older"
          >
            Older entries
          </button>
        )}
        {loading && <span class="muted">loading…</span>}
      </div>
    </section>
  );
}
