/**
 * The object stores' key layout, relative to the configured prefix:
 *
 *   cairn-layout.json                          {"layout":1}, create-only by a writer's setup
 *   tips/<runId>.json                          the run's tip object: state and commit point (`tip.ts`)
 *   runs/<runId>/cp/<checkpointId>.<sfx>.json  one checkpoint record (JSON of CheckpointRecord)
 *   runs/<runId>/out/<hash>                    an output body, content-addressed
 *   runs/<runId>/pages/<sfx>.json              an immutable page of older manifest entries
 *   ids/<checkpointId>                         {"run","seq"}: which run holds an id
 *   index/<hex(name)>/<inv(createdAt)>~<inv(runId)>~   runs-by-name entry (a hint, `runs-index.ts`)
 *   meta/<key>.json                            a named value outside every run (`getMeta`/`putMeta`)
 *
 * `<sfx>` is 8 random base36 characters, new for every write, so no write ever overwrites an
 * object a committed tip refers to. Ids and run ids match `NAME_PATTERN` (`[A-Za-z0-9._-]`), so
 * they need no escaping and a run id can never reach into another run's folder.
 */
import { randomBytes } from "node:crypto";

/** The layout object's key. */
export const LAYOUT_KEY = "cairn-layout.json";

/** Length of the random suffix of cp objects and pages. */
export const SUFFIX_LENGTH = 8;

/** 8 random base36 characters. */
export function newSuffix(): string {
  const bytes = randomBytes(SUFFIX_LENGTH);
  let out = "";
  for (const b of bytes) out += (b % 36).toString(36);
  return out;
}

/** A random nonce for a tip or claim body: every write of one differs. */
export const newNonce = (): string => randomBytes(9).toString("base64url");

/** The run's tip object. */
export const tipKey = (runId: string): string => `tips/${runId}.json`;

/** Everything stored for a run apart from its tip. */
export const runPrefix = (runId: string): string => `runs/${runId}/`;

/** The folder of a run's checkpoint objects. */
export const cpPrefix = (runId: string): string => `runs/${runId}/cp/`;

/** One checkpoint object. */
export const cpKey = (runId: string, checkpointId: string, suffix: string): string =>
  `runs/${runId}/cp/${checkpointId}.${suffix}.json`;

/** The run and checkpoint id of a cp object's key; undefined for any other key. */
export function parseCpKey(key: string): { runId: string; checkpointId: string; suffix: string } | undefined {
  const match = /^runs\/([^/]+)\/cp\/([^/]+)\.([0-9a-z]{8})\.json$/.exec(key);
  if (!match) return undefined;
  return { runId: match[1] as string, checkpointId: match[2] as string, suffix: match[3] as string };
}

/** A named value (`putMeta`); keys match `[A-Za-z0-9._-]`, so they need no escaping. */
export const metaKey = (key: string): string => `meta/${key}.json`;

/** One output body. */
export const outKey = (runId: string, hash: string): string => `runs/${runId}/out/${hash}`;

/** One manifest page. */
export const pageKey = (runId: string, suffix: string): string => `runs/${runId}/pages/${suffix}.json`;

/** The claim of a checkpoint id. */
export const claimKey = (checkpointId: string): string => `ids/${checkpointId}`;

/** Lowercase hex of a string's UTF-8 bytes. */
export const hex = (text: string): string => Buffer.from(text, "utf8").toString("hex");

/**
 * Inverted order: for each UTF-8 byte b, two hex digits of 255-b. With a `~` after it (above every
 * hex digit), an ascending listing is descending by the original text, a prefix sorting last.
 */
export function inv(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) out += (255 - b).toString(16).padStart(2, "0");
  return out;
}

/** The folder of one pipeline name's runs-by-name entries. */
export const indexPrefix = (pipelineName: string): string => `index/${hex(pipelineName)}/`;

/** A run's runs-by-name entry: an ascending listing is newest first (createdAt, then run id). */
export const indexKey = (pipelineName: string, createdAt: string, runId: string): string =>
  `${indexPrefix(pipelineName)}${inv(createdAt)}~${inv(runId)}~`;
