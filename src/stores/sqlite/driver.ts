/**
 * Loading `better-sqlite3`, an optional peer dependency: imported only when a store is opened,
 * never when cairn is imported, and reported as a missing driver when it is not installed.
 */
import { loadDriver as load } from "../driver.js";
import type { SqliteDatabase } from "./sqlite-store.js";

type DatabaseConstructor = new (filename: string, options?: { fileMustExist?: boolean }) => SqliteDatabase;

/** The `better-sqlite3` `Database` constructor; `MissingDriverError` when the package is absent. */
export function loadDriver(): Promise<DatabaseConstructor> {
  return load(
    "sqlite",
    "better-sqlite3",
    () => import("better-sqlite3"),
    (m) => (typeof m.default === "function" ? (m.default as DatabaseConstructor) : undefined),
  );
}
