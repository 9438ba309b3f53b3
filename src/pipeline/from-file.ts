/**
 * Pipelines as files (YAML or JSON). Keys may be written camelCase or in the seed's snake_case;
 * checkpoint options go either in a `checkpoint:` block or at the top level as in the seed.
 * Agents are names from the `agents:` block or the registry, or `./module.js:ExportName`
 * references resolved against the pipeline file's folder; a class export is instantiated.
 *
 *   name: etl_pipeline
 *   checkpoint: { enabled: true, strategy: file, config: { base_path: ./checkpoints } }
 *   agents: { ExtractAgent: ./agents.js:ExtractAgent }
 *   steps:
 *     - { name: extract, agent: ExtractAgent, inputs: { source: data.csv } }
 *     - { name: load, agent: ./load.js, inputs: { rows: "$extract.rows" }, retries: 2 }
 *
 * A step's `depends_on: [a, b]` makes it wait for those stages instead of the step before it;
 * `max_concurrency` bounds how many independent stages run at once. `durability` (sync, async,
 * exit) and `checkpoint_policy` (every-stage, auto) are top-level keys; a step's `side_effects:
 * true` keeps the auto policy from skipping the checkpoints around it.
 *
 * A pipeline's `version`, `migrate_state` and a step's `output_version` and `migrate` (the step's
 * `migrateOutput`) name migrations as `./module.js:exportName`, loaded like agents.
 *
 * `checkpoint: { replicas: [sqlite:./backup.db], replica_timeout_ms: 5000 }` are the
 * `checkpointReplicas` and `checkpointReplicaTimeoutMs` options.
 */
import { readFile } from "node:fs/promises";
import { dirname, extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parse as parseYaml } from "yaml";
import { CheckpointNotFoundError, InvalidArgumentError } from "../core/errors.js";
import { unknownOptionsProblem } from "../core/options.js";
import { keyFileOptions, readKeyFile } from "../transforms/key-file.js";
import type { EncryptionOptions } from "../transforms/keys.js";
import { hasCode } from "../util/fs-util.js";
import { agentProblem } from "./agents.js";
import type { Agent, PipelineOptions, StepDefinition } from "./types.js";
import { InvalidPipelineError, STEP_FIELDS } from "./validate.js";

/** The fields of a step in a file: a step's `migrateOutput` is written `migrate` there. */
const FILE_STEP_FIELDS = [...STEP_FIELDS.filter((f) => f !== "migrateOutput"), "migrate"];

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Keys a pipeline file may have at the top level (camelCase; snake_case is accepted too). */
const FILE_KEYS = [
  "name",
  "steps",
  "agents",
  "checkpoint",
  "checkpointEnabled",
  "checkpointStrategy",
  "checkpointConfig",
  "checkpointStore",
  "checkpointCompression",
  "checkpointEncryption",
  "checkpointReplicas",
  "checkpointReplicaTimeoutMs",
  "checkpointAfterEachStep",
  "autoResume",
  "leaseTtlMs",
  "version",
  "migrateState",
  "maxConcurrency",
  "durability",
  "checkpointPolicy",
] as const satisfies readonly (keyof PipelineOptions | "checkpoint")[];
/** Keys of the `checkpoint:` block. */
const CHECKPOINT_KEYS = [
  "enabled",
  "strategy",
  "config",
  "store",
  "compression",
  "encryption",
  "replicas",
  "replicaTimeoutMs",
  "autoResume",
  "afterEachStep",
  "leaseTtlMs",
];

/**
 * A file's `checkpoint.encryption`: `{ key_file: path }` (relative to the pipeline file's folder)
 * or `{ key_env: VAR }` (the variable holds a key file's JSON text), read into a key ring. Never
 * the keys themselves: pipeline files are shared and committed. Problems go to `problems`.
 */
