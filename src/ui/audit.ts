/**
 * The console's audit trail: an append-only JSON Lines file, one entry per line, hash-chained so
 * an edited, removed or reordered line is found by {@link AuditLog.verify}. Each entry's `prev` is
 * the `hash` of the line before it (a run of zeros for the first), and its `hash` is the SHA-256 of
 * the entry's fields, `prev` included, in a fixed order. Appends are durable (fsync) and, within
 * one process, one at a time; two processes appending to one file at the same instant can still
 * fork the chain, which `verify` then reports.
 */

import { mkdir, open, readFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, resolve } from "node:path";
import { CheckpointCorruptError, InvalidArgumentError } from "../core/errors.js";
import { sha256 } from "../core/record.js";

/** Where the audit trail goes unless `--audit-log` says otherwise (relative to the working directory). */
export const DEFAULT_AUDIT_LOG = ".cairn/audit.jsonl";

/** The `prev` of the first entry of a file. */
export const GENESIS = "0".repeat(64);

/** One line of the audit trail. */
export interface AuditEntry {
  /** ISO time the entry was written. */
  at: string;
  /** The OS user the console runs as. */
  user: string;
  /** The remote address of the request. */
  client: string;
  /** What was asked: `validate`, `quarantine`, `cleanup`, `export`, ... */
  action: string;
  target: { pipelineId?: string; checkpointId?: string };
  outcome: "requested" | "done" | "failed";
  /** What was done or why it failed (an error's code and message), when there is more to say. */
  detail?: Record<string, unknown>;
  /** `hash` of the previous line; {@link GENESIS} for the first. */
  prev: string;
  /** SHA-256 of this entry's other fields. */
  hash: string;
}

/** What a caller gives `append`: the time and the chain fields are filled in. */
export type AuditInput = Omit<AuditEntry, "at" | "prev" | "hash"> & { at?: string };

/** A page of entries, newest first; `nextBefore` continues with older ones. */
export interface AuditPage {
  entries: AuditEntry[];
  nextBefore?: string;
}

/** Outcome of a chain walk: whole, or the first line that breaks it (1-based). */
export interface AuditVerification {
  ok: boolean;
  entries: number;
  brokenAt?: { line: number; reason: string };
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const TAIL_BYTES = 64 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;
const OUTCOMES = new Set(["requested", "done", "failed"]);

/** The OS user this process runs as (`USER` when the system cannot say). */
export function auditUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for the uid (containers): the environment is all there is.
    return process.env.USER ?? process.env.USERNAME ?? "unknown";
  }
}

/** The hash of an entry: its fields in a fixed order, so a re-serialized line hashes the same. */
export function entryHash(entry: Omit<AuditEntry, "hash">): string {
  const { at, user, client, action, target, outcome, detail, prev } = entry;
  const canonical = [at, user, client, action, target.pipelineId ?? null, target.checkpointId ?? null];
  return sha256(JSON.stringify([...canonical, outcome, detail ?? null, prev]));
}

/** Why a parsed line is not an entry; undefined when it is one. */
function shapeProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const e = value as Record<string, unknown>;
  for (const key of ["at", "user", "client", "action", "prev", "hash"])
    if (typeof e[key] !== "string") return `field ${key} is missing or not a string`;
  if (!OUTCOMES.has(e.outcome as string)) return "field outcome is not requested, done or failed";
  const target = e.target as Record<string, unknown> | null;
  if (typeof target !== "object" || target === null || Array.isArray(target))
    return "field target is not an object";
  for (const key of ["pipelineId", "checkpointId"])
    if (target[key] !== undefined && typeof target[key] !== "string") return `target.${key} is not a string`;
  if (e.detail !== undefined && (typeof e.detail !== "object" || e.detail === null))
    return "field detail is not an object";
  if (!HEX64.test(e.prev as string) || !HEX64.test(e.hash as string)) return "prev or hash is not a SHA-256";
  return undefined;
}

/** Parses one line; a malformed one is `CAIRN_CORRUPT` naming the file and line. */
function parseLine(path: string, text: string, line: number | "last"): AuditEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `audit log ${path} line ${line} is not JSON`, {
      cause: error,
    });
  }
  const problem = shapeProblem(value);
  if (problem) throw new CheckpointCorruptError(undefined, `audit log ${path} line ${line}: ${problem}`);
  return value as AuditEntry;
}

