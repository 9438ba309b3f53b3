/**
 * Small filesystems for fault-injection tests: a size-limited tmpfs (to fill up) and read-only
 * remounts. Only root can mount, and root ignores permission bits, so as root a read-only
 * filesystem is the only honest way to refuse writes; elsewhere these helpers say why they
 * cannot run, and the caller skips loudly.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** True when this process runs as root (permission bits do not stop its writes). */
export const isRoot = process.getuid?.() === 0;

function run(...args: string[]): void {
  execFileSync(args[0] as string, args.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
}

/** A tmpfs mounted for one test file. */
export interface Tmpfs {
  /** The mount point. */
  dir: string;
  /** Makes the whole filesystem read-only (`mount -o remount,ro`). */
  readOnly(): void;
  /** Makes it writable again. */
  writable(): void;
  /** Unmounts it and removes the mount point; safe to call twice. */
  unmount(): void;
}

/**
 * Mounts a tmpfs of `sizeBytes` on a new folder; the reason it cannot (not root, `mount`
 * refused) as a string instead.
 */
export function mountTmpfs(sizeBytes: number): Tmpfs | string {
  if (!isRoot) return "mounting a filesystem needs root, and this process is not root";
  const dir = mkdtempSync(join(tmpdir(), "cairn-fault-"));
  try {
    run("mount", "-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755`, "tmpfs", dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `mount -t tmpfs failed here: ${stderr || (error as Error).message}`;
  }
  let mounted = true;
  return {
    dir,
    readOnly: () => run("mount", "-o", "remount,ro", dir),
    writable: () => run("mount", "-o", "remount,rw", dir),
    unmount() {
      if (!mounted) return;
      mounted = false;
      run("umount", dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Makes one folder read-only in place: as root a read-only bind mount of the folder onto itself
 * (root ignores mode bits); otherwise mode 0555. Returns the function that undoes it.
 */
export function makeFolderReadOnly(dir: string): () => void {
  if (!isRoot) {
    execFileSync("chmod", ["0555", dir]);
    return () => execFileSync("chmod", ["0755", dir]);
  }
  run("mount", "--bind", dir, dir);
  try {
    run("mount", "-o", "remount,bind,ro", dir);
  } catch (error) {
    run("umount", dir);
    throw error;
  }
  return () => run("umount", dir);
}

/** Writes zeros to `path` until the filesystem is full (ENOSPC); returns the bytes written. */
export function fillUp(path: string): number {
  const fd = openSync(path, "a");
  const chunk = Buffer.alloc(4096);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (error) {
    // Only a full filesystem ends the loop; anything else is a broken test setup.
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  return written;
}
