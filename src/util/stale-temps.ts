/**
 * Temp files of `writeFileDurably` that a killed writer left behind. Each is named
 * `.<target>.cairn-<host tag>-<pid>-<random>.tmp`, so the next durable write into the folder can
 * tell whose it is: one of this host whose process is gone is removed; one of another host (a
 * shared folder) only once it has not changed for an hour. A live writer's file is never touched.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, statSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { hasCode } from "./fs-util.js";

const TEMP = /^\..+\.cairn-([0-9a-f]{8})-(\d{1,10})-[0-9a-f]{12}\.tmp$/;
/** A temp file of another host counts as abandoned once unchanged this long. */
const FOREIGN_MS = 3_600_000;

let tag: string | undefined;
const hostTag = () => {
  tag ??= createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
  return tag;
};

/** The temp file name of a durable write of `name` by this process. */
export function durableTempName(name: string): string {
  return `.${name}.cairn-${hostTag()}-${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return hasCode(error, "EPERM");
  }
}

/**
 * Removes the durable-write temp files in `dir` whose writer is gone; returns their names. A
 * file that vanishes meanwhile (its writer finished, or another cleaner was first) is skipped.
 */
export function removeStaleTemps(dir: string, now = Date.now()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return removed;
    throw error;
  }
  for (const name of names) {
    const match = TEMP.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    const pid = Number(match[2]);
    let stale: boolean;
    if (match[1] === hostTag()) stale = pid !== process.pid && !isAlive(pid);
    else {
      try {
        stale = now - statSync(path).mtimeMs > FOREIGN_MS;
      } catch (error) {
        if (hasCode(error, "ENOENT")) continue;
        throw error;
      }
    }
    if (stale && unlinkQuietly(path)) removed.push(name);
  }
  return removed;
}

function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return false;
    throw error;
  }
}
