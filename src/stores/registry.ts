/**
 * Picks a store by strategy name or URL and creates it. Each built-in store's module (and the
 * driver package it needs) is imported only when that store is created, so `import "cairn-pipelines"`
 * never loads `better-sqlite3`, `pg` or `ioredis`.
 */
import { resolve } from "node:path";
import { InvalidConfigError } from "../core/errors.js";
import { unknownOptionsProblem } from "../core/options.js";
import {
  AZURE_OPTIONS,
  azureConfigFromUrl,
  parseAzureConfig,
  parseS3Config,
  problemsOf,
  S3_OPTIONS,
  s3ConfigFromUrl,
} from "./cloud/config.js";
import { GuardedStore } from "./guarded-store.js";
import { POSTGRES_OPTIONS, configProblems as postgresConfigProblems } from "./postgres/config.js";
import { REDIS_OPTIONS, redisConfigProblems } from "./redis/config.js";
import { feedRetentionProblem, SQLITE_OPTIONS, sqliteConfigFromUrl } from "./sqlite/config.js";
import type { CheckpointStore } from "./types.js";

/** Loose store configuration, as users write it (camelCase; the seed's snake_case is accepted). */
export type StoreConfig = Record<string, unknown>;

/** How a store is registered. */
export interface StoreDefinition {
  /** Strategy name, e.g. `sqlite`. */
  strategy: string;
  /** Other strategy names that mean the same store (`database` for `postgres`). */
  aliases?: readonly string[];
  /** URL schemes that select this store, without the colon. */
  schemes: readonly string[];
  /** Option names the store accepts (camelCase). Anything else is a configuration error. */
  options: readonly string[];
  /** Checks a configuration; returns every problem found. */
  validate?(config: StoreConfig): string[];
  /** Turns a URL of one of `schemes` into a configuration. */
  fromUrl(url: string): StoreConfig;
  /**
   * Creates the store; may import its driver lazily. With `readOnly`, nothing may be created or
   * migrated, by this call or by the store's `setup()`, which then fails with
   * `StoreNotFoundError` (`CAIRN_NOT_FOUND`) when no store exists at the location.
   */
  create(config: StoreConfig, options?: OpenOptions): Promise<CheckpointStore>;
}

/** How a store is opened. */
export interface OpenOptions {
  /** For reading only: create and migrate nothing; no store at the location is `CAIRN_NOT_FOUND`. */
  readOnly?: boolean;
}

/** What a manager or pipeline accepts as a store: a URL, a strategy with config, or an instance. */
export type StoreSpec = string | { strategy: string; config?: StoreConfig } | CheckpointStore;

/** The file store's folder when nothing is configured, relative to the working directory. */
export const DEFAULT_BASE_PATH = ".cairn/checkpoints";

const definitions = new Map<string, StoreDefinition>();

/** Registers a store so it can be selected by strategy name and URL scheme. */
export function registerStore(definition: StoreDefinition): void {
  for (const name of [definition.strategy, ...(definition.aliases ?? [])]) definitions.set(name, definition);
  for (const scheme of definition.schemes) definitions.set(`${scheme}:`, definition);
}

/** Strategy names known to the registry, aliases included. */
export function registeredStrategies(): string[] {
  return [...definitions.keys()].filter((k) => !k.endsWith(":")).sort();
}

const snakeToCamel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Normalizes option names (`base_path` → `basePath`) and rejects unknown ones. */
function normalizeConfig(definition: StoreDefinition, config: StoreConfig): StoreConfig {
  const out: StoreConfig = {};
  const problems: string[] = [];
  const subject = `the ${definition.strategy} store`;
  const unknown = unknownOptionsProblem(subject, config, definition.options, snakeToCamel);
  if (unknown !== undefined) problems.push(unknown);
  for (const [key, value] of Object.entries(config)) {
    const name = snakeToCamel(key);
    if (definition.options.includes(name) && value !== undefined) out[name] = value;
  }
  problems.push(...(definition.validate?.(out) ?? []));
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return out;
}

