/** Markdown table cells of the bench report. */

/** Milliseconds with about three significant digits. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return "–";
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** a / b as a factor, `–` when it means nothing. */
export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return "–";
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

/** A Markdown table; the first three columns left-aligned, the rest right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i < 3 ? "---" : "---:"));
  return [header, align, ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}
