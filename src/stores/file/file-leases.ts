/**
 * Run leases for the file store. Each run's lease is a small JSON file in `basePath/.leases/`
 * (a dot-folder, so it is never taken for a run). Deciding and writing a lease, and a fenced
 * checkpoint write, happen under a per-run lock file created exclusively (`O_EXCL`), which is atomic
 * across processes on one machine.
 */
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { StoreUnavailableError } from "../../core/errors.js";
import { replaceFile, unlinkIfPresent } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import type { Lease } from "../types.js";
import { ensureDir } from "./run-folders.js";

/** Folder of lease files and lock files, inside the base folder. */
export const LEASES_DIR = ".leases";

/** A lock file of a holder on another host older than this is taken as abandoned. */
const STALE_LOCK_MS = 10_000;
/** How long to wait for the lock before giving up. */
const LOCK_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LockOwner {
  host: string;
  pid: number;
  nonce: string;
}

async function readOwner(lock: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(readFileSync(lock, "utf8")) as LockOwner;
  } catch {
    // Not written yet (the holder is between creating and writing it) or gone: judged by age alone.
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
 * Whether a lock file was left by a dead holder. On this host the holder's pid tells for sure,
 * so a live but paused holder (SIGSTOP, a frozen VM) keeps its lock however long it takes;
 * only a holder on another host (a shared folder) is judged by the lock's age.
 */
async function isStale(lock: string): Promise<boolean> {
  const owner = await readOwner(lock);
  if (owner && owner.host === hostname()) return !isAlive(owner.pid);
  const age = await stat(lock).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  return age > STALE_LOCK_MS;
}

/** Runs `fn` holding the run's cross-process lock. */
export async function withRunLock<T>(basePath: string, pipelineId: string, fn: () => Promise<T>): Promise<T> {
  const dir = join(basePath, LEASES_DIR);
  const lock = join(dir, `${pipelineId}.lock`);
  const me: LockOwner = { host: hostname(), pid: process.pid, nonce: randomBytes(8).toString("hex") };
  const started = Date.now();
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
    if (await isStale(lock)) {
      // Rename first: of several processes breaking the same stale lock, only one succeeds.
      const grave = `${lock}.stale-${me.nonce}`;
      try {
        await rename(lock, grave);
        await rm(grave, { force: true });
      } catch (error) {
        if (!hasCode(error, "ENOENT")) throw error;
      }
      continue;
    }
    if (Date.now() - started > LOCK_TIMEOUT_MS) {
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
    const owner = await readOwner(lock);
    if (owner?.nonce === me.nonce) unlinkIfPresent(lock);
  }
}

/** Reads the run's lease file; undefined when the run was never leased. */
export async function readLease(basePath: string, pipelineId: string): Promise<Lease | undefined> {
  let text: string;
  try {
    text = readFileSync(join(basePath, LEASES_DIR, `${pipelineId}.json`), "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
  const row = JSON.parse(text) as { owner: string; token: number; expires_at: number };
  return { pipelineId, owner: row.owner, token: row.token, expiresAt: new Date(row.expires_at) };
}

/** Writes the run's lease file atomically. */
export async function writeLease(basePath: string, lease: Lease, fsync: boolean): Promise<void> {
  const dir = join(basePath, LEASES_DIR);
  ensureDir(dir);
  const text = JSON.stringify({
    owner: lease.owner,
    token: lease.token,
    expires_at: lease.expiresAt.getTime(),
  });
  await replaceFile(dir, `${lease.pipelineId}.json`, text, fsync);
}
