/**
 * The LangGraph graph of the CairnSaver graph tests and the process that runs it
 * (`lg-graph-process.ts`): plan → (fast ‖ slow) → sub (a compiled subgraph s1 → s2) → review
 * (an `interrupt()` asking for an answer) → finish. Every node reports entering through
 * `hooks.enter`, which is where a test journals it or makes it hang.
 */
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { Annotation, Command, END, interrupt, MemorySaver, START, StateGraph } from "@langchain/langgraph";

/** The state every node of the graph and subgraph shares. */
export const GraphState = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  total: Annotation<number>({ reducer: (a, b) => a + b, default: () => 0 }),
  answer: Annotation<string | null>({ reducer: (_, b) => b, default: () => null }),
  trail: Annotation<string[]>({ reducer: (_, b) => b, default: () => [] }),
});

/** The subgraph's own state: its output replaces the parent's `trail` channel. */
const SubState = Annotation.Root({
  trail: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

/** The state's shape. */
export type GraphValues = typeof GraphState.State;

/** What a node calls on entry (before it returns its writes). */
export interface GraphHooks {
  enter?: (node: string) => Promise<void> | void;
  /** Called when a node returns (before LangGraph stores its writes). */
  leave?: (node: string) => void;
}

/** The nodes in order, for journals. */
export const GRAPH_NODES = ["plan", "fast", "slow", "s1", "s2", "review", "finish"] as const;

/** The graph compiled with `checkpointer`. */
export function buildGraph(checkpointer: BaseCheckpointSaver, hooks: GraphHooks = {}) {
  const step = (name: string, amount: number) => async () => {
    await hooks.enter?.(name);
    hooks.leave?.(name);
    return { log: [name], total: amount };
  };
  const subStep = (name: string) => async () => {
    await hooks.enter?.(name);
    hooks.leave?.(name);
    return { trail: [name] };
  };
  const sub = new StateGraph(SubState)
    .addNode("s1", subStep("s1"))
    .addNode("s2", subStep("s2"))
    .addEdge(START, "s1")
    .addEdge("s1", "s2")
    .addEdge("s2", END)
    .compile();
  return new StateGraph(GraphState)
    .addNode("plan", step("plan", 1))
    .addNode("fast", step("fast", 2))
    .addNode("slow", step("slow", 3))
    .addNode("sub", sub)
    .addNode("review", async (state: GraphValues) => {
      await hooks.enter?.("review");
      const answer = interrupt({ question: "approve?", total: state.total }) as string;
      hooks.leave?.("review");
      return { log: [`review:${answer}`], answer };
    })
    .addNode("finish", step("finish", 1000))
    .addEdge(START, "plan")
    .addEdge("plan", "fast")
    .addEdge("plan", "slow")
    .addEdge(["fast", "slow"], "sub")
    .addEdge("sub", "review")
    .addEdge("review", "finish")
    .addEdge("finish", END)
    .compile({ checkpointer });
}

/** What a step of a test does to the thread. */
export type GraphAction = "start" | "resume" | "answer" | "fork" | "drive";

/** The thread's state after an action, in a form two savers' runs can be compared by. */
export interface GraphOutcome {
  values: Record<string, unknown>;
  next: string[];
  interrupts: unknown[];
}

/** One checkpoint of the root namespace's history, its parent as an index into the history. */
export interface HistoryEntry {
  source: unknown;
  step: unknown;
  next: string[];
  parent: number;
}

type Graph = ReturnType<typeof buildGraph>;
const threadConfig = (thread: string) => ({ configurable: { thread_id: thread } });

/**
 * Runs `action` on thread `thread`: `start` with fresh input, `resume` (null input: carry on after
 * a crash), `answer` the interrupt with `Command({ resume })`, or `fork`: time travel back to the
 * checkpoint before `review`, answer "no" there by `updateState` as `review`, and run from it;
 * or `drive`: whatever state a kill left, carry the thread on to its end (start it when nothing
 * is stored, answer an open interrupt, resume otherwise).
 */
export async function act(graph: Graph, thread: string, action: GraphAction, answer = "yes") {
  const config = threadConfig(thread);
  if (action === "start") await graph.invoke({ log: ["start"] }, config);
  else if (action === "resume") await graph.invoke(null, config);
  else if (action === "answer") await graph.invoke(new Command({ resume: answer }), config);
  else if (action === "drive") await drive(graph, config, answer);
  else {
    let before: Awaited<ReturnType<Graph["getState"]>> | undefined;
    for await (const snapshot of graph.getStateHistory(config))
      if (snapshot.next.length === 1 && snapshot.next[0] === "review") before = snapshot;
    if (!before) throw new Error("fork: no checkpoint before review in the history");
    const forked = await graph.updateState(before.config, { log: ["review:no"], answer: "no" }, "review");
    await graph.invoke(null, forked);
  }
  return outcome(graph, thread);
}

async function drive(graph: Graph, config: ReturnType<typeof threadConfig>, answer: string) {
  for (let round = 0; round < 10; round++) {
    const state = await graph.getState(config);
    if (state.config.configurable?.checkpoint_id === undefined)
      await graph.invoke({ log: ["start"] }, config);
    else if (state.next.length === 0) {
      // `next` leaves out tasks whose writes are stored: a kill after the last tasks' writes but
      // before the next checkpoint shows no `next`, yet the thread goes on. Ended = nothing moves.
      const at = state.config.configurable?.checkpoint_id;
      await graph.invoke(null, config);
      if ((await graph.getState(config)).config.configurable?.checkpoint_id === at) return;
    } else if (state.tasks.some((t) => (t.interrupts ?? []).length > 0))
      await graph.invoke(new Command({ resume: answer }), config);
    else await graph.invoke(null, config);
  }
  throw new Error("drive: the thread did not end in 10 rounds");
}

/** The thread's current state. */
export async function outcome(graph: Graph, thread: string): Promise<GraphOutcome> {
  const state = await graph.getState(threadConfig(thread));
  return {
    values: state.values as Record<string, unknown>,
    next: [...state.next],
    interrupts: state.tasks.flatMap((t) => (t.interrupts ?? []).map((i) => i.value)),
  };
}

/** The root namespace's history, newest first, parents as indices (-1: none). */
export async function historyShape(graph: Graph, thread: string): Promise<HistoryEntry[]> {
  const snapshots = [];
  for await (const snapshot of graph.getStateHistory(threadConfig(thread))) snapshots.push(snapshot);
  const ids = snapshots.map((s) => s.config.configurable?.checkpoint_id as string);
  return snapshots.map((s) => ({
    source: s.metadata?.source,
    step: s.metadata?.step,
    next: [...s.next],
    parent: ids.indexOf(s.parentConfig?.configurable?.checkpoint_id as string),
  }));
}

/** What the steps give on MemorySaver without a kill: each outcome, and the history after each. */
export interface GraphReference {
  started: GraphOutcome;
  answered: GraphOutcome;
  forked: GraphOutcome;
  historyAnswered: HistoryEntry[];
  historyForked: HistoryEntry[];
}

/** Runs start, answer "yes" and fork on thread `thread` of a MemorySaver. */
export async function memoryReference(thread: string): Promise<GraphReference> {
  const graph = buildGraph(new MemorySaver());
  const started = await act(graph, thread, "start");
  const answered = await act(graph, thread, "answer", "yes");
  const historyAnswered = await historyShape(graph, thread);
  const forked = await act(graph, thread, "fork");
  return { started, answered, forked, historyAnswered, historyForked: await historyShape(graph, thread) };
}
