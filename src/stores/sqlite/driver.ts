/**
 * Loading `better-sqlite3`, an optional peer dependency: imported only when a store is opened,
 * never when cairn is imported, and reported as a missing driver when it is not installed.
 */
import { MissingDriverError } from "../../core/errors.js";
import type { SqliteDatabase } from "./sqlite-store.js";

const isModuleNotFound = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
};

/** The `better-sqlite3` `Database` constructor; `MissingDriverError` when the package is absent. */
export async function loadDriver(): Promise<new (filename: string) => SqliteDatabase> {
  try {
    return (await import("better-sqlite3")).default;
  } catch (error) {
    if (isModuleNotFound(error)) throw new MissingDriverError("sqlite", "better-sqlite3", { cause: error });
    throw error;
  }
}
