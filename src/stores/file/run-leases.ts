/**
 * Run leases of the file store, decided by what this process observes rather than by comparing
 * clocks. Each run's lease is a small JSON file in `basePath/.leases/` holding its owner, token,
 * TTL (a duration) and a version that changes on every write. Hosts sharing a folder do not share
 * a clock, so an absolute expiry written by one host means nothing on another: a contender takes
 * a lease over only once it has seen the same version, unchanged, for the lease's TTL on its own
 * monotonic clock. A live holder renews well within its TTL, changing the version, so no contender
 * ever sees it lapse; a dead or frozen one stops changing it. Every decision and write happens
 * under the run's lock file (`file-leases.ts`).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { replaceFile } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import { decideAcquire, isSameLease } from "../lease.js";
import type { Lease, LeaseAttempt } from "../types.js";
import { LEASES_DIR, withRunLock } from "./file-leases.js";
import { ensureDir } from "./run-folders.js";

/** A lease file as stored. */
interface LeaseRecord {
  owner: string;
  token: number;
  /** Expiry by the writer's wall clock: reported to contenders, never trusted for a takeover. */
  expires_at: number;
  /** The TTL the holder asked for, judged on the reader's clock; 0 once released. Absent in files of older cairn versions. */
  ttl_ms?: number;
  /** A fresh random value on every write: a lease whose version stays put is not being renewed. */
  version?: string;
}

/** How long a contender polls a lease it is confirming; a renewal shows up within this. */
const CONFIRM_POLL_MS = 250;
/** Runs whose lease versions one store instance remembers; the oldest are forgotten first. */
const MAX_WATCHED = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readRecord(basePath: string, pipelineId: string): LeaseRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(basePath, LEASES_DIR, `${pipelineId}.json`), "utf8")) as LeaseRecord;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

function toLease(pipelineId: string, record: LeaseRecord): Lease {
  return { pipelineId, owner: record.owner, token: record.token, expiresAt: new Date(record.expires_at) };
}

/** How a contender sees the run's lease: `lease.expiresAt` is at or before now once it lapsed. */
interface Judged {
  lease: Lease;
  /** Set when the holder's clock says the lease ended but this process has not yet seen it lapse. */
  confirmInMs?: number;
}

/** The leases of one file store instance, with what it has observed of each run's lease. */
export class RunLeases {
  /** Per run: the lease version last seen and when it was first seen (`performance.now()`). */
  private readonly seen = new Map<string, { version: string; since: number }>();

  constructor(
    private readonly basePath: string,
    private readonly fsync: boolean,
  ) {}

  /** The run's current lease, for the fencing check of a write made under the run lock. */
  current(pipelineId: string): Lease | undefined {
    const record = readRecord(this.basePath, pipelineId);
    return record && toLease(pipelineId, record);
  }

  /**
   * The recorded lease unless released or past its recorded expiry by this machine's clock. Reads
   * the file only (no lock, nothing observed): a display hint, skewed by the holder's clock if it
   * wrote from another host; takeover decisions never use it.
   */
  recorded(pipelineId: string): Lease | undefined {
    const record = readRecord(this.basePath, pipelineId);
    if (!record || record.ttl_ms === 0 || record.expires_at <= Date.now()) return undefined;
    return toLease(pipelineId, record);
  }

  /**
   * Takes the run's lease if it is free, released, this owner's, or seen unchanged for its TTL.
   * A lease its holder's clock says has ended, which this process has not yet watched for a TTL,
   * is watched now (outside the lock) instead of being refused: a new process resuming a dead
   * runner's run takes it over one TTL later rather than never.
   */
  async acquire(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    let watching: string | undefined;
    for (;;) {
      const step = await withRunLock(this.basePath, pipelineId, async () => {
        const record = readRecord(this.basePath, pipelineId);
        const now = Date.now();
        const judged = record && this.judge(pipelineId, record, now);
        const attempt = decideAcquire(pipelineId, judged?.lease, owner, ttlMs, now);
        if (attempt.acquired) await this.write(attempt.lease, ttlMs);
        return { attempt, confirmInMs: judged?.confirmInMs, version: record?.version };
      });
      if (step.attempt.acquired || step.confirmInMs === undefined) return step.attempt;
      // The version moved while watching: the holder is alive, whatever its clock says.
      if (watching !== undefined && step.version !== watching) return step.attempt;
      watching = step.version;
      await sleep(Math.max(1, Math.min(step.confirmInMs, CONFIRM_POLL_MS)));
    }
  }

  /** Extends a lease still held (same owner and token), with a new version. */
  async renew(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    return withRunLock(this.basePath, lease.pipelineId, async () => {
      if (!isSameLease(this.current(lease.pipelineId), lease)) return undefined;
      // From before the write: the holder counts its TTL from no later than any contender does.
      const renewed = { ...lease, expiresAt: new Date(Date.now() + ttlMs) };
      await this.write(renewed, ttlMs);
      return renewed;
    });
  }

  /** Ends a lease still held, keeping its token. */
  async release(lease: Lease): Promise<void> {
    await withRunLock(this.basePath, lease.pipelineId, async () => {
      if (isSameLease(this.current(lease.pipelineId), lease)) {
        await this.write({ ...lease, expiresAt: new Date(0) }, 0);
      }
    });
  }

  private judge(pipelineId: string, record: LeaseRecord, now: number): Judged {
    const lease = toLease(pipelineId, record);
    // A file an older cairn wrote has no version to watch: its own clock rule applies.
    if (record.version === undefined || record.ttl_ms === undefined) return { lease };
    if (record.ttl_ms === 0) return { lease: { ...lease, expiresAt: new Date(0) } };
    const remaining = record.ttl_ms - this.observe(pipelineId, record.version);
    if (remaining <= 0) return { lease: { ...lease, expiresAt: new Date(now) } };
    // Reported expiry: the holder's own when it is still ahead, else this process's estimate.
    const estimate = now + Math.ceil(remaining);
    if (record.expires_at > now) {
      return { lease: { ...lease, expiresAt: new Date(Math.min(record.expires_at, estimate)) } };
    }
    return { lease: { ...lease, expiresAt: new Date(estimate) }, confirmInMs: remaining };
  }

  /** How long this process has seen `version` as the run's lease, on its monotonic clock. */
  private observe(pipelineId: string, version: string): number {
    const now = performance.now();
    const entry = this.seen.get(pipelineId);
    if (entry?.version === version) return now - entry.since;
    this.remember(pipelineId, version, now);
    return 0;
  }

  private remember(pipelineId: string, version: string, since: number): void {
    this.seen.delete(pipelineId);
    this.seen.set(pipelineId, { version, since });
    if (this.seen.size > MAX_WATCHED) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  private async write(lease: Lease, ttlMs: number): Promise<void> {
    const dir = join(this.basePath, LEASES_DIR);
    ensureDir(dir);
    const version = randomBytes(8).toString("hex");
    const record: LeaseRecord = {
      owner: lease.owner,
      token: lease.token,
      expires_at: lease.expiresAt.getTime(),
      ttl_ms: ttlMs,
      version,
    };
    await replaceFile(dir, `${lease.pipelineId}.json`, JSON.stringify(record), this.fsync);
    // Seen from the moment it was written: another owner asking this same instance waits a TTL.
    this.remember(lease.pipelineId, version, performance.now());
  }
}
