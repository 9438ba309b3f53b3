/** The statistics page's shared computation: one at a time, fresh for its TTL, then stale while refreshed. */
import { describe, expect, it } from "vitest";
import { SharedComputation } from "../../src/ui/stats-cache.js";

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("SharedComputation", () => {
  it("computes once for requests that arrive together, and says when and how long", async () => {
    let clock = 1_000;
    let calls = 0;
    const gate = deferred<{ n: number }>();
    const shared = new SharedComputation(
      () => {
        calls++;
        return gate.promise;
      },
      60_000,
      () => clock,
    );
    const a = shared.get();
    const b = shared.get();
    clock += 250;
    gate.resolve({ n: 1 });
    const [ra, rb] = await Promise.all([a, b]);
    expect(calls).toBe(1);
    expect(ra).toEqual({ n: 1, computedAt: new Date(1_250).toISOString(), computeMs: 250 });
    expect(rb).toBe(ra);
  });

  it("serves the answer while fresh, then the stale one at once while one refresh runs", async () => {
    let clock = 0;
    let n = 0;
    const gates: ReturnType<typeof deferred<{ n: number }>>[] = [];
    const shared = new SharedComputation(
      () => {
        const gate = deferred<{ n: number }>();
        gates.push(gate);
        return gate.promise;
      },
      1_000,
      () => clock,
    );
    const first = shared.get();
    gates[0]?.resolve({ n: ++n });
    expect((await first).n).toBe(1);
    clock = 500;
    expect((await shared.get()).n).toBe(1);
    expect(gates).toHaveLength(1);
    clock = 1_500;
    // Stale: answered at once with the old value, one refresh started (not two).
    expect((await shared.get()).n).toBe(1);
    expect((await shared.get()).n).toBe(1);
    expect(gates).toHaveLength(2);
    gates[1]?.resolve({ n: ++n });
    await gates[1]?.promise;
    await Promise.resolve();
    expect((await shared.get()).n).toBe(2);
  });

  it("keeps the last answer when a refresh fails, and reports the failure", async () => {
    let clock = 0;
    let fail = false;
    const logged: string[] = [];
    const shared = new SharedComputation(
      async () => {
        if (fail) throw new Error("store down");
        return { ok: true };
      },
      10,
      () => clock,
      (text) => logged.push(text),
    );
    await shared.get();
    fail = true;
    clock = 100;
    expect((await shared.get()).ok).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(logged.join()).toContain("store down");
  });

  it("fails the first request when there is no answer yet", async () => {
    const shared = new SharedComputation(async () => {
      throw new Error("no store");
    }, 10);
    await expect(shared.get()).rejects.toThrow("no store");
  });
});
