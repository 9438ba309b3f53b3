/**
 * Up-front validation of pipeline options. Every problem is collected and reported in one
 * `InvalidPipelineError`, so a user fixes a pipeline definition in one pass.
 */

import { encode } from "../core/codec.js";
import { CairnError, ErrorCode } from "../core/errors.js";
import { isValidName } from "../core/ids.js";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import { agentProblem, type ResolvedAgent, resolveAgent } from "./agents.js";
import { ancestorsOf, cyclesOf, resolvedDependencies } from "./dag.js";
import { findReferences, parseReference } from "./references.js";
import { replicaProblems } from "./replicas.js";
import type { Agent, PipelineOptions, StepDefinition } from "./types.js";

/** The pipeline definition is invalid; `problems` lists everything wrong with it. */
export class InvalidPipelineError extends CairnError {
  /** Every problem found, one sentence each. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(ErrorCode.InvalidPipeline, `Invalid pipeline:\n  - ${problems.join("\n  - ")}`);
    this.problems = problems;
  }
}

/** A validated step. */
export interface NormalizedStep {
  name: string;
  index: number;
  agent: ResolvedAgent;
  inputs: Record<string, unknown> | undefined;
  retries: number;
  retryDelayMs: number;
  timeoutMs: number | undefined;
  config: Record<string, unknown>;
  /** The shape of its output (default 1). */
  outputVersion: number;
  /** Converts a stored output of an older version, when the step has one. */
  migrateOutput: ((output: unknown, fromVersion: number) => unknown) | undefined;
  /**
   * Canonical text of what defines the step besides its agent (inputs spec and config, and the
   * output version when not 1). A step without a version keeps the text it had before output
   * versions existed: upgrading cairn must not make every stored run re-run.
   */
  definitionText: string;
  /** The stages it depends on, resolved: its `dependsOn`, else the step listed before it. */
  dependsOn: string[];
  /** Its agent acts on the outside world: the checkpoints around it are never skipped. */
  sideEffects: boolean;
}

/** Default of `maxConcurrency`: how many independent stages run at once. */
export const DEFAULT_MAX_CONCURRENCY = 4;

const OPTION_KEYS = new Set<keyof PipelineOptions>([
  "name",
  "steps",
  "checkpointEnabled",
  "checkpointStrategy",
  "checkpointConfig",
  "checkpointStore",
  "checkpointCompression",
  "checkpointEncryption",
  "checkpointReplicas",
  "checkpointReplicaTimeoutMs",
  "autoResume",
  "checkpointAfterEachStep",
  "agents",
  "onEvent",
  "leaseTtlMs",
  "version",
  "migrateState",
  "maxConcurrency",
  "durability",
  "checkpointPolicy",
]);
/** The fields of one step; anything else is a validation problem (a pipeline file's too). */
export const STEP_FIELDS = [
  "name",
  "agent",
  "inputs",
  "retries",
  "retryDelayMs",
  "timeoutMs",
  "config",
  "outputVersion",
  "migrateOutput",
  "dependsOn",
  "sideEffects",
] as const satisfies readonly (keyof StepDefinition)[];
const STEP_KEYS = new Set<string>(STEP_FIELDS);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

function checkNumber(problems: string[], where: string, value: unknown, min: number, integer = true): void {
  if (value === undefined) return;
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < min ||
    (integer && !Number.isInteger(value))
  ) {
    problems.push(
      `${where} must be ${integer ? "an integer" : "a number"} ≥ ${min}, got ${JSON.stringify(value)}`,
    );
  }
}

function checkChoice(problems: string[], where: string, value: unknown, choices: readonly string[]): void {
  if (value !== undefined && !choices.includes(value as string))
    problems.push(
      `${where} must be one of ${choices.map((c) => `"${c}"`).join(", ")}, got ${JSON.stringify(value)}`,
    );
}

/** Why `value` is not a pipeline version (1–128 printable characters), or undefined. */
export function pipelineVersionProblem(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    return `version must be a string such as "2.0.0", got ${JSON.stringify(value) ?? typeof value}`;
  // Printable ASCII without leading or trailing blanks: it is shown in listings and compared exactly.
  if (!/^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/.test(value))
    return `version ${JSON.stringify(value)} must be 1 to 128 printable characters, without leading or trailing spaces`;
  return undefined;
}

function checkEncodable(problems: string[], where: string, value: unknown): string {
  try {
    return encode(value ?? {}, where);
  } catch (error) {
    problems.push((error as Error).message);
    return "{}";
  }
}

