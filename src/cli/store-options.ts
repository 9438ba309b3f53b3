/**
 * The store flags every command shares, and the {@link CheckpointManager} built from them.
 * A store is chosen by `--store <url>`, or by the seed's `--strategy` with `--base-path` /
 * `--db-path`; with none of them `CAIRN_STORE` names it, else the file store in
 * `.cairn/checkpoints`.
 */
import type { Command } from "commander";
import {
  CheckpointManager,
  type CheckpointManagerOptions,
  DEFAULT_BASE_PATH,
  ErrorCode,
  isCairnError,
} from "../index.js";
import { UsageError } from "./exit-codes.js";

/** Flags every command accepts. */
export interface StoreFlags {
  store?: string;
  strategy?: string;
  basePath?: string;
  dbPath?: string;
  json?: boolean;
}

/** Help text describing how the store is chosen. */
export const STORE_HELP = `Store selection (first that applies):
  --store <url>                 file:<dir>, sqlite:<file>, memory:, postgres://..., redis://...
  --strategy <name> [options]   file with --base-path <dir>, sqlite with --db-path <file>
  CAIRN_STORE=<url>             environment variable
  default                       file store in ${DEFAULT_BASE_PATH}`;

/** Adds `--store`, `--strategy`, `--base-path`, `--db-path` and `--json` to a command. */
export function addStoreOptions(command: Command): Command {
  return command
    .option("--store <url>", "store URL: file:<dir>, sqlite:<file>, memory:, postgres://..., redis://...")
    .option("--strategy <name>", "storage strategy (file, sqlite, ...), as an alternative to --store")
    .option("--base-path <dir>", `folder of the file store (default: ${DEFAULT_BASE_PATH})`)
    .option("--db-path <file>", "database file of the sqlite store")
    .option("--json", "print the result as one JSON document on stdout");
}

/** Turns the store flags into manager options; conflicting flags are a {@link UsageError}. */
export function managerOptions(
  flags: StoreFlags,
  env: NodeJS.ProcessEnv = process.env,
): CheckpointManagerOptions {
  const { store, strategy, basePath, dbPath } = flags;
  if (store !== undefined) {
    const others = [
      strategy !== undefined ? "--strategy" : undefined,
      basePath !== undefined ? "--base-path" : undefined,
      dbPath !== undefined ? "--db-path" : undefined,
    ].filter((f) => f !== undefined);
    if (others.length > 0) {
      throw new UsageError(
        `--store cannot be combined with ${others.join(", ")}: the URL names the store and its location (e.g. --store sqlite:./cairn.db)`,
      );
    }
    return { store };
  }
  if (strategy !== undefined || basePath !== undefined || dbPath !== undefined) {
    if (basePath !== undefined && dbPath !== undefined) {
      throw new UsageError("--base-path (file store) and --db-path (sqlite store) cannot be combined");
    }
    // The seed always passed --strategy; a lone --base-path or --db-path says which store it means.
    const chosen = strategy ?? (dbPath !== undefined ? "sqlite" : "file");
    if (chosen.includes(":"))
      throw new UsageError(`--strategy takes a name; pass a URL with --store ${chosen}`);
    if (basePath !== undefined && chosen !== "file") {
      throw new UsageError(`--base-path applies to the file store only, not to --strategy ${chosen}`);
    }
    if (dbPath !== undefined && chosen !== "sqlite") {
      throw new UsageError(`--db-path applies to the sqlite store only, not to --strategy ${chosen}`);
    }
    const config = basePath !== undefined ? { basePath } : dbPath !== undefined ? { dbPath } : {};
    return { strategy: chosen, config };
  }
  const fromEnv = env.CAIRN_STORE;
  if (fromEnv) return { store: fromEnv };
  return { strategy: "file", config: { basePath: DEFAULT_BASE_PATH } };
}

/** Builds a manager from the store flags; a bad `CAIRN_STORE` is reported as such. */
export function createManager(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): CheckpointManager {
  const options = managerOptions(flags, env);
  try {
    return new CheckpointManager(options);
  } catch (error) {
    const fromEnv = flags.store === undefined && options.store !== undefined;
    if (fromEnv && isCairnError(error, ErrorCode.InvalidConfig)) {
      throw new UsageError(`CAIRN_STORE=${JSON.stringify(options.store)}: ${error.message}`);
    }
    throw error;
  }
}

/** Runs `task` with a manager built from the flags, closing it afterwards whatever happens. */
export async function withManager<T>(
  flags: StoreFlags,
  task: (manager: CheckpointManager) => Promise<T>,
): Promise<T> {
  const manager = createManager(flags);
  let result: T;
  try {
    result = await task(manager);
  } catch (error) {
    // The task's error is the one worth reporting; a failing close must not hide it.
    await manager.close().catch(() => undefined);
    throw error;
  }
  await manager.close();
  return result;
}
