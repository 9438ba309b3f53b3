/**
 * SVG → PNG in-process with resvg. resvg draws no text without a font and a fresh machine may
 * have none, so the DejaVu Sans files of the `dejavu-fonts-ttf` package are always loaded and
 * system fonts never are: the image looks the same everywhere. resvg is imported on first use,
 * so loading cairn never loads its native binary.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { MARK_COLORS } from "./palette.js";

/** Options of {@link renderPng}. */
export interface PngOptions {
  /** Scale factor (default 2: readable text on high-density screens). */
  zoom?: number;
  /** Upper bound of the image width in pixels; the zoom shrinks to fit (default 8192). */
  maxWidth?: number;
  /** Load the bundled fonts (default true); without them resvg draws no text at all. */
  fonts?: boolean;
}

/** Paths of the DejaVu Sans regular and bold TTF files shipped by `dejavu-fonts-ttf`. */
export function fontFiles(): string[] {
  const pkg = createRequire(import.meta.url).resolve("dejavu-fonts-ttf/package.json");
  const dir = join(dirname(pkg), "ttf");
  return [join(dir, "DejaVuSans.ttf"), join(dir, "DejaVuSans-Bold.ttf")];
}

/** Renders an SVG document to PNG bytes; malformed SVG throws. */
export async function renderPng(svg: string, options: PngOptions = {}): Promise<Buffer> {
  const { Resvg } = await import("@resvg/resvg-js");
  const font =
    options.fonts === false
      ? { loadSystemFonts: false }
      : {
          fontFiles: fontFiles(),
          loadSystemFonts: false,
          defaultFontFamily: "DejaVu Sans",
          sansSerifFamily: "DejaVu Sans",
        };
  const probe = new Resvg(svg, { font: { loadSystemFonts: false } });
  const zoom = Math.min(options.zoom ?? 2, (options.maxWidth ?? 8192) / Math.max(1, probe.width));
  const resvg = new Resvg(svg, {
    font,
    fitTo: { mode: "zoom", value: zoom },
    background: MARK_COLORS.background,
    shapeRendering: 2,
    textRendering: 1,
  });
  return resvg.render().asPng();
}
