/** Agents: the process-wide registry, resolution of names, and identity for fingerprints. */

import { InvalidArgumentError } from "../core/errors.js";
import { sha256 } from "../core/record.js";
import type { Agent, AgentObject, StageContext } from "./types.js";

const registry = new Map<string, Agent>();

/** Registers an agent under a name that steps can use as `agent: "Name"`. */
export function registerAgent(name: string, agent: Agent): void {
  if (typeof name !== "string" || name.length === 0)
    throw new InvalidArgumentError("agent name must be a non-empty string");
  const problem = agentProblem(agent);
  if (problem) throw new InvalidArgumentError(`agent ${name}: ${problem}`);
  registry.set(name, agent);
}

/** Removes a registered agent; true when it existed. */
export function unregisterAgent(name: string): boolean {
  return registry.delete(name);
}

/** A registered agent, if any. */
export function registeredAgent(name: string): Agent | undefined {
  return registry.get(name);
}

/** Why `value` is not an agent, or undefined when it is one. */
export function agentProblem(value: unknown): string | undefined {
  if (typeof value === "function") return undefined;
  if (value !== null && typeof value === "object" && typeof (value as AgentObject).process === "function") {
    const { version, name } = value as AgentObject;
    if (version !== undefined && typeof version !== "string") return "its version must be a string";
    if (name !== undefined && typeof name !== "string") return "its name must be a string";
    return undefined;
  }
  return "an agent is a function or an object with a process(inputs, context) method";
}

/** A resolved agent: how to call it and what identifies it. */
export interface ResolvedAgent {
  /** Display name: the registry name, the object's name or class, or the function's name. */
  name: string;
  version: string | undefined;
  /** Identity in fingerprints and provenance: name + version, or name + source hash when unversioned. */
  identity: string;
  call(inputs: Record<string, unknown>, context: StageContext): unknown;
}

function sourceOf(agent: Agent): string {
  const fn = typeof agent === "function" ? agent : agent.process;
  return Function.prototype.toString.call(fn);
}

/**
 * Resolves a step's agent. An agent without a version is identified by a hash of its source, so
 * editing its code makes completed stages run again on resume; a versioned agent is trusted to
 * bump its version when its behaviour changes.
 */
export function resolveAgent(
  agent: Agent | string,
  local: Readonly<Record<string, Agent>> | undefined,
): ResolvedAgent | undefined {
  let registeredName: string | undefined;
  let value: Agent | undefined;
  if (typeof agent === "string") {
    registeredName = agent;
    value = (local && Object.hasOwn(local, agent) ? local[agent] : undefined) ?? registry.get(agent);
    if (value === undefined) return undefined;
  } else value = agent;
  if (agentProblem(value)) return undefined;
  const version = typeof value === "function" ? undefined : value.version;
  const ownName =
    typeof value === "function"
      ? value.name
      : (value.name ?? (value.constructor !== Object ? value.constructor?.name : undefined));
  const name = registeredName ?? (ownName || "anonymous");
  const identity =
    version !== undefined ? `${name}@${version}` : `${name}#${sha256(sourceOf(value)).slice(0, 16)}`;
  const target = value;
  const call =
    typeof target === "function"
      ? (inputs: Record<string, unknown>, context: StageContext) => target(inputs, context)
      : (inputs: Record<string, unknown>, context: StageContext) => target.process(inputs, context);
  return { name, version, identity, call };
}
