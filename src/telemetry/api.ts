/**
 * The one place cairn loads `@opentelemetry/api`, an optional peer dependency: imported lazily,
 * once per process, the first time something could be traced. When the package is absent (or
 * `CAIRN_TELEMETRY=off`), every hook is a no-op and the import is never tried again.
 * Importing `cairn-pipelines` loads nothing of it.
 */
import type * as OtelApi from "@opentelemetry/api";

/** The OpenTelemetry API module, as imported. */
export type Otel = typeof OtelApi;

/** The importer, replaceable by tests that simulate a missing package. */
export type OtelImporter = () => Promise<Otel>;

const importApi: OtelImporter = () => import("@opentelemetry/api");

/** Undefined: not tried yet; null: off (absent, or switched off); else the loaded API. */
let api: Otel | null | undefined;
let loading: Promise<Otel | null> | undefined;

/** True when the environment switches telemetry off whatever is installed. */
const switchedOff = () => /^(off|false|0|no)$/i.test(process.env.CAIRN_TELEMETRY ?? "");

/** Loads the API once; resolves to null when it is not installed or telemetry is switched off. */
export function loadOtel(importer: OtelImporter = importApi): Promise<Otel | null> {
  if (api !== undefined) return Promise.resolve(api);
  loading ??= (async () => {
    if (switchedOff()) return null;
    try {
      const loaded = await importer();
      return loaded.trace && loaded.metrics && loaded.context ? loaded : null;
    } catch {
      // Absent (or broken): telemetry is off for this process, and the import is not retried.
      return null;
    }
  })().then((loaded) => {
    api = loaded;
    return loaded;
  });
  return loading;
}

/** The API when loaded; null when off; undefined when no load was tried yet (synchronous). */
export function otelNow(): Otel | null | undefined {
  return api;
}

/** The API, loading it on first use; a resolved value without awaiting once loaded. */
export function otel(): Otel | null | Promise<Otel | null> {
  return api !== undefined ? api : loadOtel();
}

/** Forgets the loaded API so the next use loads it again (tests only). */
export function resetOtelForTests(): void {
  api = undefined;
  loading = undefined;
}
