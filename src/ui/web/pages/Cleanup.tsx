import { useState } from "preact/hooks";
import { type ApiError, postJson } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { JsonViewer } from "../components/JsonViewer";
import { ConfirmDialog } from "../components/Modal";
import { asApiError } from "../hooks";
import { href } from "../router";
import type { CleanupPreview } from "../types";

/** Retention cleanup: choose a rule, preview what it removes, confirm, see what was removed. */
export function CleanupPage() {
  const [days, setDays] = useState("30");
  const [keepLast, setKeepLast] = useState("");
  const [completedOnly, setCompletedOnly] = useState(true);
  const [previewed, setPreviewed] = useState<CleanupPreview | undefined>(undefined);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<unknown>(undefined);
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
      setResult(await postJson<unknown>("/api/actions/cleanup", { previewId: previewed.previewId }));
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
          <p>
            {previewed.checkpoints} checkpoint(s) in {previewed.runs.length} run(s) would be removed.
          </p>
          {previewed.runs.length > 0 && (
            <>
              <table class="grid">
                <thead>
                  <tr>
                    <th>Run</th>
                    <th class="num">Checkpoints removed</th>
                  </tr>
                </thead>
                <tbody>
                  {previewed.runs.map((r) => (
                    <tr key={r.pipelineId} data-testid="cleanup-row" data-run-id={r.pipelineId}>
                      <td class="mono">
                        <a href={href(["runs", r.pipelineId])}>{r.pipelineId}</a>
                      </td>
                      <td class="num">{r.checkpoints}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <button
                type="button"
                class="danger"
                onClick={() => setConfirming(true)}
                data-testid="cleanup-run"
              >
                Remove these checkpoints…
              </button>
            </>
          )}
        </div>
      )}
      {result !== undefined && (
        <div class="action-result" data-testid="action-result" data-action="cleanup">
          <p>Cleanup done.</p>
          <JsonViewer value={result} />
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
