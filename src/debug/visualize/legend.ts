/** The legend of the SVG checkpoint graph. */
import { LEGEND_STATUSES, MARK_COLORS, STATUS_COLORS, statusLabel } from "./palette.js";
import { escapeXml, fmt, textWidth } from "./text.js";

/** The legend: one swatch per status, then the invalid ring, the removed parent and the marks. */
export function renderLegend(x: number, top: number, maxWidth: number): { svg: string; bottom: number } {
  const items: { label: string; swatch: string }[] = LEGEND_STATUSES.map((key) => ({
    label: statusLabel(key),
    swatch: `fill="${STATUS_COLORS[key]}" stroke="${MARK_COLORS.outline}" stroke-opacity="0.55"`,
  }));
  items.push(
    {
      label: "invalid (fails validation; ⊘ quarantined by repair)",
      swatch: `fill="${MARK_COLORS.background}" stroke="${MARK_COLORS.invalid}" stroke-width="2.5" stroke-dasharray="4 2"`,
    },
    {
      label: "removed parent",
      swatch: `fill="${MARK_COLORS.background}" stroke="${MARK_COLORS.removed}" stroke-width="1.5" stroke-dasharray="3 2"`,
    },
    { label: "✗ error of a failed stage", swatch: `fill="${MARK_COLORS.failure}"` },
    { label: "↻ ×N: the run resumed from it", swatch: "" },
  );
  const rowHeight = 22;
  const lead = "Legend";
  const leadWidth = textWidth(lead, 12, true) + 14;
  const parts = [
    `<g class="legend"><text x="${x}" y="${top + 15}" font-size="12" font-weight="bold" fill="${MARK_COLORS.text}">${lead}</text>`,
  ];
  let cx = x + leadWidth;
  let row = 0;
  for (const item of items) {
    const w = (item.swatch ? 22 : 0) + textWidth(item.label, 12) + 18;
    if (cx + w > x + maxWidth && cx > x + leadWidth) {
      row++;
      cx = x + leadWidth;
    }
    const y = top + row * rowHeight;
    if (item.swatch) {
      parts.push(`<rect x="${fmt(cx)}" y="${y + 4}" width="16" height="13" rx="3" ry="3" ${item.swatch}/>`);
    }
    const labelX = item.swatch ? cx + 22 : cx;
    parts.push(
      `<text x="${fmt(labelX)}" y="${y + 15}" font-size="12" fill="${MARK_COLORS.text}">${escapeXml(item.label)}</text>`,
    );
    cx += w;
  }
  parts.push("</g>");
  return { svg: parts.join(""), bottom: top + (row + 1) * rowHeight };
}
