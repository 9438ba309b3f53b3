/**
 * Keeps the process alive while store work is in flight, and only then. The connections cairn
 * opens itself do not hold the process open when idle (PostgreSQL's pool with
 * `allowExitOnIdle`, Redis's socket unref'd), so a script that forgets `close()` still ends; but
 * an unref'd socket does not keep Node running while a reply is awaited either, so every store
 * call holds one ref'd timer (shared by all calls in flight) until it settles.
 */
let inFlight = 0;
let holder: NodeJS.Timeout | undefined;

// Long enough never to fire in practice; the timer is only there to be a ref'd handle.
const FOREVER_MS = 2 ** 31 - 1;

/** Runs `work`, keeping the process alive until it settles. */
export async function keepAliveWhile<T>(work: () => Promise<T>): Promise<T> {
  if (inFlight++ === 0) holder = setInterval(() => {}, FOREVER_MS);
  try {
    return await work();
  } finally {
    if (--inFlight === 0) {
      clearInterval(holder);
      holder = undefined;
    }
  }
}
