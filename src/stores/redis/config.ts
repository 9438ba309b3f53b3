/**
 * Configuration of the Redis store: validation (every problem reported at once) and the
 * connection settings derived from it. Kept apart from the store so the registry can validate
 * a configuration without connecting.
 */
import { InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";
import { DEFAULT_KEY_PREFIX, KEY_PREFIX_PATTERN, normalizeKeyPrefix } from "./keys.js";

/**
 * The part of an ioredis client the store uses. Typed structurally so cairn's public types do
 * not need ioredis and users can pass their own client.
 */
export interface RedisClient {
  readonly status: string;
  readonly options: { host?: string; port?: number; db?: number; keyPrefix?: string; tls?: unknown };
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: "error" | "ready" | "end", listener: (error: Error) => void): unknown;
  removeListener(event: "error" | "ready", listener: (error: Error) => void): unknown;
  /** The connection's socket (ioredis sets it once connecting). */
  readonly stream?: { unref(): unknown };
  /** A new connection with the same options (ioredis); the feed's blocking reads use one. */
  duplicate?(): RedisClient;
}

/** Options of the Redis store (camelCase). */
export interface RedisStoreConfig {
  /** `redis://[user:pass@]host[:port][/db][?keyPrefix=..&ttlSeconds=..&feedRetention=..]`, or `rediss://` for TLS. */
  url?: string;
  /** Server host; default `localhost`. */
  host?: string;
  /** Server port; default 6379. */
  port?: number;
  /** Database number; default 0. */
  db?: number;
  /** ACL user name (AUTH username password). */
  username?: string;
  /** Password (AUTH). */
  password?: string;
  /** TLS: `true`, or Node `tls.connect` options. */
  tls?: boolean | Record<string, unknown>;
  /** Prefix of every key; default `cairn:`; a missing trailing `:` is added. */
  keyPrefix?: string;
  /** When set, a run's keys expire this many seconds after its last write or read. */
  ttlSeconds?: number;
  /** How long `open()` waits for the server; default 5000. */
  connectTimeoutMs?: number;
  /** About how many changes the feed stream keeps (`XADD MAXLEN ~`); at least 100, default 100,000. */
  feedRetention?: number;
  /** An ioredis client to use instead; the caller keeps ownership and closes it. */
  client?: RedisClient;
}

/** Option names the store accepts. */
export const REDIS_OPTIONS = [
  "url",
  "host",
  "port",
  "db",
  "username",
  "password",
  "tls",
  "keyPrefix",
  "ttlSeconds",
  "connectTimeoutMs",
  "feedRetention",
  "client",
] as const;

/** Where to connect, as the store hands it to ioredis. */
export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, unknown>;
}

/** A validated configuration. */
export interface RedisSettings {
  prefix: string;
  /** 0 when keys never expire. */
  ttlSeconds: number;
  connectTimeoutMs: number;
  /** About how many changes the feed keeps. */
  feedRetention: number;
  /** Set when the store opens its own client. */
  connection?: RedisConnection;
  /** Set when the caller passed a client. */
  client?: RedisClient;
  /** `redis://host:port/db (prefix x)`, never with a password. */
  location: string;
}

const URL_PARAMS = ["keyPrefix", "ttlSeconds", "feedRetention"];

/** The feed's retention when none is configured, and the least accepted. */
export const DEFAULT_FEED_RETENTION = 100_000;
export const MIN_FEED_RETENTION = 100;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;

function locationOf(c: { host: string; port: number; db: number; tls?: unknown }, prefix: string): string {
  const host = c.host.includes(":") ? `[${c.host}]` : c.host;
  return `${c.tls ? "rediss" : "redis"}://${host}:${c.port}/${c.db} (prefix ${prefix})`;
}

/** Reads a `redis://` URL; adds what is wrong to `problems`. */
function parseUrl(url: string, problems: string[]) {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    problems.push("url is not a valid URL (expected redis://host:port/db)");
    return undefined;
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    problems.push(`url must start with redis:// or rediss://, not ${u.protocol}//`);
  }
  const db = u.pathname === "" || u.pathname === "/" ? 0 : Number(u.pathname.slice(1));
  if (!isInt(db, 0)) problems.push(`url path must be /<database number>, not ${u.pathname}`);
  const params: Record<string, string> = {};
  for (const [name, value] of u.searchParams) {
    if (URL_PARAMS.includes(name)) params[name] = value;
    else problems.push(`url has an unknown query parameter "${name}" (known: ${URL_PARAMS.join(", ")})`);
  }
  const decode = (s: string) => (s ? decodeURIComponent(s) : undefined);
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost",
    port: u.port ? Number(u.port) : 6379,
    db,
    username: decode(u.username),
    password: decode(u.password),
    tls: u.protocol === "rediss:",
    params,
  };
}

function takeParam(
  config: Record<string, unknown>,
  fromUrl: Record<string, string>,
  name: string,
  problems: string[],
) {
  const inConfig = config[name];
  const inUrl = fromUrl[name];
  if (inUrl === undefined) return inConfig;
  if (inConfig !== undefined && String(inConfig) !== inUrl) {
    problems.push(`${name} is given both in the url (${inUrl}) and in the config (${String(inConfig)})`);
  }
  // Query values are text; a number from the URL must be plain digits.
  const numeric = name === "ttlSeconds" || name === "feedRetention";
  return numeric ? (/^\d+$/.test(inUrl) ? Number(inUrl) : inUrl) : inUrl;
}

