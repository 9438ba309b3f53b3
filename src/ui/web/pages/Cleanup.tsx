import { useState } from "preact/hooks";
import { type ApiError, postJson } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { JsonViewer } from "../components/JsonViewer";
import { ConfirmDialog } from "../components/Modal";
import { fmtTime } from "../format";
import { asApiError } from "../hooks";
import { href } from "../router";
import type { CleanupOutcome, CleanupPreview } from "../types";

/** Retention cleanup: choose a rule, preview what it removes, confirm, see what was removed. */
export function CleanupPage() {
  const [days, setDays] = useState("30");
  const [keepLast, setKeepLast] = useState("");
  const [completedOnly, setCompletedOnly] = useState(true);
  const [previewed, setPreviewed] = useState<CleanupPreview | undefined>(undefined);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Partial<CleanupOutcome> | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);

  const runPreview = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const body: Record<string, unknown> = { completedOnly };
      if (days.trim() !== "") body.olderThanDays = Number(days);
      if (keepLast.trim() !== "") body.keepLast = Number(keepLast);
      setPreviewed(await postJson<CleanupPreview>("/api/actions/cleanup/preview", body));
    } catch (e) {
      setError(asApiError(e));
      setPreviewed(undefined);
    } finally {
      setBusy(false);
    }
  };
  const runCleanup = async (): Promise<void> => {
    if (!previewed) return;
    setBusy(true);
    try {
      setResult(
        await postJson<Partial<CleanupOutcome>>("/api/actions/cleanup", { previewId: previewed.previewId }),
      );
      setPreviewed(undefined);
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  };

  return (
    <section>
      <h2>Retention cleanup</h2>
      <p class="muted">
        Deletes old checkpoints by a retention rule. Nothing is removed until you have seen the preview and
        confirmed it; the removal then deletes exactly what the preview listed.
      </p>
      <form
        class="toolbar"
        data-testid="cleanup-form"
        onSubmit={(e) => {
          e.preventDefault();
          void runPreview();
        }}
      >
        <label>
          Older than (days){" "}
          <input
            type="number"
            min="0"
            step="any"
            class="narrow"
            value={days}
            onInput={(e) => setDays(e.currentTarget.value)}
            data-testid="cleanup-days"
          />
        </label>
        <label>
          Keep last (per pipeline){" "}
          <input
            type="number"
            min="0"
            step="1"
            class="narrow"
            value={keepLast}
            onInput={(e) => setKeepLast(e.currentTarget.value)}
            data-testid="cleanup-keep"
          />
        </label>
        <label>
          <input
            type="checkbox"
            checked={completedOnly}
            onChange={(e) => setCompletedOnly(e.currentTarget.checked)}
            data-testid="cleanup-completed"
          />{" "}
          completed runs only
        </label>
        <button type="submit" disabled={busy} data-testid="cleanup-preview">
          Preview
        </button>
      </form>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      {previewed && (
        <div data-testid="cleanup-previewed">
          <p data-testid="cleanup-summary">
            {previewed.checkpoints} checkpoint(s) in {previewed.runs.length} run(s) would be removed
            {previewed.expiresAt
              ? ` (this preview can be executed until ${fmtTime(previewed.expiresAt)})`
              : ""}
            .
          </p>
          <Skipped list={previewed.skipped} />
          {previewed.runs.length > 0 && (
            <>
              <table class="grid">
                <thead>
                  <tr>
                    <th>Run</th>
                    <th class="num">Checkpoints removed</th>
                    <th>Whole run</th>
                    <th>Why</th>
                  </tr>
                </thead>
                <tbody>
                  {previewed.runs.map((r) => (
                    <tr key={r.pipelineId} data-testid="cleanup-row" data-run-id={r.pipelineId}>
                      <td class="mono">
                        <a href={href(["runs", r.pipelineId])}>{r.pipelineId}</a>
                      </td>
                      <td class="num">{r.checkpoints}</td>
                      <td>{r.wholeRun ? "yes" : "no"}</td>
                      <td>
                        {r.reason === "keepLast"
                          ? "beyond keep-last"
                          : r.reason === "age"
                            ? "older than the cutoff"
                            : ""}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div class="toolbar">
                <button
                  type="button"
                  class="danger"
                  onClick={() => setConfirming(true)}
                  data-testid="cleanup-run"
                >
                  Remove these checkpoints…
                </button>
              </div>
            </>
          )}
        </div>
      )}
      {result !== undefined && (
        <div class="action-result" data-testid="action-result" data-action="cleanup">
          <p>
            Removed {result.deletedCheckpoints?.length ?? 0} checkpoint(s)
            {result.removedRuns?.length ? `; ${result.removedRuns.length} run(s) deleted whole` : ""}
            {result.deletedOutputs ? `; ${result.deletedOutputs} stored output(s)` : ""}.
          </p>
          <Skipped list={result.skipped} />
          <JsonViewer name="details" value={result} open={false} />
        </div>
      )}
      {confirming && previewed && (
        <ConfirmDialog
          title="Remove checkpoints?"
          confirmLabel={`Remove ${previewed.checkpoints} checkpoint(s)`}
          danger
          busy={busy}
          onConfirm={() => void runCleanup()}
          onCancel={() => !busy && setConfirming(false)}
        >
          <p>
            Deletes exactly the {previewed.checkpoints} checkpoint(s) of the preview from the store. This
            cannot be undone and is recorded in the audit trail.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** Runs the cleanup left alone, with the reason. */
function Skipped({ list }: { list: { pipelineId: string; reason: string }[] | undefined }) {
  if (!list || list.length === 0) return null;
  return (
    <details data-testid="cleanup-skipped">
      <summary>{list.length} run(s) left alone</summary>
      <ul>
        {list.map((r) => (
          <li key={r.pipelineId}>
            <a class="mono" href={href(["runs", r.pipelineId])}>
              {r.pipelineId}
            </a>
            : {r.reason}
          </li>
        ))}
      </ul>
    </details>
  );
}
