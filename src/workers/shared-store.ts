/**
 * Which checkpoint stores every worker of a fleet can reach. A run redelivered to another machine
 * resumes only if that machine sees the run's checkpoints: a store on a local path does not.
 */
import { StoreNotSharedError } from "../core/errors.js";

/** Strategies whose data lives on one machine (or in one process). */
const LOCAL_STRATEGIES: ReadonlySet<string> = new Set(["file", "sqlite", "memory"]);

/** True when workers on other machines can reach a store of this strategy (custom stores are trusted). */
export function isSharedStrategy(strategy: string): boolean {
  return !LOCAL_STRATEGIES.has(strategy);
}

/** Throws {@link StoreNotSharedError} for a local store, unless the caller said it is shared. */
export function assertSharedStore(pipeline: string, strategy: string, sharedStore: boolean): void {
  if (!sharedStore && !isSharedStrategy(strategy)) throw new StoreNotSharedError(pipeline, strategy);
}