/** Validates a configuration; throws {@link InvalidConfigError} listing every problem. */
export function parseRedisConfig(config: Record<string, unknown>): RedisSettings {
  const problems: string[] = [];
  const c = config as RedisStoreConfig & Record<string, unknown>;
  const unknown = unknownOptionsProblem("the redis store", config, REDIS_OPTIONS);
  if (unknown !== undefined) problems.push(unknown);
  const connectionKeys = ["url", "host", "port", "db", "username", "password", "tls", "connectTimeoutMs"];
  const given = (keys: string[]) => keys.filter((k) => c[k] !== undefined);

  let parsed: ReturnType<typeof parseUrl>;
  if (c.client !== undefined) {
    const client = c.client as Partial<RedisClient> | null;
    if (typeof client?.defineCommand !== "function" || typeof client.call !== "function") {
      problems.push("client must be an ioredis client (new Redis(...))");
    } else if (client.status === "end") {
      problems.push("client is closed");
    } else if (client.options?.keyPrefix) {
      // ioredis would prefix the declared keys but not those the scripts build: use cairn's.
      problems.push("client has the ioredis keyPrefix option set; give keyPrefix to cairn instead");
    }
    const extra = given(connectionKeys);
    if (extra.length > 0) problems.push(`client is given, so ${extra.join(", ")} must not be`);
  } else if (c.url !== undefined) {
    if (typeof c.url !== "string") problems.push("url must be a string");
    else parsed = parseUrl(c.url, problems);
    const extra = given(["host", "port", "db"]);
    if (extra.length > 0)
      problems.push(`url is given, so ${extra.join(", ")} must not be (put them in the url)`);
    if (parsed && (parsed.username || parsed.password) && given(["username", "password"]).length > 0) {
      problems.push("the url holds credentials, so username and password must not be given too");
    }
  }
  if (c.host !== undefined && (typeof c.host !== "string" || c.host.length === 0)) {
    problems.push("host must be a non-empty string");
  }
  if (c.port !== undefined && !isInt(c.port, 1, 65535))
    problems.push("port must be an integer from 1 to 65535");
  if (parsed && !isInt(parsed.port, 1, 65535)) problems.push("url port must be from 1 to 65535");
  if (c.db !== undefined && !isInt(c.db, 0)) problems.push("db must be a non-negative integer");
  if (c.username !== undefined && (typeof c.username !== "string" || c.username.length === 0)) {
    problems.push("username must be a non-empty string");
  }
  if (c.password !== undefined && typeof c.password !== "string") problems.push("password must be a string");
  if (c.tls !== undefined && typeof c.tls !== "boolean" && !isObject(c.tls)) {
    problems.push("tls must be a boolean or an object of TLS options");
  }
  if (c.connectTimeoutMs !== undefined && !isInt(c.connectTimeoutMs, 1)) {
    problems.push("connectTimeoutMs must be a positive integer");
  }
  const keyPrefix = takeParam(c, parsed?.params ?? {}, "keyPrefix", problems) ?? DEFAULT_KEY_PREFIX;
  if (typeof keyPrefix !== "string" || !KEY_PREFIX_PATTERN.test(keyPrefix)) {
    problems.push("keyPrefix must be 1 to 100 of letters, digits and . _ : { } / -");
  }
  const ttl = takeParam(c, parsed?.params ?? {}, "ttlSeconds", problems);
  if (ttl !== undefined && !isInt(ttl, 1))
    problems.push(`ttlSeconds must be a positive integer, not ${String(ttl)}`);
  const retention = takeParam(c, parsed?.params ?? {}, "feedRetention", problems);
  if (retention !== undefined && !isInt(retention, MIN_FEED_RETENTION))
    problems.push(
      `feedRetention must be an integer of at least ${MIN_FEED_RETENTION}, not ${String(retention)}`,
    );
  if (problems.length > 0) throw new InvalidConfigError(problems);

  const prefix = normalizeKeyPrefix(keyPrefix as string);
  const settings = {
    prefix,
    ttlSeconds: (ttl as number | undefined) ?? 0,
    connectTimeoutMs: c.connectTimeoutMs ?? 5000,
    feedRetention: (retention as number | undefined) ?? DEFAULT_FEED_RETENTION,
  };
  if (c.client !== undefined) {
    const o = c.client.options ?? {};
    const where = { host: o.host ?? "localhost", port: o.port ?? 6379, db: o.db ?? 0, tls: o.tls };
    return { ...settings, client: c.client, location: locationOf(where, prefix) };
  }
  const tlsOption =
    c.tls === true || (c.tls === undefined && parsed?.tls) ? {} : isObject(c.tls) ? c.tls : undefined;
  const connection: RedisConnection = {
    host: parsed?.host ?? c.host ?? "localhost",
    port: parsed?.port ?? c.port ?? 6379,
    db: parsed?.db ?? c.db ?? 0,
  };
  const username = parsed?.username ?? c.username;
  const password = parsed?.password ?? c.password;
  if (username !== undefined) connection.username = username;
  if (password !== undefined) connection.password = password;
  if (tlsOption) connection.tls = tlsOption;
  return { ...settings, connection, location: locationOf(connection, prefix) };
}

/** Every problem with a configuration, for validating without opening (empty when fine). */
export function redisConfigProblems(config: Record<string, unknown>): string[] {
  try {
    parseRedisConfig(config);
    return [];
  } catch (error) {
    if (error instanceof InvalidConfigError) return [...error.problems];
    throw error;
  }
}
