/**
 * Maintenance reads of the Redis store for `cairn repair`: what a key holds, rendered for a
 * backup, and every checkpoint hash under the prefix, found with SCAN (never KEYS, which blocks
 * the server). Admin paths only: nothing on the run/resume path scans.
 */
import { isValidName } from "../../core/ids.js";
import type { RedisClient } from "./config.js";
import { type RedisKeys, SEGMENTS } from "./keys.js";

/** What `key` holds as JSON (`{ key, type, fields | value }`); undefined when it does not exist. */
export async function renderKey(client: RedisClient, key: string): Promise<string | undefined> {
  const type = String(await client.call("TYPE", key));
  if (type === "none") return undefined;
  const rendered: Record<string, unknown> = { key, type };
  if (type === "hash") {
    const flat = (await client.call("HGETALL", key)) as string[];
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
    rendered.fields = fields;
  } else if (type === "string") {
    rendered.value = await client.call("GET", key);
  }
  return JSON.stringify(rendered, null, 2);
}

/** The ids of every checkpoint hash key under the prefix (any run), by SCAN. */
export async function scanCheckpointIds(client: RedisClient, keys: RedisKeys): Promise<string[]> {
  const head = keys.checkpoint("");
  // The prefix pattern excludes glob characters, so the prefix matches itself literally.
  const pattern = `${head}*`;
  const ids = new Set<string>();
  let cursor = "0";
  do {
    const [next, found] = (await client.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)) as [
      string,
      string[],
    ];
    for (const key of found) {
      const id = key.slice(head.length);
      // cairn writes only valid names; anything else under the prefix is not its checkpoint.
      if (key.startsWith(`${keys.prefix}${SEGMENTS.checkpoint}`) && isValidName(id)) ids.add(id);
    }
    cursor = next;
  } while (cursor !== "0");
  return [...ids].sort();
}
