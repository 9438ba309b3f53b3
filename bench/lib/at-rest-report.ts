/** The at-rest scenario's tables in the bench report (issue 13). */
import type { AtRestResult } from "./at-rest.js";
import { AT_REST_VARIANTS } from "./at-rest.js";
import { ms, ratio, table } from "./markdown.js";

/** What the at-rest tables measure. */
export function atRestNote(results: AtRestResult[]): string {
  const setting = results[0]?.compression ?? "the recommended compression";
  return (
    `Compression: ${setting}; encryption is AES-256-GCM with a per-run data key ` +
    "wrapped by a 32-byte key-encryption key (compression off). Bytes: the growth run (each stage adds a " +
    "~100 KB output) written once plain and once compressed into fresh stores, against the sum of its outputs; " +
    "file = sum of file sizes, sqlite = database file after close, redis = sum of `MEMORY USAGE` of the run's " +
    "keys, postgres = `pg_total_relation_size` (TOAST compresses the plain run too). Times: `createCheckpoint` " +
    "(fresh run per round) and `loadLatestCheckpoint` with the output decoded, the three settings interleaved " +
    "in the same rounds. Targets (issue 13): compressed bytes ≤ 0.3 × the outputs on file, sqlite and redis; " +
    "1 MB compressed write ≤ 1.0 × off on the file store, ≤ 1.2 × on the others; encrypted write and read " +
    "≤ 1.1 × off."
  );
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const BYTES_TARGET = 0.3;

/** Growth bytes, plain and compressed, per store. */
export function atRestBytesTable(results: AtRestResult[]): string {
  const rows = results.flatMap((r) => (r.growth ? [{ store: r.store, ...r.growth }] : []));
  return table(
    [
      "store",
      "stages",
      "sum of outputs",
      "plain",
      "plain / outputs",
      "compressed",
      "compressed / outputs",
      "target",
      "measured as",
      "sqlite body columns only: plain / outputs, compressed / outputs",
    ],
    rows.map((r) => [
      r.store,
      String(r.stages),
      mb(r.outputBytes),
      mb(r.plainBytes),
      ratio(r.plainBytes, r.outputBytes),
      mb(r.compressedBytes),
      ratio(r.compressedBytes, r.outputBytes),
      r.store === "postgres" ? "–" : `≤ ${BYTES_TARGET}×`,
      r.method,
      r.plainDataBytes === undefined || r.compressedDataBytes === undefined
        ? "–"
        : `${ratio(r.plainDataBytes, r.outputBytes)}, ${ratio(r.compressedDataBytes, r.outputBytes)}`,
    ]),
  );
}

/** Write and read p50 off, compressed and encrypted, with the ratios the targets are about. */
export function atRestTimesTable(results: AtRestResult[]): string {
  const lines: string[][] = [];
  for (const result of results) {
    const cases = [...new Set(result.rows.map((r) => r.case))];
    for (const label of cases) {
      const p50 = (variant: string) =>
        result.rows.find((r) => r.case === label && r.variant === variant)?.summary.p50Ms ?? Number.NaN;
      const off = p50(AT_REST_VARIANTS.off);
      const compressed = p50(AT_REST_VARIANTS.compressed);
      const encrypted = p50(AT_REST_VARIANTS.encrypted);
      const compressTarget =
        label === "write 1 MB"
          ? result.store === "file"
            ? "≤ 1.0×"
            : result.store === "memory"
              ? "–"
              : "≤ 1.2×"
          : "–";
      lines.push([
        result.store,
        label,
        ms(off),
        ms(compressed),
        ratio(compressed, off),
        compressTarget,
        ms(encrypted),
        ratio(encrypted, off),
        "≤ 1.1×",
      ]);
    }
  }
  const body = table(
    [
      "store",
      "operation",
      "off p50 ms",
      "compressed p50 ms",
      "compressed / off",
      "target",
      "encrypted p50 ms",
      "encrypted / off",
      "target",
    ],
    lines,
  );
  const skipped = results.flatMap((r) => (r.encryptionSkipped ? [`${r.store}: ${r.encryptionSkipped}`] : []));
  return skipped.length > 0 ? `${body}\n\nEncrypted variant not measured on ${skipped.join("; ")}.` : body;
}
