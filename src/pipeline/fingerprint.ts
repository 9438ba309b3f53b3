/**
 * Stage fingerprints and provenance. A completed stage is skipped on resume only while its
 * fingerprint still matches: same agent (identity and version), same step definition, same
 * resolved inputs. Provenance adds the output: SHA-256 over agent, inputs and output, with no
 * timestamps, so the same work always has the same provenance hash.
 */
import { canonicalJson, encode } from "../core/codec.js";
import { sha256 } from "../core/record.js";
import type { NormalizedStep } from "./validate.js";

/** What a stage's fingerprint is made of, each part hashed; persisted in the checkpoint state. */
export interface StageFingerprint {
  agent: string;
  definition: string;
  inputs: string;
}

/** The fingerprint of a step about to run with `inputs` (its resolved stage inputs). */
export function fingerprintOf(step: NormalizedStep, inputs: Record<string, unknown>): StageFingerprint {
  return {
    agent: step.agent.identity,
    definition: sha256(step.definitionText),
    inputs: sha256(encode(inputs, `inputs of stage ${step.name}`)),
  };
}

/** Why a stored fingerprint no longer matches, or undefined when it does. */
export function fingerprintChange(stored: unknown, current: StageFingerprint): string | undefined {
  if (stored === null || typeof stored !== "object") return "no fingerprint was recorded for it";
  const s = stored as Partial<StageFingerprint>;
  if (s.agent !== current.agent) return `its agent changed (${String(s.agent)} → ${current.agent})`;
  if (s.definition !== current.definition) return "its step definition (inputs or config) changed";
  if (s.inputs !== current.inputs) return "its resolved inputs changed";
  return undefined;
}

/** The provenance hash of a completed stage. */
export function provenanceOf(stageName: string, fingerprint: StageFingerprint, outputHash: string): string {
  return sha256(canonicalJson({ stage: stageName, ...fingerprint, output: outputHash }));
}

/** How a stage's current output came from a migration, for its provenance hash. */
export interface MigrationProvenance {
  /** The content hash of the output it was migrated from. */
  previousHash: string;
  fromVersion: number;
  toVersion: number;
  /** The pipeline version that migrated it. */
  by: string | undefined;
}

/**
 * The provenance hash of a migrated stage: a completed stage's, plus the migration (the output it
 * came from, the versions and the pipeline version that migrated it), so it differs from the
 * provenance of the same output produced by the agent.
 */
export function migratedProvenanceOf(
  stageName: string,
  fingerprint: StageFingerprint,
  outputHash: string,
  migration: MigrationProvenance,
): string {
  return sha256(
    canonicalJson({
      stage: stageName,
      ...fingerprint,
      output: outputHash,
      migrated: {
        from: migration.fromVersion,
        to: migration.toVersion,
        by: migration.by ?? null,
        previous: migration.previousHash,
      },
    }),
  );
}
