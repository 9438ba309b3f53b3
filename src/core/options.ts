/**
 * Unknown option names. An option object with a misspelt key (`encryptoin`, `basePth`) must fail
 * loudly: silently ignoring it would quietly drop what the caller asked for. Every entry point
 * that takes an options object (the manager, each store, the registry) checks its keys here.
 */
import { InvalidArgumentError } from "./errors.js";

/**
 * The keys of `options` that are not in `accepted`, in the object's order. A key whose value is
 * `undefined` is left out: it asks for nothing. `rename` maps a key before the lookup (the
 * registry accepts the seed's snake_case); the key is reported as written.
 */
export function unknownKeys(
  options: object,
  accepted: readonly string[],
  rename: (key: string) => string = (key) => key,
): string[] {
  return Object.entries(options)
    .filter(([key, value]) => value !== undefined && !accepted.includes(rename(key)))
    .map(([key]) => key);
}

/**
 * One sentence naming every unknown key and the accepted ones, e.g.
 * `the file store has no option "basePth" (options: basePath, fsync)`; undefined when none is.
 */
export function unknownOptionsProblem(
  subject: string,
  options: object,
  accepted: readonly string[],
  rename?: (key: string) => string,
): string | undefined {
  const unknown = unknownKeys(options, accepted, rename);
  if (unknown.length === 0) return undefined;
  const names = unknown.map((key) => JSON.stringify(key)).join(", ");
  return `${subject} has no option${unknown.length > 1 ? "s" : ""} ${names} (options: ${accepted.join(", ")})`;
}

/** Throws {@link InvalidArgumentError} naming every unknown key of `options` and the accepted ones. */
export function assertKnownOptions(subject: string, options: object, accepted: readonly string[]): void {
  const problem = unknownOptionsProblem(subject, options, accepted);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
}
