/**
 * The optional packages behind zstd and lz4: imported (a literal `import()`, so bundlers see them)
 * only when an algorithm needs them, once per process, and reported as `MissingDriverError`
 * naming the package when absent. Tests replace the import to simulate a missing package.
 */
import { loadDriver } from "../stores/driver.js";

/** The npm package each algorithm that Node lacks is loaded from. */
export const COMPRESSION_PACKAGES = { zstd: "@bokuweb/zstd-wasm", lz4: "lz4-napi" } as const;

/** Imports an optional codec package; a test passes one that fails, to simulate a missing package. */
export type CodecImport = () => Promise<unknown>;

/** How `loadCodec` and `decoderFor` find the zstd and lz4 packages. */
export interface CodecLoadOptions {
  /** Replaces the import of the algorithm's package (tests: a package that is not installed). */
  import?: CodecImport;
}

/** What cairn uses of `@bokuweb/zstd-wasm`. */
export interface ZstdModule {
  init(): Promise<void>;
  compress(data: Uint8Array, level: number): Uint8Array;
  decompress(data: Uint8Array): Uint8Array;
}

/** What cairn uses of `lz4-napi`. */
export interface Lz4Module {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Buffer): Buffer;
}

// Literal import() calls, so that bundlers see the optional packages.
const defaultImports: Record<keyof typeof COMPRESSION_PACKAGES, CodecImport> = {
  zstd: () => import("@bokuweb/zstd-wasm"),
  lz4: () => import("lz4-napi"),
};

const loaded = new Map<string, Promise<unknown>>();

/** The package of `algorithm`, imported and prepared once per process (unless `options.import` replaces it). */
export async function codecPackage<T>(
  algorithm: keyof typeof COMPRESSION_PACKAGES,
  pick: (module: Record<string, unknown>) => T | undefined,
  options: CodecLoadOptions | undefined,
  prepare?: (module: T) => Promise<void>,
): Promise<T> {
  const packageName = COMPRESSION_PACKAGES[algorithm];
  const load = async () => {
    const module = await loadDriver(
      algorithm,
      packageName,
      options?.import ?? defaultImports[algorithm],
      pick,
      `${algorithm} compression`,
    );
    await prepare?.(module);
    return module;
  };
  if (options?.import) return load();
  let pending = loaded.get(algorithm);
  if (!pending) {
    pending = load();
    loaded.set(algorithm, pending);
    // A failed import is not kept: installing the package fixes the next attempt.
    pending.catch(() => loaded.delete(algorithm));
  }
  return pending as Promise<T>;
}

/** The zstd module, or undefined when the installed package lacks its API. */
export const pickZstd = (module: Record<string, unknown>): ZstdModule | undefined =>
  typeof module.init === "function" &&
  typeof module.compress === "function" &&
  typeof module.decompress === "function"
    ? (module as unknown as ZstdModule)
    : undefined;

/** The lz4 module, or undefined when the installed package lacks its API. */
export const pickLz4 = (module: Record<string, unknown>): Lz4Module | undefined =>
  typeof module.compressSync === "function" && typeof module.uncompressSync === "function"
    ? (module as unknown as Lz4Module)
    : undefined;