/** Validates pipeline options; returns the normalized steps or throws {@link InvalidPipelineError}. */
export function validatePipeline(options: PipelineOptions): NormalizedStep[] {
  const { steps, problems } = pipelineProblems(options);
  if (problems.length > 0) throw new InvalidPipelineError(problems);
  return steps;
}

/**
 * Every problem of pipeline options, with the steps that could be normalized; the caller adds
 * its own (the checkpoint store's) and reports them all in one {@link InvalidPipelineError}.
 */
export function pipelineProblems(options: PipelineOptions): { steps: NormalizedStep[]; problems: string[] } {
  const problems: string[] = [];
  if (!isPlainObject(options)) return { steps: [], problems: ["options must be an object"] };
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key as keyof PipelineOptions)) problems.push(`unknown option ${key}`);
  }
  if (!isValidName(options.name)) {
    problems.push(
      `name ${JSON.stringify(options.name)} must use letters, digits, '.', '_' and '-' (at most 128)`,
    );
  }
  for (const key of ["checkpointEnabled", "autoResume", "checkpointAfterEachStep"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "boolean")
      problems.push(`${key} must be a boolean`);
  }
  checkChoice(problems, "durability", options.durability, ["sync", "async", "exit"]);
  checkChoice(problems, "checkpointPolicy", options.checkpointPolicy, ["every-stage", "auto"]);
  if (
    options.durability !== undefined &&
    options.durability !== "exit" &&
    options.checkpointAfterEachStep === false
  )
    problems.push(
      `checkpointAfterEachStep: false is durability "exit", which contradicts durability "${options.durability}": keep one of them`,
    );
  checkNumber(problems, "leaseTtlMs", options.leaseTtlMs, 100);
  checkNumber(problems, "maxConcurrency", options.maxConcurrency, 1);
  checkNumber(problems, "checkpointReplicaTimeoutMs", options.checkpointReplicaTimeoutMs, 0);
  problems.push(...replicaProblems(options.checkpointReplicas));
  if (
    Array.isArray(options.checkpointReplicas) &&
    options.checkpointReplicas.length > 0 &&
    options.checkpointEnabled !== true
  )
    problems.push("checkpointReplicas copy the run's checkpoints: they need checkpointEnabled: true");
  const versionProblem = pipelineVersionProblem(options.version);
  if (versionProblem) problems.push(versionProblem);
  if (options.migrateState !== undefined && typeof options.migrateState !== "function")
    problems.push("migrateState must be a function (inputs, fromVersion) => inputs");
  if (options.onEvent !== undefined && typeof options.onEvent !== "function")
    problems.push("onEvent must be a function");
  const agents = options.agents;
  if (agents !== undefined && !isPlainObject(agents))
    problems.push("agents must be an object of name → agent");
  for (const [name, agent] of Object.entries(
    (isPlainObject(agents) ? agents : {}) as Record<string, Agent>,
  )) {
    const problem = agentProblem(agent);
    if (problem) problems.push(`agents.${name}: ${problem}`);
  }
  const steps = options.steps;
  if (!Array.isArray(steps) || steps.length === 0) {
    problems.push("steps must be a non-empty array");
    return { steps: [], problems };
  }
  const order = steps.map((s) => (isPlainObject(s) ? String(s.name) : ""));
  const seen = new Set<string>();
  const normalized: NormalizedStep[] = [];
  steps.forEach((step, index) => {
    const where = `step ${isPlainObject(step) && typeof step.name === "string" ? step.name : `#${index}`}`;
    if (!isPlainObject(step)) {
      problems.push(`${where} must be an object with a name and an agent`);
      return;
    }
    for (const key of Object.keys(step))
      if (!STEP_KEYS.has(key)) problems.push(`${where}: unknown field ${key}`);
    const name = step.name;
    if (!isValidName(name))
      problems.push(`${where}: name must use letters, digits, '.', '_' and '-' (at most 128)`);
    else if (name === PIPELINE_COMPLETE_STAGE)
      problems.push(`${where}: ${PIPELINE_COMPLETE_STAGE} is reserved`);
    else if (seen.has(name)) problems.push(`${where}: the name is used by an earlier step`);
    seen.add(String(name));
    const agent = resolveAgent(
      step.agent as Agent | string,
      isPlainObject(agents) ? (agents as Record<string, Agent>) : undefined,
    );
    if (!agent) {
      problems.push(
        typeof step.agent === "string"
          ? `${where}: no agent named ${step.agent} in the agents option or the registry`
          : `${where}: ${agentProblem(step.agent) ?? "invalid agent"}`,
      );
    }
    if (step.sideEffects !== undefined && typeof step.sideEffects !== "boolean")
      problems.push(`${where}: sideEffects must be a boolean`);
    if (step.inputs !== undefined && !isPlainObject(step.inputs))
      problems.push(`${where}: inputs must be an object`);
    if (step.config !== undefined && !isPlainObject(step.config))
      problems.push(`${where}: config must be an object`);
    checkNumber(problems, `${where}: retries`, step.retries, 0);
    checkNumber(problems, `${where}: retryDelayMs`, step.retryDelayMs, 0);
    checkNumber(problems, `${where}: timeoutMs`, step.timeoutMs, 1);
    checkNumber(problems, `${where}: outputVersion`, step.outputVersion, 1);
    if (step.migrateOutput !== undefined && typeof step.migrateOutput !== "function")
      problems.push(`${where}: migrateOutput must be a function (output, fromVersion) => output`);
    else if (step.migrateOutput !== undefined && (step.outputVersion ?? 1) === 1)
      problems.push(
        `${where}: migrateOutput converts stored outputs of older versions, but outputVersion is 1: ` +
          "set outputVersion to the version it produces",
      );
    const declared = dependenciesOf(problems, where, step.dependsOn, String(name), order);
    const outputVersion = (step.outputVersion as number | undefined) ?? 1;
    // Version 1 stays out of the text, so stored fingerprints of steps without one still match.
    const definitionText = checkEncodable(problems, `steps[${index}]`, {
      inputs: step.inputs ?? {},
      config: step.config ?? {},
      ...(outputVersion !== 1 ? { outputVersion } : {}),
    });
    if (agent) {
      normalized.push({
        name: String(name),
        index,
        agent,
        inputs: step.inputs as Record<string, unknown> | undefined,
        retries: (step.retries as number | undefined) ?? 0,
        retryDelayMs: (step.retryDelayMs as number | undefined) ?? 100,
        timeoutMs: step.timeoutMs as number | undefined,
        config: (step.config as Record<string, unknown> | undefined) ?? {},
        outputVersion,
        migrateOutput: step.migrateOutput as NormalizedStep["migrateOutput"],
        definitionText,
        dependsOn: resolvedDependencies(declared, index, order),
        sideEffects: step.sideEffects === true,
      });
    }
  });
  problems.push(...graphProblems(steps, order));
  return { steps: normalized, problems };
}

