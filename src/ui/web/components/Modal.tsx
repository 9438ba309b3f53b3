import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

/** Props of {@link ConfirmDialog}. */
export interface ConfirmProps {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}

/** An in-page confirmation dialog (never window.confirm): Escape cancels, the button confirms. */
export function ConfirmDialog(p: ConfirmProps) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    cancelRef.current?.focus();
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === "Escape") p.onCancel();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [p.onCancel]);
  return (
    <div class="modal-backdrop" data-testid="confirm-dialog">
      <div class="modal" role="dialog" aria-modal="true" aria-label={p.title}>
        <h3>{p.title}</h3>
        <div class="modal-body">{p.children}</div>
        <div class="modal-buttons">
          <button type="button" ref={cancelRef} onClick={p.onCancel} data-testid="confirm-cancel">
            Cancel
          </button>
          <button
            type="button"
            class={p.danger ? "danger" : "primary"}
            disabled={p.busy}
            onClick={p.onConfirm}
            data-testid="confirm-ok"
          >
            {p.busy ? "Working…" : p.confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
