/** A label/value tile (summary header, statistics totals); `warn` colours it. */
export function Card({
  label,
  value,
  warn,
  testid,
}: {
  label: string;
  value: string;
  warn?: boolean;
  testid?: string;
}) {
  return (
    <div class={warn ? "card warn" : "card"} data-testid={testid}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}