function isStoreInstance(spec: unknown): spec is CheckpointStore {
  return (
    typeof spec === "object" &&
    spec !== null &&
    typeof (spec as CheckpointStore).putCheckpoint === "function" &&
    typeof (spec as CheckpointStore).listCheckpoints === "function"
  );
}

/** A resolved store choice: which definition, with a validated configuration. */
export interface ResolvedStore {
  definition: StoreDefinition;
  config: StoreConfig;
}

function definitionFor(name: string): StoreDefinition {
  const definition = definitions.get(name);
  if (!definition) {
    throw new InvalidConfigError(
      `unknown checkpoint strategy "${name}" (known: ${registeredStrategies().join(", ")})`,
    );
  }
  return definition;
}

/** Resolves a store URL such as `sqlite:./cairn.db` or `postgres://host/db`. */
export function resolveStoreUrl(url: string): ResolvedStore {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (!match) {
    throw new InvalidConfigError(
      `store URL "${url}" has no scheme (try file:./dir, sqlite:./x.db, postgres://..., redis://..., s3://bucket/prefix, azblob://container/prefix, memory:)`,
    );
  }
  const definition = definitionFor(`${(match[1] as string).toLowerCase()}:`);
  return { definition, config: normalizeConfig(definition, definition.fromUrl(url)) };
}

/**
 * Resolves what the user gave (strategy + config, URL, or nothing) without creating anything,
 * so configuration errors surface at construction time. With nothing given, `CAIRN_STORE`
 * names the store, or the file store at `.cairn/checkpoints` is used.
 */
export function resolveStore(strategy?: string, config: StoreConfig = {}): ResolvedStore {
  if (strategy === undefined) {
    const fromEnv = process.env.CAIRN_STORE;
    if (fromEnv) return resolveStoreUrl(fromEnv);
    strategy = "file";
  }
  if (strategy.includes(":")) return resolveStoreUrl(strategy);
  const definition = definitionFor(strategy);
  return { definition, config: normalizeConfig(definition, config) };
}

/** Creates a store from a spec; the result is guarded (setup once, typed errors). */
export async function openStore(
  spec?: StoreSpec | ResolvedStore,
  options: OpenOptions = {},
): Promise<GuardedStore> {
  if (isStoreInstance(spec)) return spec instanceof GuardedStore ? spec : new GuardedStore(spec);
  let resolved: ResolvedStore;
  if (spec === undefined || typeof spec === "string") resolved = resolveStore(spec);
  else if ("definition" in spec) resolved = spec;
  else resolved = resolveStore(spec.strategy, spec.config);
  return new GuardedStore(await resolved.definition.create(resolved.config, options));
}

/** Strips `scheme:` and an empty `//` authority: `file:///a/b` → `/a/b`, `file:./x` → `./x`. */
export function pathFromUrl(url: string): string {
  const rest = url.slice(url.indexOf(":") + 1);
  const path = rest.startsWith("//") ? rest.slice(rest.indexOf("/", 2)) : rest;
  return decodeURIComponent(path);
}

const isNonEmptyString = (v: unknown) => typeof v === "string" && v.length > 0;

registerStore({
  strategy: "memory",
  schemes: ["memory"],
  options: ["name"],
  fromUrl: (url) => {
    const name = pathFromUrl(url);
    return name ? { name } : {};
  },
  validate: (c) =>
    c.name !== undefined && typeof c.name !== "string" ? ["memory name must be a string"] : [],
  create: async (config) => {
    const { sharedMemoryStore, MemoryStore } = await import("./memory/memory-store.js");
    return typeof config.name === "string" ? sharedMemoryStore(config.name) : new MemoryStore();
  },
});