async function encryptionFromFile(
  value: unknown,
  baseDir: string,
  problems: string[],
): Promise<EncryptionOptions | undefined> {
  const where = "checkpoint.encryption";
  if (!isPlainObject(value)) {
    problems.push(`${where} must be { key_file: <path> } or { key_env: <VARIABLE> }`);
    return undefined;
  }
  const spec = camelKeys(value);
  if (["keys", "key", "activeKeyId"].some((k) => k in spec)) {
    problems.push(
      `${where} must not hold keys: a pipeline file is shared and committed, so anyone reading it ` +
        "could decrypt the runs. Put the keys in a key file (cairn keys generate --key-file <path>) and " +
        "name it with key_file, or put the key file's text in an environment variable named by key_env",
    );
    return undefined;
  }
  const unknown = unknownOptionsProblem(where, value, ["keyFile", "keyEnv"], camel);
  if (unknown !== undefined) problems.push(unknown);
  const { keyFile, keyEnv } = spec;
  if ((keyFile === undefined) === (keyEnv === undefined)) {
    problems.push(
      `${where} needs exactly one of key_file (a key file's path) or key_env (a variable holding its text)`,
    );
    return undefined;
  }
  try {
    if (keyFile !== undefined) {
      if (typeof keyFile !== "string" || keyFile === "") {
        problems.push(`${where}.key_file must be a path`);
        return undefined;
      }
      return await readKeyFile(resolve(baseDir, keyFile));
    }
    if (typeof keyEnv !== "string" || keyEnv === "") {
      problems.push(`${where}.key_env must name an environment variable`);
      return undefined;
    }
    const text = process.env[keyEnv];
    if (!text) {
      problems.push(
        `${where}.key_env names ${keyEnv}, which is not set (it must hold a key file's JSON text)`,
      );
      return undefined;
    }
    return keyFileOptions(text, `$${keyEnv}`);
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      problems.push(`${where}: ${error.message}`);
      return undefined;
    }
    throw error;
  }
}

/** Renames the keys of an object to camelCase (one level). */
function camelKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), v]));
}

/** True for an agent written as a module reference rather than a name. */
const isModuleRef = (spec: string) =>
  spec.startsWith(".") || spec.startsWith("/") || /\.(c|m)?js(:|$)/.test(spec);

const isClass = (value: unknown): value is new () => unknown =>
  typeof value === "function" && /^class[\s{]/.test(Function.prototype.toString.call(value));

/** Loads the export `./module.js:Export` (default: `default`) relative to `baseDir`; `label` names it in errors. */
async function loadExport(spec: string, baseDir: string, label: string): Promise<unknown> {
  const colon = spec.lastIndexOf(":");
  const hasExport = colon > 1 && !/^[A-Za-z]:[\\/]/.test(spec.slice(colon - 1));
  const modulePath = hasExport ? spec.slice(0, colon) : spec;
  const exportName = hasExport ? spec.slice(colon + 1) : "default";
  const url = pathToFileURL(resolve(baseDir, modulePath)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidPipelineError([`${label}: cannot load ${modulePath}: ${(error as Error).message}`]);
  }
  if (!(exportName in mod)) {
    throw new InvalidPipelineError([
      `${label}: ${modulePath} has no export ${exportName} (it exports ${Object.keys(mod).join(", ") || "nothing"})`,
    ]);
  }
  return mod[exportName];
}

/** Loads `./module.js:Export` relative to `baseDir` and turns the export into an agent. */
async function loadAgentModule(spec: string, baseDir: string): Promise<Agent> {
  const exported = await loadExport(spec, baseDir, `agent ${spec}`);
  const agent = isClass(exported) ? new exported() : exported;
  const problem = agentProblem(agent);
  if (problem) throw new InvalidPipelineError([`agent ${spec}: ${problem}`]);
  return agent as Agent;
}

/**
 * A migration named in the file (`./agents.js:migrateTotalsV1`): a function exported by a
 * module. `where` names what declares it (`step totals: migrate`); problems go to `problems`.
 */
async function loadMigration(
  spec: unknown,
  baseDir: string,
  where: string,
  problems: string[],
): Promise<((...args: never[]) => unknown) | undefined> {
  if (typeof spec !== "string" || !isModuleRef(spec)) {
    problems.push(
      `${where} must name an exported function like ./agents.js:migrateV1, got ${JSON.stringify(spec)}`,
    );
    return undefined;
  }
  try {
    const exported = await loadExport(spec, baseDir, `${where} ${spec}`);
    if (typeof exported === "function") return exported as (...args: never[]) => unknown;
    problems.push(
      `${where} ${spec}: the export is ${exported === null ? "null" : typeof exported}, not a function`,
    );
  } catch (error) {
    if (!(error instanceof InvalidPipelineError)) throw error;
    problems.push(...error.problems);
  }
  return undefined;
}

/** Parses pipeline file text (YAML or JSON) into a plain object. */
export function parsePipelineText(text: string, source: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = extname(source) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new InvalidPipelineError([`${source} does not parse: ${(error as Error).message}`]);
  }
  if (!isPlainObject(parsed))
    throw new InvalidPipelineError([`${source} must hold an object with name and steps`]);
  return parsed;
}

/**
 * Turns a parsed pipeline file into Pipeline options, loading agent modules. Extra options
 * (such as `checkpointStore` or `onEvent`) given by the caller override the file.
 */
