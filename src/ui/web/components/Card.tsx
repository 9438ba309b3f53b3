/** A label/value tile (summary header, statistics totals); `warn` colours it, `wide` spans two columns. */
export function Card({
  label,
  value,
  warn,
  wide,
  testid,
}: {
  label: string;
  value: string;
  warn?: boolean;
  wide?: boolean;
  testid?: string;
}) {
  return (
    <div class={`card${warn ? " warn" : ""}${wide ? " wide" : ""}`} data-testid={testid}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}
