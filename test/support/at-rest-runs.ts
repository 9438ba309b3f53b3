/**
 * Runs for the at-rest tests: key rings, a marker string that must never be seen in an encrypted
 * store, and runs whose states and outputs carry it.
 */
import { randomBytes } from "node:crypto";
import type { CheckpointManager } from "../../src/index.js";
import type { EncryptionOptions } from "../../src/transforms/keys.js";
import type { RawPiece } from "./at-rest-stores.js";

/** Key-encryption keys of the tests, made once per test file. */
export const KEKS = { k1: randomBytes(32), k2: randomBytes(32) } as const;

/** A key ring holding `ids` (default: k1), the first one active. */
export function ring(...ids: (keyof typeof KEKS)[]): EncryptionOptions {
  const chosen = ids.length > 0 ? ids : (["k1"] as const);
  return {
    keys: Object.fromEntries(chosen.map((id) => [id, KEKS[id]])),
    activeKeyId: chosen[0] as string,
  };
}

/** Text found in every state and output the tests write. */
export const MARKER = "Zebra-Marker-q7X9";

/** A payload that compresses well and carries the marker. */
export function payload(stage: string, size = 4000): string {
  return `${MARKER} ${stage} `.repeat(Math.ceil(size / 24)).slice(0, size);
}

/** The state after `stage`, with the marker. */
export function stateAfter(stage: string) {
  return { marker: MARKER, stage, text: payload(stage) };
}

/** The output of `stage`, with the marker. */
export function outputOf(stage: string) {
  return { marker: MARKER, text: payload(`${stage}-out`) };
}

/** Writes one checkpoint of `pipelineId` after `stages[index]`; returns its id. */
export function writeStage(
  manager: CheckpointManager,
  pipelineId: string,
  stages: readonly string[],
  index: number,
): Promise<string> {
  const stage = stages[index] as string;
  return manager.createCheckpoint({
    pipelineId,
    stageName: stage,
    stageIndex: index,
    completedStages: stages.slice(0, index + 1),
    pendingStages: stages.slice(index + 1),
    status: "completed",
    stateData: stateAfter(stage),
    // Every completed stage's output, as a runner passes them: stored once each (by address).
    agentOutputs: Object.fromEntries(stages.slice(0, index + 1).map((s) => [s, outputOf(s)])),
  });
}

/** Writes one checkpoint per stage; returns their ids, oldest first. */
export async function writeRun(
  manager: CheckpointManager,
  pipelineId: string,
  stages: readonly string[] = ["fetch", "parse", "score"],
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < stages.length; i++) ids.push(await writeStage(manager, pipelineId, stages, i));
  return ids;
}

/** Where in `pieces` the marker appears: as it is, or base64-encoded at any alignment. */
export function markerTraces(pieces: readonly RawPiece[], marker = MARKER): string[] {
  const forms = [marker, ...[0, 1, 2].map((shift) => base64Core("x".repeat(shift) + marker, shift))];
  const found: string[] = [];
  for (const piece of pieces)
    for (const form of forms) if (piece.bytes.includes(form)) found.push(`${piece.where}: ${form}`);
  return found;
}

/** The base64 characters that encode `marker` whatever comes before it (`shift` bytes of padding). */
function base64Core(text: string, shift: number): string {
  const encoded = Buffer.from(text).toString("base64");
  // Drop the characters that mix in the bytes before and after the marker.
  const start = Math.ceil((shift * 4) / 3) + 1;
  return encoded.slice(start, encoded.length - 4);
}

/** `c` changed to another character of its kind (digit, lower or upper letter, base64 sign). */
function otherChar(c: string): string {
  const cycle = (from: string, n: number) =>
    String.fromCharCode(from.charCodeAt(0) + ((c.charCodeAt(0) - from.charCodeAt(0) + 1) % n));
  if (/[0-9]/.test(c)) return cycle("0", 10);
  if (/[a-z]/.test(c)) return cycle("a", 26);
  if (/[A-Z]/.test(c)) return cycle("A", 26);
  if (c === "+") return "/";
  if (c === "/") return "+";
  throw new Error(`no other character for ${JSON.stringify(c)}`);
}

/** Where, after the field's opening text, each tampered field gets its changed character. */
const FIELDS = {
  d: { anchor: '"d":"', offset: 20 },
  "e.n": { anchor: '"n":"', offset: 0 },
  "e.k": { anchor: '"k":"', offset: 0 },
  z: { anchor: '"z":"', offset: 0 },
  o: { anchor: '"o":{"completed_stages":["', offset: 0 },
} as const;

/** A stored envelope field that the tamper tests change. */
export type EnvelopeField = keyof typeof FIELDS;

/** `stored` with one character of envelope field `field` changed, everything else as it was. */
export function flipField(stored: string, field: EnvelopeField): string {
  const { anchor, offset } = FIELDS[field];
  const at = stored.indexOf(anchor);
  if (at < 0) throw new Error(`no ${field} in ${stored.slice(0, 120)}`);
  const i = at + anchor.length + offset;
  return `${stored.slice(0, i)}${otherChar(stored[i] as string)}${stored.slice(i + 1)}`;
}

/** The output addresses a stored body references, read from its clear outline (plain or sealed). */
export function storedRefs(stored: string): Record<string, string> {
  const parsed = JSON.parse(stored) as {
    o?: { output_refs: Record<string, string> };
    output_refs?: Record<string, string>;
  };
  const refs = parsed.o?.output_refs ?? parsed.output_refs;
  if (!refs) throw new Error(`no output references in ${stored.slice(0, 120)}`);
  return refs;
}