registerStore({
  strategy: "file",
  schemes: ["file"],
  options: ["basePath", "fsync", "feedRetention"],
  fromUrl: (url) => {
    // `?feedRetention=N` is the one query a file URL takes; any other `?` is part of the path.
    const query = /\?feedRetention=([^&#]*)$/.exec(url);
    const path = pathFromUrl(query ? url.slice(0, query.index) : url) || DEFAULT_BASE_PATH;
    return query ? { basePath: path, feedRetention: Number(query[1]) } : { basePath: path };
  },
  validate: (c) => {
    const problems: string[] = [];
    if (c.basePath !== undefined && !isNonEmptyString(c.basePath))
      problems.push("basePath must be a non-empty string");
    if (c.fsync !== undefined && typeof c.fsync !== "boolean") problems.push("fsync must be a boolean");
    const retention = c.feedRetention;
    if (retention !== undefined && !(Number.isSafeInteger(retention) && (retention as number) >= 100))
      problems.push("feedRetention must be an integer of at least 100");
    return problems;
  },
  create: async (config, options) => {
    const { FileStore } = await import("./file/file-store.js");
    return new FileStore({
      basePath: resolve((config.basePath as string | undefined) ?? DEFAULT_BASE_PATH),
      fsync: (config.fsync as boolean | undefined) ?? true,
      ...(config.feedRetention === undefined ? {} : { feedRetention: config.feedRetention as number }),
      ...(options?.readOnly ? { readOnly: true } : {}),
    });
  },
});

registerStore({
  strategy: "sqlite",
  schemes: ["sqlite"],
  options: SQLITE_OPTIONS,
  fromUrl: (url) => sqliteConfigFromUrl(url, pathFromUrl),
  validate: (c) => {
    const problems: string[] = [];
    if (c.database === undefined && !isNonEmptyString(c.dbPath)) {
      problems.push(
        "dbPath must be a non-empty string (or pass an open better-sqlite3 database as database)",
      );
    }
    if (c.tablePrefix !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,30}$/.test(String(c.tablePrefix))) {
      problems.push("tablePrefix must be letters, digits and '_'");
    }
    if (c.synchronous !== undefined && c.synchronous !== "full" && c.synchronous !== "normal") {
      problems.push(`synchronous must be "full" or "normal", got ${JSON.stringify(c.synchronous)}`);
    }
    const retention = feedRetentionProblem(c.feedRetention);
    if (retention !== undefined) problems.push(retention);
    return problems;
  },
  create: async (config, options) => {
    const { SqliteStore } = await import("./sqlite/sqlite-store.js");
    return SqliteStore.open(config, options);
  },
});

registerStore({
  strategy: "postgres",
  aliases: ["database"],
  schemes: ["postgres", "postgresql"],
  options: POSTGRES_OPTIONS,
  validate: postgresConfigProblems,
  fromUrl: (url) => ({ connectionString: url }),
  create: async (config, options) => {
    const { PostgresStore } = await import("./postgres/postgres-store.js");
    return PostgresStore.open(config, options);
  },
});

registerStore({
  strategy: "redis",
  schemes: ["redis", "rediss"],
  options: REDIS_OPTIONS,
  validate: redisConfigProblems,
  fromUrl: (url) => ({ url }),
  create: async (config, options) => {
    const { RedisStore } = await import("./redis/redis-store.js");
    return RedisStore.open(config, options);
  },
});

registerStore({
  strategy: "s3",
  schemes: ["s3"],
  options: S3_OPTIONS,
  validate: problemsOf(parseS3Config),
  fromUrl: s3ConfigFromUrl,
  create: async (config, options) => {
    const { openS3Store } = await import("./cloud/open.js");
    return openS3Store(config, options);
  },
});

registerStore({
  strategy: "azure",
  schemes: ["azblob"],
  options: AZURE_OPTIONS,
  validate: problemsOf(parseAzureConfig),
  fromUrl: azureConfigFromUrl,
  create: async (config, options) => {
    const { openAzureStore } = await import("./cloud/open.js");
    return openAzureStore(config, options);
  },
});
