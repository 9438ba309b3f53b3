/**
 * Key rotation: re-wraps each run's data key under another key-encryption key without touching
 * the data. Each run is one compare-and-set of its small key record, so a rotation killed
 * half-way leaves every run wrapped under either the old key or the new one, and running it
 * again skips the runs already done.
 */
import { CheckpointNotFoundError, InvalidArgumentError, KeyMissingError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointStore } from "../stores/types.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { parseKeyRecord, rewrapDataKey } from "../transforms/data-key.js";

/** Options of `rekey`. */
export interface RekeyOptions {
  /** Only this run (default: every run in the store). */
  pipelineId?: string;
  /** The key-encryption key to wrap data keys under (default: the ring's active key). */
  toKeyId?: string;
  /** Called after each run with how many are done of how many. */
  onProgress?: (done: number, total: number) => void;
}

/** What `rekey` did. */
export interface RekeyReport {
  /** The key-encryption key every encrypted run is now wrapped under. */
  toKeyId: string;
  /** Runs looked at. */
  runs: number;
  /** Runs whose data key was re-wrapped now. */
  rewrapped: number;
  /** Runs already wrapped under `toKeyId` (a rotation run before, or resumed). */
  alreadyCurrent: number;
  /** Runs stored without encryption: nothing to re-wrap. */
  plaintext: number;
}

/** Compare-and-set attempts on one run's key record before giving up (another writer keeps changing it). */
const MAX_ATTEMPTS = 5;

type Outcome = "rewrapped" | "alreadyCurrent" | "plaintext";

/** Re-wraps one run's key record; a lost compare-and-set is read again and retried. */
async function rekeyRun(
  store: AtRestStore,
  keyed: Required<Pick<CheckpointStore, "getRunKey" | "putRunKey">>,
  pipelineId: string,
  toKeyId: string,
): Promise<Outcome> {
  const ring = store.ring;
  if (!ring) throw new Error("rekeyRun: the caller checks the ring");
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const stored = await keyed.getRunKey(pipelineId);
    if (stored === undefined) return "plaintext";
    if (parseKeyRecord(pipelineId, stored).kek === toKeyId) return "alreadyCurrent";
    const next = rewrapDataKey(pipelineId, stored, ring, toKeyId);
    if (await keyed.putRunKey(pipelineId, next, stored)) return "rewrapped";
  }
  throw new InvalidArgumentError(
    `the key record of run ${pipelineId} changed ${MAX_ATTEMPTS} times during its rotation: run rekey again`,
  );
}

/** Re-wraps the data keys of every run (or one) under `toKeyId`; see {@link RekeyOptions}. */
export async function rekey(store: AtRestStore, options: RekeyOptions = {}): Promise<RekeyReport> {
  const ring = store.ring;
  if (!ring)
    throw new InvalidArgumentError(
      "rekey needs the key ring (the encryption option, or --key-file): it unwraps each data key to wrap it again",
    );
  const toKeyId = options.toKeyId ?? ring.activeKeyId;
  if (!ring.get(toKeyId)) throw new KeyMissingError(toKeyId, "key-encryption-key", "The key to rotate to");
  if (options.pipelineId !== undefined) assertValidName("pipelineId", options.pipelineId);
  const report: RekeyReport = { toKeyId, runs: 0, rewrapped: 0, alreadyCurrent: 0, plaintext: 0 };
  const { getRunKey, putRunKey } = store;
  let runs: string[];
  if (options.pipelineId !== undefined) {
    const id = options.pipelineId;
    const known =
      (getRunKey && (await getRunKey(id)) !== undefined) || (await store.listCheckpoints(id)).length > 0;
    if (!known) throw new CheckpointNotFoundError(id, `Run ${id} does not exist`);
    runs = [id];
  } else runs = await store.listPipelineIds();
  const total = runs.length;
  for (const pipelineId of runs) {
    // A store without key records holds no encrypted run.
    const outcome =
      getRunKey && putRunKey
        ? await rekeyRun(store, { getRunKey, putRunKey }, pipelineId, toKeyId)
        : "plaintext";
    report[outcome]++;
    report.runs++;
    options.onProgress?.(report.runs, total);
  }
  return report;
}
