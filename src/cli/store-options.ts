/**
 * The store flags every command shares, and the {@link CheckpointManager} built from them.
 * A store is chosen by `--store <url>`, or by the seed's `--strategy` with that store's own
 * options (`--base-path`, `--db-path`, `--connection-string`, `--redis-url`, ...); with none of
 * them `CAIRN_STORE` names it, else the file store in `.cairn/checkpoints`.
 */
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import {
  CheckpointManager,
  type CheckpointManagerOptions,
  DEFAULT_BASE_PATH,
  ErrorCode,
  isCairnError,
  type StoreConfig,
} from "../index.js";
import { resolveStoreUrl } from "../stores/registry.js";
import { COMPRESSION_ALGORITHMS, type CompressionAlgorithm } from "../transforms/compression.js";
import { readKeyFile } from "../transforms/key-file.js";
import { UsageError } from "./exit-codes.js";

/** Flags every command accepts. */
export interface StoreFlags {
  store?: string;
  strategy?: string;
  basePath?: string;
  dbPath?: string;
  tablePrefix?: string;
  connectionString?: string;
  schema?: string;
  redisUrl?: string;
  keyPrefix?: string;
  ttlSeconds?: number;
  /** Key file of the key ring (`CAIRN_KEY_FILE` when absent). */
  keyFile?: string;
  /** Compression of what the command writes (`--compression`, on commands that write). */
  compression?: string;
  json?: boolean;
}

/** A store's own flag: which config key it sets and which stores accept it. */
interface StoreFlag {
  key: Exclude<keyof StoreFlags, "store" | "strategy" | "json" | "keyFile" | "compression">;
  flag: string;
  config: string;
  strategies: readonly string[];
  /** True for a flag that says where the store is (a folder, file or server), not how to use it. */
  locates: boolean;
}

// Order matters for messages only: the seed's flags first.
const STORE_FLAGS: readonly StoreFlag[] = [
  { key: "basePath", flag: "--base-path", config: "basePath", strategies: ["file"], locates: true },
  { key: "dbPath", flag: "--db-path", config: "dbPath", strategies: ["sqlite"], locates: true },
  {
    key: "tablePrefix",
    flag: "--table-prefix",
    config: "tablePrefix",
    strategies: ["sqlite", "postgres"],
    locates: false,
  },
  {
    key: "connectionString",
    flag: "--connection-string",
    config: "connectionString",
    strategies: ["postgres"],
    locates: true,
  },
  { key: "schema", flag: "--schema", config: "schema", strategies: ["postgres"], locates: false },
  { key: "redisUrl", flag: "--redis-url", config: "url", strategies: ["redis"], locates: true },
  { key: "keyPrefix", flag: "--key-prefix", config: "keyPrefix", strategies: ["redis"], locates: false },
  { key: "ttlSeconds", flag: "--ttl-seconds", config: "ttlSeconds", strategies: ["redis"], locates: false },
];

/** The attribute names of every store option `addStoreOptions` adds (all but `--json`). */
export const STORE_OPTION_KEYS: readonly string[] = ["store", "strategy", ...STORE_FLAGS.map((f) => f.key)];

/** `database` is the seed's name for the postgres store. */
const canonical = (strategy: string) => (strategy === "database" ? "postgres" : strategy);

const storeNames = (strategies: readonly string[]) =>
  `the ${strategies.join(" and ")} store${strategies.length > 1 ? "s" : ""}`;

/** Help text describing how the store is chosen. */
export const STORE_HELP = `Store selection (first that applies):
  --store <url>                 file:<dir>, sqlite:<file>, memory:, postgres://..., redis://...
  --strategy <name> [options]   file:      --base-path <dir>
                                sqlite:    --db-path <file> [--table-prefix <p>]
                                postgres:  --connection-string <url> [--schema <name>] [--table-prefix <p>]
                                           (--strategy database is the same store)
                                redis:     --redis-url <url> [--key-prefix <p>] [--ttl-seconds <n>]
                                A store's options alone imply its strategy; options of another
                                store are a usage error. --schema, --table-prefix, --key-prefix
                                and --ttl-seconds alone apply to CAIRN_STORE's store.
  CAIRN_STORE=<url>             environment variable
  default                       file store in ${DEFAULT_BASE_PATH}

Encrypted runs: --key-file <path> (or CAIRN_KEY_FILE) names the key file (cairn keys generate).`;

