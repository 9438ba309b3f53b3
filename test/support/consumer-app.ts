import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

interface LockEntry {
  version?: string;
  resolved?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/** The repository root: tests run with it as the working directory. */
export const ROOT = process.cwd();

/**
 * The environment for npm in the consumer project. `npm test` exports its own settings as
 * `npm_*` variables (the project's prefix among them), which would point a nested npm at this
 * repository; only the cache location is kept, since that is where the offline install reads.
 */
export function consumerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (!lower.startsWith("npm_") || lower === "npm_config_cache" || lower === "npm_config_userconfig")
      env[key] = value;
  }
  return { ...env, npm_config_update_notifier: "false", NO_COLOR: "1" };
}

/** Packs the built package into `dir`; returns the tarball's file name. */
export async function packInto(dir: string): Promise<string> {
  const { stdout } = await run("npm", ["pack", "--pack-destination", dir, "--silent"], {
    cwd: ROOT,
    env: consumerEnv(),
  });
  const name = stdout.trim().split("\n").pop();
  if (!name?.endsWith(".tgz")) throw new Error(`npm pack printed no tarball name: ${stdout}`);
  return name;
}

/**
 * Writes a consumer project's package.json and package-lock.json depending on the tarball, with
 * every runtime dependency pinned to the entry in this repository's lockfile (what `npm ci`
 * put in the npm cache). A lockfile with tarball URLs and integrities installs offline from the
 * cache; a bare `npm install <tgz>` would need registry metadata that `npm ci` never caches.
 */
export async function writeConsumerProject(app: string, tarballPath: string): Promise<void> {
  const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
  const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const name: string = manifest.name;
  const packages: Record<string, LockEntry> = {
    "": { name: "consumer-app", dependencies: { [name]: `file:${tarballPath}` } },
    [`node_modules/${name}`]: {
      version: manifest.version,
      resolved: `file:${tarballPath}`,
      license: manifest.license,
      dependencies: manifest.dependencies,
      peerDependencies: manifest.peerDependencies,
      peerDependenciesMeta: manifest.peerDependenciesMeta,
      bin: manifest.bin,
      engines: manifest.engines,
    },
  };
  // Node's resolution over the lockfile's paths: the nearest node_modules folder up from `from`.
  const locate = (from: string, dep: string): string | undefined => {
    for (let at = from; ; at = at.slice(0, Math.max(0, at.lastIndexOf("/node_modules/")))) {
      const key = `${at ? `${at}/` : ""}node_modules/${dep}`;
      if (lock.packages[key]) return key;
      if (!at) return undefined;
    }
  };
  const queue = Object.keys(manifest.dependencies as Record<string, string>).map((dep) => {
    const key = locate("", dep);
    if (!key) throw new Error(`${dep} is not in package-lock.json`);
    return key;
  });
  for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
    if (packages[key]) continue;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = lock.packages[key] as LockEntry;
    const dep = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    entry.resolved ??= `https://registry.npmjs.org/${dep}/-/${dep.split("/").pop()}-${entry.version}.tgz`;
    packages[key] = entry;
    for (const next of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = locate(key, next);
      if (found) queue.push(found);
    }
  }
  const appManifest = {
    name: "consumer-app",
    private: true,
    type: "module",
    dependencies: { [name]: `file:${tarballPath}` },
  };
  await writeFile(join(app, "package.json"), `${JSON.stringify(appManifest, null, 2)}\n`);
  const appLock = { name: "consumer-app", lockfileVersion: 3, requires: true, packages };
  await writeFile(join(app, "package-lock.json"), `${JSON.stringify(appLock, null, 2)}\n`);
}

/** The first code block after `marker` in a Markdown text. */
export function blockAfter(markdown: string, marker: string): string {
  const at = markdown.indexOf(marker);
  if (at < 0) throw new Error(`no ${marker} in the Markdown`);
  const match = /```(?:ts|typescript)\n([\s\S]*?)\n```/.exec(markdown.slice(at));
  if (!match?.[1]) throw new Error(`no ts code block after ${marker}`);
  return match[1];
}