/** A step's declared `dependsOn`, checked; undefined when absent or unusable. */
function dependenciesOf(
  problems: string[],
  where: string,
  value: unknown,
  name: string,
  order: readonly string[],
): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((d) => typeof d !== "string")) {
    problems.push(`${where}: dependsOn must be a list of stage names, got ${JSON.stringify(value)}`);
    return undefined;
  }
  const seen = new Set<string>();
  for (const dep of value as string[]) {
    if (dep === name) problems.push(`${where}: dependsOn names the step itself`);
    else if (!order.includes(dep))
      problems.push(`${where}: dependsOn names ${dep}, which is no stage of this pipeline`);
    if (seen.has(dep)) problems.push(`${where}: dependsOn names ${dep} twice`);
    seen.add(dep);
  }
  return value as string[];
}

/**
 * Problems of the graph as a whole: cycles (named along the dependencies, `a → b → a`) and
 * `$stage` references to a stage that is not a dependency, direct or transitive: its output
 * would not exist yet when the step runs.
 */
function graphProblems(steps: readonly unknown[], order: readonly string[]): string[] {
  const problems: string[] = [];
  const nodes = steps.flatMap((step, index) => {
    if (!isPlainObject(step) || typeof step.name !== "string") return [];
    const declared =
      Array.isArray(step.dependsOn) && step.dependsOn.every((d) => typeof d === "string")
        ? (step.dependsOn as string[])
        : undefined;
    return [{ name: step.name, dependsOn: resolvedDependencies(declared, index, order), step, index }];
  });
  for (const cycle of cyclesOf(nodes))
    problems.push(`the steps depend on each other in a cycle: ${cycle.join(" → ")}`);
  const all = new Set(order);
  for (const { name, step, index } of nodes) {
    const ancestors = ancestorsOf(nodes, name);
    for (const raw of findReferences(step.inputs)) {
      const ref = parseReference(raw, all);
      if (!ref) problems.push(`step ${name}: input ${raw} refers to no stage of this pipeline`);
      else if (!ancestors.has(ref.stage) || ref.stage === name) {
        const why =
          order.indexOf(ref.stage) >= index
            ? "which does not run before it"
            : "which is not one of its dependencies, direct or transitive (add it to dependsOn)";
        problems.push(`step ${name}: input ${raw} refers to stage ${ref.stage}, ${why}`);
      }
    }
  }
  return problems;
}
