/**
 * The stage graph of a pipeline. A step depends on the steps named by its `dependsOn`; without
 * one, on the step listed before it (the first step on nothing), so a pipeline that never says
 * `dependsOn` is the linear chain it always was.
 */

/** A step as the graph sees it: its name and its resolved dependencies. */
export interface GraphNode {
  name: string;
  dependsOn: readonly string[];
}

/** The dependencies of step `index`: the declared ones, else the step listed before it. */
export function resolvedDependencies(
  declared: readonly string[] | undefined,
  index: number,
  order: readonly string[],
): string[] {
  if (declared !== undefined) return [...declared];
  const previous = order[index - 1];
  return previous === undefined ? [] : [previous];
}

/** Every stage `name` depends on, directly or transitively (terminates on cycles). */
export function ancestorsOf(nodes: readonly GraphNode[], name: string): Set<string> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const found = new Set<string>();
  const stack = [...(byName.get(name)?.dependsOn ?? [])];
  while (stack.length > 0) {
    const next = stack.pop() as string;
    if (found.has(next)) continue;
    found.add(next);
    stack.push(...(byName.get(next)?.dependsOn ?? []));
  }
  return found;
}

/**
 * The cycles of the graph, each as the names along it with the first repeated at the end
 * (`a → b → a` is `["a", "b", "a"]`: a depends on b, which depends on a). Each cycle once.
 */
export function cyclesOf(nodes: readonly GraphNode[]): string[][] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, "open");
    stack.push(name);
    for (const dep of byName.get(name)?.dependsOn ?? []) {
      if (!byName.has(dep)) continue;
      const s = state.get(dep);
      if (s === "open") {
        const cycle = [...stack.slice(stack.indexOf(dep)), dep];
        const key = [...new Set(cycle)].sort().join("\0");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (s === undefined) visit(dep);
    }
    stack.pop();
    state.set(name, "done");
  };
  for (const node of nodes) if (!state.has(node.name)) visit(node.name);
  return cycles;
}