function parseTtl(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new CommanderArgumentError("expected a positive whole number of seconds");
  }
  return Number(value);
}

const collectStores = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/**
 * Adds `--store`, `--strategy`, every store's own options and `--json` to a command. With
 * `storeTwice`, `--store` may be given twice (`compare --store A --store B`) and is an array.
 */
export function addStoreOptions(command: Command, storeTwice = false): Command {
  const storeHelp = "store URL: file:<dir>, sqlite:<file>, memory:, postgres://..., redis://...";
  return (
    storeTwice
      ? command.option("--store <url>", `${storeHelp}; give it twice to compare two stores`, collectStores)
      : command.option("--store <url>", storeHelp)
  )
    .option("--strategy <name>", "storage strategy (file, sqlite, postgres, redis, ...), instead of --store")
    .option("--base-path <dir>", `file: folder of the store (default: ${DEFAULT_BASE_PATH})`)
    .option("--db-path <file>", "sqlite: database file")
    .option("--table-prefix <p>", "sqlite, postgres: prefix of the table names (default: cairn_)")
    .option("--connection-string <url>", "postgres: postgres://user:password@host:port/database")
    .option("--schema <name>", "postgres: schema holding the tables (default: public)")
    .option("--redis-url <url>", "redis: redis://host:port/db")
    .option("--key-prefix <p>", "redis: prefix of every key (default: cairn:)")
    .option("--ttl-seconds <n>", "redis: a run's keys expire this long after its last use", parseTtl)
    .option("--key-file <path>", "key file of encrypted runs (default: CAIRN_KEY_FILE; see cairn keys)")
    .option("--json", "print the result as one JSON document on stdout");
}

/** Adds `--compression` to a command that writes checkpoints. */
export function addCompressionOption(command: Command): Command {
  return command.option(
    "--compression <algorithm>",
    `compress what is written: ${COMPRESSION_ALGORITHMS.join(", ")} (compressed records are read either way)`,
  );
}

/** The store-specific flags that were given, in {@link STORE_FLAGS} order. */
function givenStoreFlags(flags: StoreFlags): StoreFlag[] {
  return STORE_FLAGS.filter((f) => flags[f.key] !== undefined);
}

/** True when any flag chooses the store (otherwise `CAIRN_STORE` or the default applies). */
export function storeFlagsGiven(flags: StoreFlags): boolean {
  return flags.store !== undefined || flags.strategy !== undefined || givenStoreFlags(flags).length > 0;
}

/** The strategy the flags mean: `--strategy`, or the one store that accepts every given option. */
function chosenStrategy(strategy: string | undefined, given: readonly StoreFlag[]): string {
  if (strategy !== undefined) {
    if (strategy.includes(":"))
      throw new UsageError(`--strategy takes a name; pass a URL with --store ${strategy}`);
    for (const f of given) {
      if (!f.strategies.includes(canonical(strategy))) {
        throw new UsageError(
          `${f.flag} applies to ${storeNames(f.strategies)} only, not to --strategy ${strategy}`,
        );
      }
    }
    return strategy;
  }
  // The seed always passed --strategy; a store's own options alone say which store they mean.
  const candidates = STORE_FLAGS.flatMap((f) => f.strategies).filter(
    (s, i, all) => all.indexOf(s) === i && given.every((f) => f.strategies.includes(s)),
  );
  const flags = given.map((f) => f.flag).join(", ");
  if (candidates.length === 0) {
    const owners = given.map((f) => `${f.flag} (${f.strategies.join("/")})`).join(", ");
    throw new UsageError(`${owners} belong to different stores and cannot be combined`);
  }
  if (candidates.length > 1) {
    throw new UsageError(`${flags} applies to ${storeNames(candidates)}: say which with --strategy`);
  }
  return candidates[0] as string;
}

/** True when pg finds a user name to connect as in the environment, as it reads it. */
const pgUser = (env: NodeJS.ProcessEnv) =>
  Boolean(env.PGUSER || (process.platform === "win32" ? env.USERNAME : env.USER));

/** The strategy and configuration `CAIRN_STORE` names; undefined when it is not a valid store URL. */
function storeFromEnv(url: string): { strategy: string; config: StoreConfig } | undefined {
  try {
    const { definition, config } = resolveStoreUrl(url);
    return { strategy: definition.strategy, config };
  } catch (error) {
    // An invalid CAIRN_STORE is reported where it is used as the store; here it applies nothing.
    if (isCairnError(error, ErrorCode.InvalidConfig)) return undefined;
    throw error;
  }
}