/** The file's lines (none when it does not exist), with their 1-based numbers; blank lines skipped. */
async function readLines(path: string): Promise<{ text: string; line: number }[]> {
  let content: string;
  try {
    content = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return content
    .split("\n")
    .map((text, i) => ({ text, line: i + 1 }))
    .filter((l) => l.text.trim() !== "");
}

/** The append-only, hash-chained audit trail in one file. */
export class AuditLog {
  /** Absolute path of the file. */
  readonly path: string;
  /** The appends of this process, one after another: each links to the one before. */
  private queue: Promise<unknown> = Promise.resolve();

  /** `path` is resolved against the working directory; default {@link DEFAULT_AUDIT_LOG}. */
  constructor(path: string = DEFAULT_AUDIT_LOG) {
    this.path = resolve(path);
  }

  /** Appends one entry, linked to the last line of the file, and fsyncs it; returns it as written. */
  append(input: AuditInput): Promise<AuditEntry> {
    const next = this.queue.then(() => this.write(input));
    // A failed append must not stop the ones after it; the caller still sees its own failure.
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async write(input: AuditInput): Promise<AuditEntry> {
    await mkdir(dirname(this.path), { recursive: true });
    const { text: tail, endsWithNewline } = await this.tail();
    const prev = tail === undefined ? GENESIS : parseLine(this.path, tail, "last").hash;
    const body: Omit<AuditEntry, "hash"> = {
      at: input.at ?? new Date().toISOString(),
      user: input.user,
      client: input.client,
      action: input.action,
      target: input.target,
      outcome: input.outcome,
      ...(input.detail !== undefined ? { detail: input.detail } : {}),
      prev,
    };
    const entry: AuditEntry = { ...body, hash: entryHash(body) };
    const handle = await open(this.path, "a");
    try {
      // A torn last line (a crash mid-write) stays a line of its own: verify names it.
      await handle.write(`${endsWithNewline ? "" : "\n"}${JSON.stringify(entry)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return entry;
  }

  /** The file's last non-blank line (read from the end: the file only grows) and whether it ends the file cleanly. */
  private async tail(): Promise<{ text: string | undefined; endsWithNewline: boolean }> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        return { text: undefined, endsWithNewline: true };
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size === 0) return { text: undefined, endsWithNewline: true };
      let length = Math.min(size, TAIL_BYTES);
      for (;;) {
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, size - length);
        const text = buffer.toString("utf8");
        // Unless the whole file was read, the first piece may be the end of a longer line.
        const lines = text.split("\n").slice(length === size ? 0 : 1);
        const last = lines.filter((l) => l.trim() !== "").pop();
        if (last !== undefined || length === size)
          return { text: last, endsWithNewline: text.endsWith("\n") };
        length = Math.min(size, length * 4);
      }
    } finally {
      await handle.close();
    }
  }

  /** Entries newest first: at most `limit` (default 50, at most 1000), older than the entry whose hash is `before`. */
  async read(options: { limit?: number; before?: string } = {}): Promise<AuditPage> {
    const limit = options.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw new InvalidArgumentError(`limit must be an integer from 1 to ${MAX_LIMIT}, got ${String(limit)}`);
    if (options.before !== undefined && !HEX64.test(options.before))
      throw new InvalidArgumentError("before must be the hash of an audit entry (64 hex digits)");
    const entries = (await readLines(this.path)).map((l) => parseLine(this.path, l.text, l.line)).reverse();
    let start = 0;
    if (options.before !== undefined) {
      const at = entries.findIndex((e) => e.hash === options.before);
      if (at < 0) throw new InvalidArgumentError(`no audit entry with hash ${options.before}`);
      start = at + 1;
    }
    const page = entries.slice(start, start + limit);
    const last = page[page.length - 1];
    return start + limit < entries.length && last
      ? { entries: page, nextBefore: last.hash }
      : { entries: page };
  }

  /** Walks the chain from the first line; reports the first line that is malformed or does not link. */
  async verify(): Promise<AuditVerification> {
    return verifyAuditLog(this.path);
  }
}

/** Walks the chain of the audit log at `path` (a missing file is an empty, whole chain). */
export async function verifyAuditLog(path: string): Promise<AuditVerification> {
  const lines = await readLines(resolve(path));
  let prev = GENESIS;
  let count = 0;
  for (const { text, line } of lines) {
    let entry: AuditEntry;
    try {
      entry = parseLine(path, text, line);
    } catch (error) {
      return { ok: false, entries: count, brokenAt: { line, reason: (error as Error).message } };
    }
    if (entry.prev !== prev) {
      const reason = `prev ${entry.prev.slice(0, 12)}… does not match the hash of the entry before it (${prev.slice(0, 12)}…): a line was removed, inserted or reordered`;
      return { ok: false, entries: count, brokenAt: { line, reason } };
    }
    const { hash, ...body } = entry;
    if (entryHash(body) !== hash) {
      return {
        ok: false,
        entries: count,
        brokenAt: { line, reason: "the entry's content does not match its hash: it was edited" },
      };
    }
    prev = hash;
    count++;
  }
  return { ok: true, entries: count };
}
