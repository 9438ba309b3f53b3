/** Renders stored rows as text for backups, shared by the SQL stores. */

/** A row as indented JSON: a BigInt as its decimal text, bytes as `{ "base64": ... }`. */
export function renderRow(row: Record<string, unknown>): string {
  const plain: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    plain[column] = value instanceof Uint8Array ? { base64: Buffer.from(value).toString("base64") } : value;
  }
  return JSON.stringify(
    plain,
    (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value),
    2,
  );
}
