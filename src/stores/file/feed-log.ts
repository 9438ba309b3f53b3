/**
 * The file store's change log, one file per change, named by its position:
 *
 *   basePath/.feed/id                       the feed id (16 hex), created once, exclusively
 *   basePath/.feed/s<pos / 10000>/<pos>.json   one change, JSON; 10,000 per segment folder
 *   basePath/.feed/trimmed-<pos>            retention removed every change up to <pos>
 *
 * A change file is written in full to a temp file and then hard-linked to its position's name:
 * `link` never replaces, so two writers never take one position, and a reader never sees a
 * half-written change. A writer takes position p only after it saw p - 1 exist (in a listing,
 * or as the EEXIST of its own attempt), so positions are allocated without holes: a reader
 * that finds p missing while p + 1 exists has found a change that was removed (by retention,
 * or by hand), never one still being written. Readers open files by name; only a read that
 * reaches the end lists a segment folder (the newest), so that a gap of any width (files removed
 * by hand) is reported rather than waited on.
 */
import { randomBytes } from "node:crypto";
import { existsSync, linkSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointCorruptError } from "../../core/errors.js";
import {
  createFile,
  discardTemps,
  isTempName,
  type TempFile,
  unlinkIfPresent,
  writeTemps,
} from "../../util/atomic-file.js";
import { hasCode, readdirIfPresent } from "../../util/fs-util.js";
import type { ChangeType } from "../types.js";
import { ensureDir, syncDir } from "./run-folders.js";

/** The feed's folder, inside the base folder. */
export const FEED_DIR = ".feed";
/** Changes per segment folder: a folder never grows past this many files. */
export const SEGMENT_SIZE = 10_000;
const ID_FILE = "id";
const TRIMMED = /^trimmed-(\d{1,15})$/;
const SEGMENT = /^s(\d{8})$/;
const ENTRY = /^(\d{12})\.json$/;

/** One change as the log stores it. */
export interface FeedEntry {
  type: ChangeType;
  pipelineId: string;
  pipelineName: string;
  checkpointId?: string;
  sequence?: number;
  at: string;
  /** Unique per change (the writer's intent nonce and index), so recovery never appends one twice. */
  change: string;
}

/** A change read back with its position. */
export interface PositionedEntry {
  position: number;
  entry: FeedEntry;
}

/** Why a read stopped short of the end: changes after `since` are gone. */
export class FeedGap {
  constructor(
    readonly position: number,
    readonly reason: string,
  ) {}
}

const segmentName = (position: number) => `s${String(Math.floor(position / SEGMENT_SIZE)).padStart(8, "0")}`;
const entryName = (position: number) => `${String(position).padStart(12, "0")}.json`;

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
}

function parseEntry(path: string, text: string): FeedEntry {
  let value: Partial<FeedEntry> | null = null;
  try {
    value = JSON.parse(text) as Partial<FeedEntry> | null;
  } catch {
    // Reported below with the path.
  }
  const ok =
    value !== null &&
    typeof value === "object" &&
    (value.type === "checkpoint" || value.type === "status" || value.type === "deleted") &&
    typeof value.pipelineId === "string" &&
    typeof value.pipelineName === "string" &&
    typeof value.at === "string" &&
    typeof value.change === "string";
  if (!ok) throw new CheckpointCorruptError(undefined, `${path}: not a change feed entry`);
  return value as FeedEntry;
}

function isOld(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > 3_600_000;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return false;
    throw error;
  }
}

/** The log of one store folder; an instance remembers the newest position it saw. */
export class FeedLog {
  readonly dir: string;
  private id: string | undefined;
  /** The highest position this instance saw exist: the next append starts after it. */
  private hint = 0;

  constructor(
    basePath: string,
    private readonly fsync: boolean,
  ) {
    this.dir = join(basePath, FEED_DIR);
  }

  /** Path of a position's change file. */
  path(position: number): string {
    return join(this.dir, segmentName(position), entryName(position));
  }

  /** The feed id; created (exclusively, so every process agrees) when `create` and missing. */
  async feedId(create: boolean): Promise<string | undefined> {
    if (this.id !== undefined) return this.id;
    const path = join(this.dir, ID_FILE);
    let text = readIfPresent(path);
    if (text === undefined && create) {
      ensureDir(this.dir);
      if (await createFile(this.dir, ID_FILE, `${randomBytes(8).toString("hex")}\n`, this.fsync)) {
        await syncDir(this.dir, this.fsync);
      }
      text = readIfPresent(path);
    }
    if (text === undefined) return undefined;
    const id = text.trim();
    if (!/^[0-9a-f]{16}$/.test(id)) throw new CheckpointCorruptError(undefined, `${path}: not a feed id`);
    this.id = id;
    return id;
  }

  /** The highest position trimmed away (0 when none); read after a missing file, never before. */
  trimmedThrough(): number {
    let through = 0;
    for (const name of readdirIfPresent(this.dir) ?? []) {
      const m = TRIMMED.exec(name);
      if (m) through = Math.max(through, Number(m[1]));
    }
    return through;
  }

  /** The newest position in the log (0 for an empty one), from the newest non-empty segment. */
  highest(): number {
    const segments = (readdirIfPresent(this.dir) ?? []).filter((n) => SEGMENT.test(n)).sort();
    for (const segment of segments.reverse()) {
      let top = 0;
      for (const name of readdirIfPresent(join(this.dir, segment)) ?? []) {
        const m = ENTRY.exec(name);
        if (m) top = Math.max(top, Number(m[1]));
      }
      if (top > 0) {
        this.hint = Math.max(this.hint, top);
        return top;
      }
    }
    return Math.max(this.hint, this.trimmedThrough());
  }

