/**
 * A LangGraph thread written through CairnSaver (`put`/`putWrites`, as LangGraph calls them) for
 * the CLI tests: a root graph with a fork (time travel: an `update` on an older checkpoint) and
 * pending writes (one an interrupt), and a subgraph namespace run by a task of the root graph.
 */
import { Annotation, Command, END, interrupt, START, StateGraph } from "@langchain/langgraph";
import { type Checkpoint, emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { CairnSaver } from "../../src/langgraph/index.js";

/** The ids of the fixture thread, to check what the CLI prints against. */
export interface ThreadFixture {
  threadId: string;
  /** The subgraph's namespace: `child:<task id of the root graph that ran it>`. */
  subNs: string;
  /** LangGraph ids: a (input) → b (loop) → c (loop) and b → d (update, the fork, latest). */
  root: { a: string; b: string; c: string; d: string };
  /** e (input) → f (loop) in the subgraph. */
  sub: { e: string; f: string };
}

/** The task of the root graph that runs the subgraph. */
export const SUB_TASK = "6c1f0e2a-task-child";

/** A checkpoint over `base` with `values` set and their versions bumped. */
function next(base: Checkpoint | undefined, values: Record<string, unknown>): Checkpoint {
  const cp = base ? structuredClone({ ...base, channel_values: {} }) : emptyCheckpoint();
  cp.id = uuid6(-1);
  cp.ts = new Date().toISOString();
  cp.channel_values = { ...(base?.channel_values ?? {}), ...values };
  for (const channel of Object.keys(values))
    cp.channel_versions[channel] = ((base?.channel_versions[channel] as number | undefined) ?? 0) + 1;
  return cp;
}

const versions = (cp: Checkpoint, values: Record<string, unknown>) =>
  Object.fromEntries(Object.keys(values).map((c) => [c, cp.channel_versions[c] as number]));

/** Writes the fixture thread to `store` (a URL) and returns its ids. */
export async function writeThread(store: string, threadId = "support-42"): Promise<ThreadFixture> {
  const saver = new CairnSaver({ store });
  try {
    const subNs = `child:${SUB_TASK}`;
    const config = (ns: string) => ({ configurable: { thread_id: threadId, checkpoint_ns: ns } });
    const put = async (
      ns: string,
      parent: string | undefined,
      base: Checkpoint | undefined,
      source: string,
      step: number,
      values: Record<string, unknown>,
    ) => {
      const cp = next(base, values);
      const conf = config(ns);
      if (parent) Object.assign(conf.configurable, { checkpoint_id: parent });
      await saver.put(conf, cp, { source: source as "loop", step, parents: {} }, versions(cp, values));
      return cp;
    };
    const writes = (ns: string, id: string, task: string, w: [string, unknown][]) =>
      saver.putWrites({ configurable: { ...config(ns).configurable, checkpoint_id: id } }, w, task);

    const a = await put("", undefined, undefined, "input", -1, { __start__: { question: "refund?" } });
    await writes("", a.id, "task-start", [["question", "refund?"]]);
    const b = await put("", a.id, a, "loop", 0, { question: "refund?", topic: "billing" });
    await writes("", b.id, SUB_TASK, [["answer", "draft"]]);
    const c = await put("", b.id, b, "loop", 1, { answer: "draft" });
    // Time travel: the state of b edited; LangGraph writes it as a new child of b.
    const d = await put("", b.id, b, "update", 1, { topic: "refunds" });
    await writes("", d.id, "task-review", [["__interrupt__", { value: "approve?" }]]);

    const e = await put(subNs, undefined, undefined, "input", -1, { __start__: { question: "refund?" } });
    const f = await put(subNs, e.id, e, "loop", 0, { answer: "draft" });
    await writes(subNs, f.id, "task-sub", [["answer", "draft"]]);
    return { threadId, subNs, root: { a: a.id, b: b.id, c: c.id, d: d.id }, sub: { e: e.id, f: f.id } };
  } finally {
    await saver.close();
  }
}

/**
 * A real StateGraph on CairnSaver: plan → child (a compiled subgraph) → ask (an interrupt),
 * resumed with `Command`, then forked by `updateState` on the checkpoint before the subgraph ran.
 */
export async function runRealGraph(store: string, threadId: string): Promise<{ forkedFrom: string }> {
  const State = Annotation.Root({
    log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  });
  const child = new StateGraph(State)
    .addNode("inner", async () => ({ log: ["inner"] }))
    .addEdge(START, "inner")
    .addEdge("inner", END)
    .compile();
  const graph = new StateGraph(State)
    .addNode("plan", async () => ({ log: ["plan"] }))
    .addNode("child", child)
    .addNode("ask", async () => ({ log: [`ask:${String(interrupt("ok?"))}`] }))
    .addEdge(START, "plan")
    .addEdge("plan", "child")
    .addEdge("child", "ask")
    .addEdge("ask", END);
  const saver = new CairnSaver({ store });
  try {
    const app = graph.compile({ checkpointer: saver });
    const config = { configurable: { thread_id: threadId } };
    await app.invoke({ log: ["start"] }, config);
    await app.invoke(new Command({ resume: "yes" }), config);
    let before: { configurable?: Record<string, unknown> } | undefined;
    for await (const state of app.getStateHistory(config))
      if (state.next.includes("child")) before = state.config;
    if (!before) throw new Error("no checkpoint before the subgraph ran");
    await app.updateState(before, { log: ["edited"] });
    return { forkedFrom: String(before.configurable?.checkpoint_id) };
  } finally {
    await saver.close();
  }
}