export async function optionsFromDefinition(
  definition: Record<string, unknown>,
  baseDir: string,
  overrides: Partial<PipelineOptions> = {},
): Promise<PipelineOptions> {
  const top = camelKeys(definition);
  const problems: string[] = [];
  // Checked here, in the file's own terms (`checkpoint.enabld`, not `checkpointEnabld`).
  const unknownTop = unknownOptionsProblem("the pipeline file", definition, FILE_KEYS, camel);
  if (unknownTop !== undefined) problems.push(unknownTop);
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(top)) {
    if (key === "checkpoint") {
      if (!isPlainObject(value)) problems.push("checkpoint must be an object");
      else {
        const unknown = unknownOptionsProblem("its checkpoint block", value, CHECKPOINT_KEYS, camel);
        if (unknown !== undefined) problems.push(unknown);
        const block = camelKeys(value);
        for (const [k, v] of Object.entries(block)) {
          const name =
            k === "afterEachStep"
              ? "checkpointAfterEachStep"
              : k === "autoResume" || k === "leaseTtlMs"
                ? k
                : `checkpoint${k[0]?.toUpperCase()}${k.slice(1)}`;
          options[name] = v;
        }
      }
    } else if (key === "migrateState") {
      const fn = await loadMigration(value, baseDir, "migrate_state", problems);
      if (fn) options.migrateState = fn;
    } else if (key !== "agents" && key !== "steps") options[key] = value;
  }
  // `{ algorithm: zstd, min_bytes: 512 }`, in the file's own spelling.
  if (isPlainObject(options.checkpointCompression))
    options.checkpointCompression = camelKeys(options.checkpointCompression);
  if (options.checkpointEncryption !== undefined) {
    // A key ring given by the caller (the CLI's --key-file) replaces the file's: its key file is not read.
    if (overrides.checkpointEncryption !== undefined) delete options.checkpointEncryption;
    else {
      const resolved = await encryptionFromFile(options.checkpointEncryption, baseDir, problems);
      if (resolved) options.checkpointEncryption = resolved;
      else delete options.checkpointEncryption;
    }
  }
  const agents: Record<string, Agent> = {};
  const rawAgents = top.agents ?? {};
  if (!isPlainObject(rawAgents)) problems.push("agents must map names to module references");
  else {
    for (const [name, spec] of Object.entries(rawAgents)) {
      if (typeof spec !== "string")
        problems.push(`agents.${name} must be a module reference like ./agents.js:${name}`);
      else {
        try {
          agents[name] = await loadAgentModule(spec, baseDir);
        } catch (error) {
          problems.push(...((error as InvalidPipelineError).problems ?? [(error as Error).message]));
        }
      }
    }
  }
  const steps: StepDefinition[] = [];
  if (!Array.isArray(top.steps)) problems.push("steps must be a list");
  else {
    for (const [i, raw] of top.steps.entries()) {
      if (!isPlainObject(raw)) {
        problems.push(`steps[${i}] must be an object`);
        continue;
      }
      const label = typeof raw.name === "string" ? `step ${raw.name}` : `steps[${i}]`;
      const unknown = unknownOptionsProblem(label, raw, FILE_STEP_FIELDS, camel);
      if (unknown !== undefined) problems.push(unknown);
      const { migrate, ...fields } = camelKeys(raw);
      const step = fields as unknown as StepDefinition;
      if (migrate !== undefined) {
        const fn = await loadMigration(migrate, baseDir, `${label}: migrate`, problems);
        if (fn) step.migrateOutput = fn as StepDefinition["migrateOutput"];
      }
      if (typeof step.agent === "string" && isModuleRef(step.agent)) {
        try {
          step.agent = await loadAgentModule(step.agent, baseDir);
        } catch (error) {
          problems.push(...((error as InvalidPipelineError).problems ?? [(error as Error).message]));
        }
      }
      steps.push(step);
    }
  }
  if (problems.length > 0) throw new InvalidPipelineError(problems);
  return { ...(options as Partial<PipelineOptions>), agents, steps, ...overrides } as PipelineOptions;
}

/** Reads and parses a pipeline file, without loading its agents; a missing file is `CheckpointNotFoundError`. */
export async function readPipelineDefinition(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT"))
      throw new CheckpointNotFoundError(path, `Pipeline file ${path} does not exist`);
    throw error;
  }
  return parsePipelineText(text, path);
}

/** Reads a pipeline file and returns its options, ready for `new Pipeline(...)`. */
export async function loadPipelineOptions(
  path: string,
  overrides: Partial<PipelineOptions> = {},
): Promise<PipelineOptions> {
  return optionsFromDefinition(await readPipelineDefinition(path), dirname(resolve(path)), overrides);
}
