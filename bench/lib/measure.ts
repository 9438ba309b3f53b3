/**
 * The timing harness. Variants that are compared with each other (cairn vs the raw floor, a
 * short run vs a long one) run interleaved in rounds rather than one after the other, so that
 * drift on the machine (page cache, CPU frequency, another process, the GC debt one variant
 * leaves behind) lands on all of them alike instead of biasing whichever ran last.
 */

/** One thing to time. */
export interface Variant {
  name: string;
  /** Called, untimed, before each round's batch (round 0 is the warm-up); e.g. start a fresh run. */
  beforeRound?(round: number): void | Promise<void>;
  /** Called, untimed, before each sample with a number unique across all variants and rounds. */
  prepare?(sample: number): void | Promise<void>;
  /** The timed operation. */
  run(): Promise<unknown>;
}

/** How many samples to take. */
export interface Plan {
  /** Untimed iterations per variant before measuring (JIT, caches, lazy setup). */
  warmup: number;
  /** Measured rounds; every variant runs one batch per round. */
  rounds: number;
  /** Samples per variant per round. */
  batch: number;
}

let nextSample = 1;
/** Results are kept here so no engine can treat an operation's result as unused. */
let sink: unknown;

// Children run with --expose-gc; collecting between batches keeps one variant's garbage from
// being collected (and timed) inside another variant's batch.
const collectGarbage = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function sampleOnce(variant: Variant): Promise<number> {
  await variant.prepare?.(nextSample++);
  const start = performance.now();
  sink = await variant.run();
  return performance.now() - start;
}

/** Times the variants interleaved in rounds; returns each variant's samples in milliseconds. */
export async function compareInRounds(
  variants: readonly Variant[],
  plan: Plan,
): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (const variant of variants) {
    await variant.beforeRound?.(0);
    for (let i = 0; i < plan.warmup; i++) await sampleOnce(variant);
  }
  for (let round = 1; round <= plan.rounds; round++) {
    // Alternate the order so no variant always runs right after the same other one.
    const order = round % 2 === 1 ? variants : [...variants].reverse();
    for (const variant of order) {
      collectGarbage();
      await variant.beforeRound?.(round);
      const into = samples.get(variant.name) as number[];
      for (let i = 0; i < plan.batch; i++) into.push(await sampleOnce(variant));
    }
  }
  if (sink === Symbol.for("never")) console.error("unreachable");
  return samples;
}
