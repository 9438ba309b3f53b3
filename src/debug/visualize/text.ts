/** Text helpers of the renderers: XML escaping, cleaning, width estimates and truncation. */

// Advance widths (1/1000 em) of ASCII 32..126 in DejaVu Sans and DejaVu Sans Bold, the fonts
// the PNG renderer embeds; they size nodes so that text stays inside them.
const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636,
  636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295,
  295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838,
  500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521,
  392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696,
  696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372,
  372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838,
  500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595,
  478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];
/** Width assumed for any other character: wider than every symbol the renderers use. */
const OTHER = 1000;

/** Escapes text for XML content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/**
 * One line of printable text: control characters and line breaks become spaces, runs of spaces
 * shrink to one, and characters XML cannot hold (lone surrogates, U+FFFE/U+FFFF) are dropped.
 */
export function cleanText(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += " ";
    else if ((code >= 0xd800 && code <= 0xdfff) || code === 0xfffe || code === 0xffff) continue;
    else out += ch;
  }
  return out.replace(/ {2,}/g, " ").trim();
}

/** Estimated width in pixels of `text` in DejaVu Sans at `size` px. */
export function textWidth(text: string, size: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let units = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    units += code >= 32 && code < 127 ? (table[code - 32] ?? OTHER) : OTHER;
  }
  return (units * size) / 1000;
}

/** Cuts `text` (cleaned) to fit `maxWidth` pixels, ending it with `…` when cut. */
export function fitText(text: string, maxWidth: number, size: number, bold = false): string {
  const clean = cleanText(text);
  if (textWidth(clean, size, bold) <= maxWidth) return clean;
  const chars = Array.from(clean);
  let end = chars.length;
  while (end > 0 && textWidth(`${chars.slice(0, end).join("").trimEnd()}…`, size, bold) > maxWidth) end--;
  return `${chars.slice(0, end).join("").trimEnd()}…`;
}

/** `2024-01-01T12:00:00.000Z` → `12:00:00 UTC · 2024-01-01`. */
export function formatUtc(date: Date): string {
  if (Number.isNaN(date.getTime())) return "unknown time";
  const iso = date.toISOString();
  return `${iso.slice(11, 19)} UTC · ${iso.slice(0, 10)}`;
}

/** Word-wraps `text` (cleaned) into at most `maxLines` lines of `maxWidth` pixels; the last one is cut. */
export function wrapText(
  text: string,
  maxWidth: number,
  size: number,
  maxLines: number,
  bold = false,
): string[] {
  const words = cleanText(text)
    .split(" ")
    .filter((w) => w.length > 0);
  const lines: string[] = [];
  let current = "";
  let i = 0;
  for (; i < words.length && lines.length < maxLines - 1; i++) {
    const word = words[i] ?? "";
    const candidate = current ? `${current} ${word}` : word;
    if (textWidth(candidate, size, bold) <= maxWidth) current = candidate;
    else if (!current) {
      // A single word wider than a line is cut on its own line.
      lines.push(fitText(word, maxWidth, size, bold));
    } else {
      lines.push(current);
      current = word;
    }
  }
  const rest = [current, ...words.slice(i)].filter((w) => w.length > 0).join(" ");
  if (rest) lines.push(fitText(rest, maxWidth, size, bold));
  return lines;
}

/** A coordinate for SVG attributes, with at most one decimal. */
export function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}