  /** A position no higher than the newest: where a search for changes appended from now on can start. */
  lowerBound(): number {
    return this.hint > 0 ? this.hint : this.highest();
  }

  /** Appends changes in order; returns their positions. Durable on return when the store flushes. */
  async append(entries: readonly FeedEntry[]): Promise<number[]> {
    return this.place(await this.prepare(entries));
  }

  /**
   * Writes (and flushes) the changes' files, to be placed by {@link place}: before a commit, in
   * parallel with it. A bounded number of files is open at once, however many changes.
   */
  async prepare(entries: readonly FeedEntry[]): Promise<TempFile[]> {
    if (entries.length === 0) return [];
    ensureDir(this.dir);
    const data = (e: FeedEntry) => `${JSON.stringify(e)}\n`;
    return writeTemps(
      entries.map((e) => ({ dir: this.dir, name: "entry", data: data(e) })),
      this.fsync,
    );
  }

  /**
   * Links prepared changes, in order, each at the next free position; returns the positions.
   * Each segment folder written to is flushed once, at the end. The temp files are gone after,
   * either way.
   */
  async place(files: readonly TempFile[]): Promise<number[]> {
    const positions: number[] = [];
    const touched = new Set<string>();
    try {
      for (const file of files) positions.push(await this.link(file, touched));
      for (const segment of touched) await syncDir(segment, this.fsync);
      return positions;
    } finally {
      discardTemps(files);
    }
  }

  private async link(file: TempFile, touched: Set<string>): Promise<number> {
    let position = Math.max(this.hint > 0 ? this.hint : this.highest(), this.trimmedThrough()) + 1;
    for (;;) {
      const segment = join(this.dir, segmentName(position));
      if (ensureDir(segment)) await syncDir(this.dir, this.fsync);
      const target = join(segment, entryName(position));
      try {
        linkSync(file.temp, target);
      } catch (error) {
        if (!hasCode(error, "EEXIST")) throw error;
        // Taken: it exists, so the one after it may be taken next; skip ahead if others wrote many.
        position = Math.max(position, this.highest()) + 1;
        continue;
      }
      // Free only because retention just removed it (its marker is written before the removal,
      // so it shows now): a change there would be behind every reader. Taken again higher up.
      if (position <= this.trimmedThrough()) {
        unlinkIfPresent(target);
        position = this.highest() + 1;
        continue;
      }
      this.hint = position;
      touched.add(segment);
      return position;
    }
  }

  /**
   * Reads up to `limit` changes after `since`, oldest first, opening each file by name. Stops at
   * the end of the log; a missing position followed by an existing one is a gap (returned as
   * `FeedGap` after the changes before it), never skipped.
   */
  read(since: number, limit: number): { entries: PositionedEntry[]; gap?: FeedGap } {
    const entries: PositionedEntry[] = [];
    let position = since + 1;
    while (entries.length < limit) {
      const path = this.path(position);
      const text = readIfPresent(path);
      if (text === undefined) {
        // The end of the log, unless a later change exists: the next one (one `stat`), or any
        // (a listing of the newest segment, only when the read reached the end).
        if (!existsSync(this.path(position + 1)) && this.highest() <= position) break;
        // Linked between the two looks (it precedes position + 1): read it now.
        if (existsSync(path)) continue;
        const trimmed = this.trimmedThrough();
        const reason =
          trimmed >= position
            ? `the feed's retention removed every change up to position ${trimmed}`
            : `change ${position} is missing from ${this.dir} (removed by hand, or lost in a crash of the machine)`;
        return { entries, gap: new FeedGap(position, reason) };
      }
      entries.push({ position, entry: parseEntry(path, text) });
      this.hint = Math.max(this.hint, position);
      position++;
    }
    return { entries };
  }

  /** True when the change at `position` exists. */
  has(position: number): boolean {
    return existsSync(this.path(position));
  }

  /** True when a change after `since` exists. */
  hasAfter(since: number): boolean {
    return existsSync(this.path(since + 1));
  }

  /**
   * Removes every change up to `through`, recording it first (a reader that then finds a file
   * missing knows why): whole segment folders at once, then single files. Markers only grow:
   * the highest one wins, and lower ones are removed after.
   */
  async trim(through: number): Promise<void> {
    if (through <= this.trimmedThrough()) return;
    const marker = `trimmed-${through}`;
    if (await createFile(this.dir, marker, "", this.fsync)) await syncDir(this.dir, this.fsync);
    for (const name of readdirIfPresent(this.dir) ?? []) {
      const seg = SEGMENT.exec(name);
      if (seg) {
        const first = Number(seg[1]) * SEGMENT_SIZE;
        if (first + SEGMENT_SIZE - 1 <= through) {
          await rm(join(this.dir, name), { recursive: true, force: true });
        } else if (first <= through) {
          for (const entry of readdirIfPresent(join(this.dir, name)) ?? []) {
            const m = ENTRY.exec(entry);
            if (m && Number(m[1]) <= through) unlinkIfPresent(join(this.dir, name, entry));
          }
        }
      }
      const old = TRIMMED.exec(name);
      if (old && Number(old[1]) < through) unlinkIfPresent(join(this.dir, name));
      // A temp file of a killed appender (a live one links it within moments of writing it).
      if (isTempName(name) && name.startsWith(".entry.") && isOld(join(this.dir, name))) {
        unlinkIfPresent(join(this.dir, name));
      }
    }
    await syncDir(this.dir, this.fsync);
  }
}
