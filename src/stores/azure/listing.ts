/**
 * One page of a listing. Azure lists blob names in lexical order, flat or grouped by a
 * delimiter, paginated by an opaque continuation token. It has no exclusive `StartAfter`: since
 * service version 2026-02-06 (SDK 12.28+, azurite 3.37) `startFrom` starts at a name,
 * inclusively. So `startAfter` is sent as `startFrom` on the first page, and names up to and
 * including `startAfter` are always dropped here too, which also makes a server that ignores
 * `startFrom` (older service versions, `listStartFrom: false`) correct: it then lists from the
 * prefix and this skips, one request per `maxKeys` names before `startAfter`.
 */
import type { ContainerClient } from "@azure/storage-blob";
import { InvalidArgumentError } from "../../core/errors.js";
import type { ListOptions, ListPage } from "../object/objects.js";
import { isNotFound, storeError } from "./errors.js";
import type { Deadline } from "./sdk.js";

/** What the listing needs from the adapter. */
export interface ListingContext {
  client: ContainerClient;
  /** The store's prefix with its trailing `/`, or "". */
  root: string;
  listStartFrom: boolean;
  where: string;
}

interface RawPage {
  names: string[];
  prefixes: string[];
  continuation: string | undefined;
}

async function fetchPage(
  context: ListingContext,
  prefix: string,
  options: ListOptions,
  maxKeys: number,
  continuation: string | undefined,
  startFrom: string | undefined,
  deadline: Deadline,
): Promise<RawPage> {
  const common = { prefix: context.root + prefix, abortSignal: deadline.signal, startFrom };
  const byPage = { continuationToken: continuation, maxPageSize: maxKeys };
  try {
    if (options.delimiter !== undefined) {
      const pages = context.client.listBlobsByHierarchy(options.delimiter, common).byPage(byPage);
      const { value } = await pages.next();
      return {
        names: value?.segment.blobItems.map((b: { name: string }) => b.name) ?? [],
        prefixes: value?.segment.blobPrefixes?.map((p: { name: string }) => p.name) ?? [],
        continuation: value?.continuationToken || undefined,
      };
    }
    const pages = context.client.listBlobsFlat(common).byPage(byPage);
    const { value } = await pages.next();
    return {
      names: value?.segment.blobItems.map((b: { name: string }) => b.name) ?? [],
      prefixes: [],
      continuation: value?.continuationToken || undefined,
    };
  } catch (error) {
    // A container that does not exist holds nothing (a read-only open of a fresh location).
    if (isNotFound(error)) return { names: [], prefixes: [], continuation: undefined };
    throw storeError("list", error, context.where, { timeoutMs: deadline.ms });
  }
}

/** One page of the keys under `prefix`; see the module comment for `startAfter`. */
export async function listPage(
  context: ListingContext,
  prefix: string,
  options: ListOptions,
  deadline: () => Deadline,
): Promise<ListPage> {
  const maxKeys = options.maxKeys ?? 1000;
  if (!Number.isInteger(maxKeys) || maxKeys < 1 || maxKeys > 1000) {
    throw new InvalidArgumentError(`maxKeys must be an integer from 1 to 1,000, not ${maxKeys}`);
  }
  const { startAfter } = options;
  const strip = (name: string) => name.slice(context.root.length);
  let continuation = options.continuation;
  // startFrom only starts a listing; a continuation token already points past it.
  let startFrom =
    startAfter !== undefined && continuation === undefined && context.listStartFrom
      ? context.root + startAfter
      : undefined;
  for (;;) {
    // Each request gets its own time budget: an emulated skip may take many.
    const raw = await fetchPage(context, prefix, options, maxKeys, continuation, startFrom, deadline());
    const keys = raw.names.map(strip).filter((k) => startAfter === undefined || k > startAfter);
    const prefixes: string[] = [];
    for (const p of raw.prefixes.map(strip)) {
      if (startAfter === undefined || p > startAfter) prefixes.push(p);
      else if (startAfter.startsWith(p) && (await holdsKeyAfter(context, p, startAfter, deadline)))
        prefixes.push(p);
    }
    // An emulated startAfter can empty a whole page: go on rather than hand back an empty
    // page with a continuation (callers may take an empty page as the end).
    if (keys.length > 0 || prefixes.length > 0 || raw.continuation === undefined) {
      return raw.continuation === undefined
        ? { keys, prefixes }
        : { keys, prefixes, continuation: raw.continuation };
    }
    continuation = raw.continuation;
    startFrom = undefined;
  }
}

/**
 * Whether the prefix `p` that `startAfter` lies in (`runs/a/` for `runs/a/x`) holds a key after
 * it, as S3's `StartAfter` would list it. The server cannot say: `startFrom` is inclusive, so
 * `startAfter` itself puts `p` on the page, and a server ignoring `startFrom` puts it there
 * anyway. One more request, only for this one prefix of a page.
 */
async function holdsKeyAfter(
  context: ListingContext,
  p: string,
  startAfter: string,
  deadline: () => Deadline,
): Promise<boolean> {
  const page = await listPage(context, p, { startAfter, maxKeys: 1 }, deadline);
  return page.keys.length > 0;
}
