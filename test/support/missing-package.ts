/**
 * "As for a user without the package": runs a script in a real child Node process (TypeScript
 * through tsx) whose module resolver refuses the given packages with the error Node gives for an
 * uninstalled one, or announces each time one is loaded. Used by the missing-driver, missing-engine
 * and lazy-telemetry tests.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** How the child's resolver treats packages, and where and how it runs. */
export interface WithoutPackagesOptions {
  /** Packages whose import fails with `ERR_MODULE_NOT_FOUND`. */
  missing?: string[];
  /** Packages that load as usual but print the given line each time they are loaded. */
  announce?: Record<string, string>;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** The resolve hooks module of the child. */
function hooks({ missing = [], announce = {} }: WithoutPackagesOptions): string {
  return `const missing = new Set(${JSON.stringify(missing)});
  const announce = new Map(Object.entries(${JSON.stringify(announce)}));
  export async function resolve(specifier, context, next) {
    if (missing.has(specifier)) {
      throw Object.assign(new Error("Cannot find package '" + specifier + "'"), { code: "ERR_MODULE_NOT_FOUND" });
    }
    if (announce.has(specifier)) {
      const url = (await next(specifier, context)).url;
      return { url: "data:text/javascript," + encodeURIComponent(
        "console.log(" + JSON.stringify(announce.get(specifier)) + "); export * from " + JSON.stringify(url) + ";"),
        shortCircuit: true };
    }
    return next(specifier, context);
  }`;
}

/** Runs the ES module `script` in a child process with those resolve hooks; resolves with its stdout. */
export async function runWithoutPackages(script: string, options: WithoutPackagesOptions): Promise<string> {
  const register = `import { register } from "node:module";
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks(options))}`)});`;
  const { stdout } = await run(
    process.execPath,
    [
      "--import",
      TSX,
      "--import",
      `data:text/javascript,${encodeURIComponent(register)}`,
      "--input-type=module",
      "--eval",
      script,
    ],
    {
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
    },
  );
  return stdout;
}
