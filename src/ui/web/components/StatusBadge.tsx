/** A coloured status label; the class names map statuses to colours in style.css. */
export function StatusBadge({ status, testid = "status" }: { status: string; testid?: string }) {
  const cls = status.replace(/[^a-z_]/gi, "").toLowerCase();
  return (
    <span class={`badge s-${cls}`} data-testid={testid} data-status={status}>
      {status.replace(/_/g, " ")}
    </span>
  );
}
