/**
 * The file store's run lock. Deciding and writing a lease (`run-leases.ts`), and every checkpoint
 * write, happen under a per-run lock file in `basePath/.leases/` created exclusively (`O_EXCL`),
 * which is atomic across processes on one machine (and on NFSv3+ servers, see the README).
 */
import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { StoreUnavailableError } from "../../core/errors.js";
import { unlinkIfPresent } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import { ensureDir } from "./run-folders.js";

/** Folder of lease files and lock files, inside the base folder. */
export const LEASES_DIR = ".leases";

/**
 * A lock file of a holder on another host whose content has not changed for this long, on the
 * reader's own monotonic clock, is taken as abandoned. Never judged by the file's mtime: that is
 * another machine's (or the file server's) clock.
 */
const STALE_LOCK_MS = 10_000;
/** How long to wait for the lock before giving up. */
const LOCK_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LockOwner {
  host: string;
  pid: number;
  nonce: string;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

function parseOwner(text: string | undefined): LockOwner | undefined {
  try {
    return text === undefined ? undefined : (JSON.parse(text) as LockOwner);
  } catch {
    // Not written yet (the holder is between creating and writing it): judged by watching it.
    return undefined;
  }
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
 * Watches another process's lock file. On this host the holder's pid tells for sure, so a live
 * but paused holder (SIGSTOP, a frozen VM) keeps its lock however long it takes. A holder on
 * another host (a shared folder) is judged by what this process saw: the same content (the
 * holder's nonce) unchanged for {@link STALE_LOCK_MS} on this process's monotonic clock.
 */
class LockWatch {
  private seen: { text: string; since: number } | undefined;

  isStale(text: string): boolean {
    const owner = parseOwner(text);
    if (owner && owner.host === hostname()) return !isAlive(owner.pid);
    const now = performance.now();
    if (this.seen?.text !== text) this.seen = { text, since: now };
    return now - this.seen.since >= STALE_LOCK_MS;
  }
}

/**
 * Removes the stale lock `text` judged abandoned. Renamed first, so of several processes breaking
 * it only one succeeds; if what was renamed is not the lock judged stale (another breaker already
 * replaced it with a live one), it is put back with `link`, which never overwrites.
 */
async function breakLock(lock: string, text: string, nonce: string): Promise<void> {
  const grave = `${lock}.stale-${nonce}`;
  try {
    renameSync(lock, grave);
  } catch (error) {
    if (hasCode(error, "ENOENT")) return;
    throw error;
  }
  try {
    if (readText(grave) !== text) linkSync(grave, lock);
  } catch (error) {
    // EEXIST: yet another process holds the lock now; the one moved aside cannot be restored.
    if (!hasCode(error, "EEXIST")) throw error;
  } finally {
    await rm(grave, { force: true });
  }
}

/** Runs `fn` holding the run's cross-process lock. */
export async function withRunLock<T>(basePath: string, pipelineId: string, fn: () => Promise<T>): Promise<T> {
  const dir = join(basePath, LEASES_DIR);
  const lock = join(dir, `${pipelineId}.lock`);
  const me: LockOwner = { host: hostname(), pid: process.pid, nonce: randomBytes(8).toString("hex") };
  const watch = new LockWatch();
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    try {
      // One exclusive create holds the lock and names its holder: cheaper than a folder plus a
      // file. Synchronous calls: each takes microseconds, less than a thread-pool round trip.
      const fd = openSync(lock, "wx");
      try {
        writeSync(fd, JSON.stringify(me));
      } catch (error) {
        // A full disk creates the file but refuses its content: an empty lock names no holder
        // and would stall every later caller until it counts as stale, so it goes at once.
        closeSync(fd);
        unlinkIfPresent(lock);
        throw error;
      }
      closeSync(fd);
      break;
    } catch (error) {
      if (hasCode(error, "ENOENT")) {
        // Not a recursive mkdir: on a read-only filesystem Node reports that as ENOENT, not EROFS.
        ensureDir(dir);
        continue;
      }
      if (!hasCode(error, "EEXIST")) throw error;
    }
    const text = readText(lock);
    if (text === undefined) continue; // released in between
    if (watch.isStale(text)) {
      await breakLock(lock, text, me.nonce);
      continue;
    }
    if (performance.now() - started > LOCK_TIMEOUT_MS) {
      throw new StoreUnavailableError(
        "file",
        `run lock ${lock} has been held for over ${LOCK_TIMEOUT_MS} ms`,
      );
    }
    await sleep(Math.min(50, 2 + attempt * 2));
  }
  try {
    return await fn();
  } finally {
    // Remove the lock only if it is still ours: never another holder's.
    if (parseOwner(readText(lock))?.nonce === me.nonce) unlinkIfPresent(lock);
  }
}
