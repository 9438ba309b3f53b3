import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/** Builds the console into dist/ui/web; `cairn ui` serves it from a manifest read at start. */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  // No @preact/preset-vite: Vite's own transformer compiles JSX against Preact's automatic runtime.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  publicDir: false,
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../../../dist/ui/web", import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    // CSP forbids inline scripts; keep even tiny assets as files, never data: URLs for scripts.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 400,
  },
});