/** Turns the store flags into manager options; conflicting flags are a {@link UsageError}. */
export function managerOptions(
  flags: StoreFlags,
  env: NodeJS.ProcessEnv = process.env,
): CheckpointManagerOptions {
  const { store, strategy } = flags;
  const given = givenStoreFlags(flags);
  if (store !== undefined) {
    const others = [...(strategy !== undefined ? ["--strategy"] : []), ...given.map((f) => f.flag)];
    if (others.length > 0) {
      throw new UsageError(
        `--store cannot be combined with ${others.join(", ")}: the URL names the store and its location (e.g. --store sqlite:./cairn.db)`,
      );
    }
    return { store };
  }
  const fromEnv = env.CAIRN_STORE;
  // `--schema s` (or --table-prefix, --key-prefix, --ttl-seconds) alone says how to use a store,
  // not where it is: it applies to the default store, CAIRN_STORE, when that store accepts it.
  if (strategy === undefined && fromEnv && given.length > 0 && given.every((f) => !f.locates)) {
    const envStore = storeFromEnv(fromEnv);
    if (envStore && given.every((f) => f.strategies.includes(envStore.strategy))) {
      const config: StoreConfig = { ...envStore.config };
      for (const f of given) config[f.config] = flags[f.key];
      return { strategy: envStore.strategy, config };
    }
  }
  if (strategy !== undefined || given.length > 0) {
    const chosen = chosenStrategy(strategy, given);
    const config: StoreConfig = {};
    for (const f of given) config[f.config] = flags[f.key];
    if (canonical(chosen) === "postgres" && config.connectionString === undefined && !pgUser(env)) {
      // pg would send a startup packet without a user; the server's refusal names no fix.
      throw new UsageError(
        `${given.map((f) => f.flag).join(", ") || `--strategy ${chosen}`} names no PostgreSQL server and user: ` +
          "give --connection-string postgres://user@host/db or --store postgres://user@host/db " +
          "(or set CAIRN_STORE to one, which --schema and --table-prefix then apply to), or set PGUSER",
      );
    }
    return { strategy: chosen, config };
  }
  if (fromEnv) return { store: fromEnv };
  return { strategy: "file", config: { basePath: DEFAULT_BASE_PATH } };
}

/** The key file the flags or `CAIRN_KEY_FILE` name; undefined when neither does. */
export function keyFilePath(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flags.keyFile ?? (env.CAIRN_KEY_FILE || undefined);
}

/**
 * The at-rest options the flags give: `encryption` from the key file (`--key-file`, else
 * `CAIRN_KEY_FILE`), `compression` from `--compression`.
 */
export async function atRestOptions(
  flags: StoreFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Pick<CheckpointManagerOptions, "compression" | "encryption">> {
  const path = keyFilePath(flags, env);
  const options: Pick<CheckpointManagerOptions, "compression" | "encryption"> = {};
  if (path !== undefined) options.encryption = await readKeyFile(path);
  if (flags.compression !== undefined) options.compression = flags.compression as CompressionAlgorithm;
  return options;
}

/**
 * Builds a manager from the store flags and the key file (`defaults`: at-rest settings used
 * where the flags give none); a bad `CAIRN_STORE` is reported as such. */
export async function createManager(
  flags: StoreFlags,
  env: NodeJS.ProcessEnv = process.env,
  readOnly = false,
  defaults: Pick<CheckpointManagerOptions, "compression" | "encryption"> = {},
): Promise<CheckpointManager> {
  // The flags' at-rest settings win over `defaults` (a pipeline file's), one setting at a time.
  const options = { ...managerOptions(flags, env), ...defaults, ...(await atRestOptions(flags, env)) };
  try {
    return new CheckpointManager(readOnly ? { ...options, readOnly } : options);
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
  readOnly = false,
): Promise<T> {
  const manager = await createManager(flags, process.env, readOnly);
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

/**
 * {@link withManager} for a command that only reads: the store is opened read-only, so nothing
 * is created or migrated, and a location with no store is `CAIRN_NOT_FOUND` (exit 3).
 */
export function withReader<T>(
  flags: StoreFlags,
  task: (manager: CheckpointManager) => Promise<T>,
): Promise<T> {
  return withManager(flags, task, true);
}
