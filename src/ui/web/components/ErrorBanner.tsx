import type { ApiError } from "../api";

/** A visible banner for an API error, naming its stable code (CAIRN_…). */
export function ErrorBanner({ error, onClose }: { error: ApiError | undefined; onClose?: () => void }) {
  if (!error) return null;
  const hint =
    error.code === "CAIRN_UI_UNAUTHORIZED"
      ? " Open the one-time login link `cairn ui` printed, or send the token as a bearer header."
      : "";
  return (
    <div class="error-banner" role="alert" data-testid="error" data-code={error.code}>
      <strong class="error-code">{error.code}</strong>
      <span class="error-message">
        {error.message}
        {hint}
      </span>
      {onClose && (
        <button type="button" class="link-button" onClick={onClose} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}
