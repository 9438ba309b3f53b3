/**
 * Lease owner ids name the process that holds the lease: `<host>:<pid>:<random>` for a runner
 * (`cairn-cleanup:<host>:<pid>:<random>` for a cleanup, `cairn-upgrade:…` for an upgrade). On this host the pid tells for sure
 * whether the holder is still running; of another host nothing is known.
 */
import { hostname } from "node:os";

/** True when `owner` names a process of this host that is no longer running. */
export function isGoneLocalOwner(owner: string): boolean {
  const parts = owner.split(":");
  if (parts[0] === "cairn-cleanup" || parts[0] === "cairn-upgrade") parts.shift();
  if (parts.length < 3) return false;
  const pid = Number(parts.at(-2));
  const host = parts.slice(0, -2).join(":");
  if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
