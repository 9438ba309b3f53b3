/**
 * Key files: the key ring as a JSON file the CLI and pipeline files point to, so keys never sit
 * in a command line, a pipeline file or a store URL.
 *
 *   {"cairn_key_file":1,"active_key_id":"k2","keys":{"k1":"<base64>","k2":"<base64>"}}
 *
 * A key file readable or writable by anyone but its owner is refused (on POSIX): a key that
 * others can read protects nothing. Keys never appear in messages.
 */
import { randomBytes } from "node:crypto";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { InvalidArgumentError } from "../core/errors.js";
import { hasCode } from "../util/fs-util.js";
import { createKeyRing, type EncryptionOptions, KEY_BYTES } from "./keys.js";

/** The format version a key file declares in `cairn_key_file`. */
export const KEY_FILE_VERSION = 1;

/** A key file's content: the ring with its keys as base64 text. */
export interface KeyFileContent {
  activeKeyId: string;
  /** Key id → base64 of 32 bytes. */
  keys: Record<string, string>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Parses key file text (`source` names it in messages: a path, or `$VAR`); the ring is checked
 * as `encryption` is. `InvalidArgumentError` for anything wrong, never quoting a key.
 */
export function parseKeyFile(text: string, source: string): KeyFileContent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message quotes the text around the error, which may be a key.
    throw new InvalidArgumentError(`key file ${source} is not JSON`);
  }
  if (!isPlainObject(parsed) || parsed.cairn_key_file === undefined)
    throw new InvalidArgumentError(
      `key file ${source} is not a cairn key file (it has no "cairn_key_file" field; create one with cairn keys generate)`,
    );
  if (parsed.cairn_key_file !== KEY_FILE_VERSION)
    throw new InvalidArgumentError(
      `key file ${source} has format ${JSON.stringify(parsed.cairn_key_file)}; this cairn reads format ${KEY_FILE_VERSION}`,
    );
  const unknown = Object.keys(parsed).filter((k) => !["cairn_key_file", "active_key_id", "keys"].includes(k));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`key file ${source} has unknown field ${unknown.join(", ")}`);
  const { active_key_id: activeKeyId, keys } = parsed;
  if (!isPlainObject(keys)) throw new InvalidArgumentError(`key file ${source}: "keys" must be an object`);
  for (const [id, key] of Object.entries(keys))
    if (typeof key !== "string")
      throw new InvalidArgumentError(`key file ${source}: key ${id} must be base64 text`);
  try {
    createKeyRing({ keys, activeKeyId });
  } catch (error) {
    if (error instanceof InvalidArgumentError)
      throw new InvalidArgumentError(`key file ${source}: ${error.message}`);
    throw error;
  }
  return { activeKeyId: activeKeyId as string, keys: keys as Record<string, string> };
}

/** The key file's text, as {@link writeKeyFile} writes it. */
export function keyFileText(content: KeyFileContent): string {
  return `${JSON.stringify(
    { cairn_key_file: KEY_FILE_VERSION, active_key_id: content.activeKeyId, keys: content.keys },
    null,
    2,
  )}\n`;
}

/** Refuses a key file others may read or write (POSIX only: Windows has no such mode bits). */
async function assertPrivate(path: string): Promise<void> {
  if (process.platform === "win32") return;
  const mode = (await stat(path)).mode;
  if ((mode & 0o077) !== 0)
    throw new InvalidArgumentError(
      `key file ${path} is readable or writable by others (mode ${(mode & 0o777).toString(8)}): ` +
        `run chmod 600 ${path}`,
    );
}

/** Reads a key file's content; `InvalidArgumentError` naming the path when it is missing, open to others or malformed. */
export async function readKeyFileContent(path: string): Promise<KeyFileContent> {
  let text: string;
  try {
    await assertPrivate(path);
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    if (hasCode(error, "ENOENT"))
      throw new InvalidArgumentError(`key file ${path} does not exist (create one with cairn keys generate)`);
    throw new InvalidArgumentError(`key file ${path} cannot be read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseKeyFile(text, path);
}

/** Reads a key file as `encryption` options for a manager. */
export async function readKeyFile(path: string): Promise<EncryptionOptions> {
  const { keys, activeKeyId } = await readKeyFileContent(path);
  return { keys, activeKeyId };
}

/** Key file text (from an environment variable, say) as `encryption` options. */
export function keyFileOptions(text: string, source: string): EncryptionOptions {
  const { keys, activeKeyId } = parseKeyFile(text, source);
  return { keys, activeKeyId };
}

/**
 * Writes a key file atomically with mode 0600: the temp file is created 0600 (exclusively, so
 * never a world-readable moment), flushed, then renamed over the target.
 */
export async function writeKeyFile(path: string, content: KeyFileContent): Promise<void> {
  const text = keyFileText(content);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", 0o600);
  try {
    // The umask only clears bits; chmod makes the mode exactly 0600 whatever it is.
    await handle.chmod(0o600);
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** A new random key-encryption key, base64. */
export function newKey(): string {
  return randomBytes(KEY_BYTES).toString("base64");
}

/** The next free `kN` id of a key file (`k1` for an empty one). */
export function nextKeyId(keys: Record<string, unknown>): string {
  let n = 1;
  while (`k${n}` in keys) n++;
  return `k${n}`;
}
