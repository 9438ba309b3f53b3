/**
 * The statistics page reads every run of the store (5 s on sqlite, 49 s on postgres for 100,000
 * runs here), so the console computes it once for every page that asks at the same time, keeps
 * the answer for a minute, and past that answers at once with the answer it has while one refresh
 * runs behind it.
 * Each answer says when it was computed and how long that took, and the page shows it.
 */

/** An answer with its age. */
export type Timed<T> = T & { computedAt: string; computeMs: number };

/** One value computed at most once at a time, fresh for `ttlMs`, then served stale while refreshed. */
export class SharedComputation<T extends object> {
  private value: Timed<T> | undefined;
  private at = 0;
  private running: Promise<Timed<T>> | undefined;

  constructor(
    private readonly compute: () => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly log: (text: string) => void = () => {},
  ) {}

  /** The current answer: fresh, or stale with a refresh started, or the first one computed. */
  async get(): Promise<Timed<T>> {
    if (this.value && this.now() - this.at < this.ttlMs) return this.value;
    const refresh = this.refresh();
    if (this.value) {
      // A failed background refresh leaves the last answer; the next request tries again.
      refresh.catch((error) =>
        this.log(`cairn ui: refreshing the statistics failed: ${(error as Error).message}`),
      );
      return this.value;
    }
    return refresh;
  }

  private refresh(): Promise<Timed<T>> {
    this.running ??= (async () => {
      const began = this.now();
      try {
        const result = await this.compute();
        const done = this.now();
        this.value = { ...result, computedAt: new Date(done).toISOString(), computeMs: done - began };
        this.at = done;
        return this.value;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
