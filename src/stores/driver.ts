/**
 * Loading a store's driver, an optional peer dependency: imported only when the store is opened,
 * never when cairn is imported, and reported as a `MissingDriverError` naming the package to
 * install when it is absent. Each store passes its own `import()` so bundlers still see it.
 */
import { MissingDriverError } from "../core/errors.js";

const isModuleNotFound = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
};

/**
 * Imports `packageName` with `load` and picks what the store needs from the module; a module
 * without it is a `MissingDriverError` too, not a crash later. `subject` words the error for a
 * need that is not a store's (`zstd compression`).
 */
export async function loadDriver<T>(
  strategy: string,
  packageName: string,
  load: () => Promise<unknown>,
  pick: (module: Record<string, unknown>) => T | undefined,
  subject?: string,
): Promise<T> {
  let module: Record<string, unknown>;
  try {
    module = (await load()) as Record<string, unknown>;
  } catch (error) {
    if (isModuleNotFound(error)) {
      throw new MissingDriverError(strategy, packageName, { cause: error, subject });
    }
    throw error;
  }
  const picked = pick(module) ?? pick((module.default ?? {}) as Record<string, unknown>);
  if (picked === undefined) {
    // Installed but not usable: another package under that name, or an incompatible version.
    throw new MissingDriverError(strategy, packageName, {
      cause: new TypeError(
        `the installed ${packageName} module does not export what ${subject ?? `the ${strategy} store`} needs`,
      ),
      subject,
    });
  }
  return picked;
}
