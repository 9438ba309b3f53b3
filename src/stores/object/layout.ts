/**
 * The object stores' layout version (`cairn-layout.json`, `{"layout":1}`): how the keys under the
 * prefix are arranged (`keys.ts`). A writer's setup creates it create-only, so it never replaces
 * a newer cairn's; every setup reads it, and a newer layout is refused before anything else is
 * read or written. A read-only open of a prefix with no layout object and no objects at all is
 * no store.
 */
import { CheckpointCorruptError, FormatTooNewError, StoreNotFoundError } from "../../core/errors.js";
import { LAYOUT_KEY } from "./keys.js";
import type { ObjectClient } from "./objects.js";

/** The layout this cairn writes and reads. */
export const OBJECT_LAYOUT_VERSION = 1;

/** Reads (and, unless `readOnly`, first creates when absent) the layout object. */
export async function checkLayout(client: ObjectClient, readOnly: boolean, attempt = 0): Promise<void> {
  const body = JSON.stringify({ layout: OBJECT_LAYOUT_VERSION });
  if (!readOnly && (await client.put(LAYOUT_KEY, body, { ifNoneMatch: "*" })).ok) return;
  const got = await client.get(LAYOUT_KEY);
  if (!got) {
    // Created and deleted in between (a concurrent cleanup): try again, a few times.
    if (!readOnly) {
      if (attempt < 3) return checkLayout(client, readOnly, attempt + 1);
      throw new CheckpointCorruptError(undefined, `${client.location} ${LAYOUT_KEY} keeps vanishing`);
    }
    const any = await client.list("", { maxKeys: 1 });
    if (any.keys.length === 0 && any.prefixes.length === 0) {
      throw new StoreNotFoundError(client.location, "the prefix holds no objects");
    }
    return;
  }
  const where = `${client.location} ${LAYOUT_KEY}`;
  let layout: unknown;
  try {
    layout = (JSON.parse(got.body.toString("utf8")) as { layout?: unknown }).layout;
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `${where} is not JSON`, { cause: error });
  }
  if (typeof layout !== "number" || !Number.isInteger(layout) || layout < 1) {
    throw new CheckpointCorruptError(undefined, `${where} holds no layout version`);
  }
  if (layout > OBJECT_LAYOUT_VERSION) {
    throw new FormatTooNewError("store layout", where, layout, OBJECT_LAYOUT_VERSION);
  }
}
