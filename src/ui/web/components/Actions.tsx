import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { ApiError } from "../api";
import { asApiError } from "../hooks";
import { ErrorBanner } from "./ErrorBanner";
import { ConfirmDialog } from "./Modal";

/** One state-changing action: what the dialog says, and what it does once confirmed. */
export interface ActionSpec {
  id: string;
  label: string;
  title: string;
  body: ComponentChildren;
  danger?: boolean;
  /** Performs the action; what it returns is shown as the result. */
  run: () => Promise<ComponentChildren>;
}

/** Buttons for actions, each behind a confirmation dialog; shows the result or the error. */
export function ActionBar({ actions, onDone }: { actions: ActionSpec[]; onDone?: () => void }) {
  const [open, setOpen] = useState<ActionSpec | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ id: string; node: ComponentChildren } | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const confirm = async (): Promise<void> => {
    if (!open) return;
    setBusy(true);
    setError(undefined);
    try {
      const node = await open.run();
      setResult({ id: open.id, node });
      onDone?.();
    } catch (e) {
      setError(asApiError(e));
      setResult(undefined);
    } finally {
      setBusy(false);
      setOpen(undefined);
    }
  };
  return (
    <div class="actions" data-testid="actions">
      <div class="toolbar">
        {actions.map((a) => (
          <button
            key={a.id}
            type="button"
            class={a.danger ? "danger" : ""}
            data-testid={`action-${a.id}`}
            onClick={() => setOpen(a)}
          >
            {a.label}
          </button>
        ))}
      </div>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      {result && (
        <div class="action-result" data-testid="action-result" data-action={result.id}>
          {result.node}
        </div>
      )}
      {open && (
        <ConfirmDialog
          title={open.title}
          confirmLabel={open.label}
          danger={open.danger ?? false}
          busy={busy}
          onConfirm={() => void confirm()}
          onCancel={() => !busy && setOpen(undefined)}
        >
          {open.body}
        </ConfirmDialog>
      )}
    </div>
  );
}
