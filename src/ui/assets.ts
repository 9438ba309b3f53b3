/**
 * The page's files, built by Vite into `dist/ui/web` at package build time. They are read once
 * at start into a map keyed by URL path, and a request is answered from that map only: no path
 * from a request is ever joined to a folder, so no request can read a file outside it.
 */
import { readdir, readFile } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** One file of the page. */
export interface Asset {
  body: Uint8Array;
  type: string;
  /** Content-hashed names (`assets/index-3f2a.js`) never change: cached for a year. */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Where the build puts the page: two levels up from `src/ui` or `dist/ui` is the package root. */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL("../../dist/ui/web/", import.meta.url));

/** Reads every file under `dir`; an empty map when the page was not built. */
export async function loadAssets(dir: string = DEFAULT_ASSETS_DIR): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return assets;
    throw error;
  }
  for (const file of names) {
    const path = `/${relative(dir, file).split(sep).join("/")}`;
    const type = TYPES[extname(file).toLowerCase()];
    if (type === undefined) continue;
    assets.set(path, {
      body: await readFile(file),
      type,
      immutable: path.startsWith("/assets/"),
    });
  }
  const index = assets.get("/index.html");
  if (index) assets.set("/", index);
  return assets;
}
