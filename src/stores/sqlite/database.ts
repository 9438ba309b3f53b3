/**
 * The part of the better-sqlite3 API the SQLite store uses, typed structurally so that cairn's
 * public types do not require `@types/better-sqlite3`.
 */

/** The part of a better-sqlite3 statement this store uses. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  safeIntegers(toggleState?: boolean): this;
}

/** A better-sqlite3 transaction function. */
export interface SqliteTransaction<A extends unknown[], R> {
  (...args: A): R;
  immediate(...args: A): R;
}

/**
 * The part of a better-sqlite3 `Database` this store uses. Typed structurally so that cairn's
 * public types do not require `@types/better-sqlite3` and users can pass their own connection.
 */
export interface SqliteDatabase {
  readonly name: string;
  readonly memory: boolean;
  readonly open: boolean;
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R>;
  close(): unknown;
}
