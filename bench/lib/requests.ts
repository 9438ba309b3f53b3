/**
 * Counts HTTP requests and round trips this process sends, for the object-storage stores: both
 * SDKs send every request through `node:http`, which publishes each one on the diagnostics
 * channels `http.client.request.start` and `http.client.response.finish`. A retried request
 * counts again, as it costs again. A round trip is a wave of requests in flight together: one
 * starts when a request starts while none is in flight, so parallel puts count once.
 */
import { subscribe } from "node:diagnostics_channel";

let sent = 0;
let waves = 0;
let inFlight = 0;
let subscribed = false;

function ensureSubscribed(): void {
  if (subscribed) return;
  subscribed = true;
  subscribe("http.client.request.start", () => {
    sent++;
    if (inFlight === 0) waves++;
    inFlight++;
  });
  subscribe("http.client.response.finish", () => {
    inFlight = Math.max(0, inFlight - 1);
  });
}

/** What `action` sent: requests, and round trips (waves of requests in flight together). */
export interface Sent {
  requests: number;
  trips: number;
}

/** HTTP requests and round trips sent while `action` ran (nothing else may run concurrently). */
export async function countRequests(action: () => Promise<unknown>): Promise<Sent> {
  ensureSubscribed();
  // A request whose response never finished (an error) must not hide the next wave.
  inFlight = 0;
  const before = { requests: sent, trips: waves };
  await action();
  return { requests: sent - before.requests, trips: waves - before.trips };
}

/** Sample numbers for counted operations: far above the timed samples', so payloads stay unique. */
let nextCounted = 1_000_000_000;

/** One operation as the timing harness runs it: optional untimed preparation, then the operation. */
export interface Countable {
  prepare?(sample: number): void | Promise<void>;
  run(): Promise<unknown>;
}

/** Mean requests and round trips per operation over `ops` operations (prepare is not counted). */
export async function requestsPerOp(op: Countable, ops: number): Promise<Sent> {
  const total = { requests: 0, trips: 0 };
  for (let i = 0; i < ops; i++) {
    await op.prepare?.(nextCounted++);
    const one = await countRequests(() => op.run());
    total.requests += one.requests;
    total.trips += one.trips;
  }
  return { requests: total.requests / ops, trips: total.trips / ops };
}

/** `2 round trips (4 requests)`. */
export const sentText = (s: Sent) => `${s.trips} round trips (${s.requests} requests)`;
