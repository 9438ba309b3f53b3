/** Small filesystem and concurrency helpers of the file store. */
import { readdirSync, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";

/** True when `error` is a Node system error with one of these codes (ENOENT, EEXIST, ...). */
export function hasCode(error: unknown, ...codes: string[]): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" && codes.includes(code);
}

/**
 * Reads a folder's names; undefined when it does not exist. One synchronous system call: for a
 * local folder it is cheaper than a round trip through libuv's thread pool.
 */
export function readdirIfPresent(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch (error) {
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** True when something exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return false;
    throw error;
  }
}

/** Files read at once when a call reads many; keeps well clear of the open-file limit. */
const CONCURRENCY = 16;

/** `Promise.all(items.map(fn))` with at most a few calls in flight; results keep item order. */
export async function mapLimit<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return results;
}

/** Runs tasks one at a time per key, in call order; different keys run in parallel. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Resolves once every task started so far has finished. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }

  /** Runs `fn` once every earlier task of `key` has finished. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release = () => {};
    const done = new Promise<void>((r) => {
      release = r;
    });
    const tail = previous.then(() => done);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/**
 * A small JSON file's text and parsed value (undefined when the text is not JSON), or undefined
 * when the file does not exist; any other error propagates.
 */
export function readJsonFile(path: string): { text: string; value: unknown } | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    return { text, value: undefined };
  }
}
