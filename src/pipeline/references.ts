/**
 * Stage input references: a string `"$extract.rows"` in a step's `inputs` stands for the `rows`
 * field of the `extract` stage's output; `"$extract"` for the whole output. `"$$text"` is the
 * literal string `"$text"`. References are checked when the pipeline is built: one to a stage
 * that does not run earlier is an error then, never an `undefined` at run time.
 */
import { CairnError, ErrorCode } from "../core/errors.js";

/** A reference could not be resolved against the outputs of a run. */
export class InvalidReferenceError extends CairnError {
  /** The reference as written, e.g. `$extract.rows`. */
  readonly reference: string;

  constructor(reference: string, reason: string) {
    super(ErrorCode.InvalidReference, `Input reference ${reference}: ${reason}`);
    this.reference = reference;
  }
}

/** A parsed reference. */
export interface Reference {
  raw: string;
  stage: string;
  path: string[];
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;

/**
 * Parses `$stage.a.b` given the known stage names. Stage names may contain dots, so the longest
 * dotted prefix that names a stage wins; undefined when no stage matches.
 */
export function parseReference(raw: string, stages: ReadonlySet<string>): Reference | undefined {
  const parts = raw.slice(1).split(".");
  for (let n = parts.length; n >= 1; n--) {
    const stage = parts.slice(0, n).join(".");
    if (stages.has(stage)) return { raw, stage, path: parts.slice(n) };
  }
  return undefined;
}

const isReference = (v: unknown): v is string =>
  typeof v === "string" && v.startsWith("$") && !v.startsWith("$$");

/** Every reference string inside a step's inputs (searched through plain objects and arrays). */
export function findReferences(value: unknown, found: string[] = []): string[] {
  if (isReference(value)) found.push(value);
  else if (Array.isArray(value)) for (const v of value) findReferences(v, found);
  else if (isPlain(value)) for (const v of Object.values(value)) findReferences(v, found);
  return found;
}

/** Problems with the references of step `index`: unknown stages and stages that run later. */
export function referenceProblems(
  stepName: string,
  index: number,
  inputs: unknown,
  order: readonly string[],
): string[] {
  const all = new Set(order);
  const problems: string[] = [];
  for (const raw of findReferences(inputs)) {
    const ref = parseReference(raw, all);
    if (!ref) {
      problems.push(`step ${stepName}: input ${raw} refers to no stage of this pipeline`);
    } else if (order.indexOf(ref.stage) >= index) {
      problems.push(
        `step ${stepName}: input ${raw} refers to stage ${ref.stage}, which does not run before it`,
      );
    }
  }
  return problems;
}

function follow(ref: Reference, output: unknown): unknown {
  let value = output;
  for (const key of ref.path) {
    if (value instanceof Map) {
      if (!value.has(key)) throw new InvalidReferenceError(ref.raw, `the output has no ${key}`);
      value = value.get(key);
    } else if (value !== null && typeof value === "object" && Object.hasOwn(value, key)) {
      value = (value as Record<string, unknown>)[key];
    } else {
      throw new InvalidReferenceError(ref.raw, `the output of ${ref.stage} has no ${key}`);
    }
  }
  return value;
}

/** Replaces every reference in `inputs` by the value it points to in `outputs`. */
export function resolveInputs(
  inputs: Record<string, unknown> | undefined,
  outputs: ReadonlyMap<string, unknown>,
): Record<string, unknown> {
  const stages = new Set(outputs.keys());
  const walk = (value: unknown): unknown => {
    if (typeof value === "string" && value.startsWith("$$")) return value.slice(1);
    if (isReference(value)) {
      const ref = parseReference(value, stages);
      if (!ref) throw new InvalidReferenceError(value, "that stage has no output in this run");
      return follow(ref, outputs.get(ref.stage));
    }
    if (Array.isArray(value)) return value.map(walk);
    if (isPlain(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    return value;
  };
  return (inputs ? walk(inputs) : {}) as Record<string, unknown>;
}
