/**
 * The pipeline's `migrateState`: on resume of a run written by another pipeline version, the
 * inputs the run started with are converted before planning, so every stage sees (and every
 * later checkpoint stores) inputs in the shape the current code expects.
 */
import { decode, encode } from "../core/codec.js";
import { MigrationError } from "../core/errors.js";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import type { ResumeCheckpoint } from "./planner.js";
import type { PipelineOptions } from "./types.js";

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The run's stored inputs, through `migrateState` when the run resumes under another pipeline
 * version and `execute()` was given no inputs. A finished run runs nothing again, so its state
 * is left as it is. A throw, or a result the codec cannot store, is a {@link MigrationError}
 * before anything is written.
 */
export async function migratedInputs(
  options: Pick<PipelineOptions, "version" | "migrateState">,
  given: Record<string, unknown> | undefined,
  checkpoint: ResumeCheckpoint | undefined,
  inputs: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const migrate = options.migrateState;
  if (given !== undefined || checkpoint === undefined || migrate === undefined) return inputs;
  if (checkpoint.metadata.stageName === PIPELINE_COMPLETE_STAGE) return inputs;
  const from = checkpoint.pipelineVersion;
  const to = options.version;
  if (from === to) return inputs;
  const pipelineId = checkpoint.metadata.pipelineId;
  let migrated: unknown;
  try {
    // A fresh copy: a migration that edits its argument in place cannot touch the checkpoint.
    migrated = await migrate(decode(encode(inputs, "inputs")) as Record<string, unknown>, from);
    if (!isPlainObject(migrated))
      throw new TypeError(`migrateState must return an object of inputs, got ${describe(migrated)}`);
    encode(migrated, "inputs");
  } catch (error) {
    throw new MigrationError("state", from, to, { cause: error, pipelineId });
  }
  return migrated;
}

const describe = (value: unknown) =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
