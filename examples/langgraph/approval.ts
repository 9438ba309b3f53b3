/**
 * LangGraph.js on cairn: an invoice graph that stops for a person's approval (`interrupt()`),
 * checkpointed by CairnSaver in the embedded SQLite store, then resumed with `Command({ resume })`
 * — in another process it would work the same, the thread lives in the store.
 *
 *   npx tsx examples/langgraph/approval.ts [store URL]     (default sqlite:.cairn/langgraph.db)
 *
 * Then look at the thread with the cairn CLI (the example prints these lines with its ids):
 *   npx cairn list --thread <thread id> --namespace "" --store sqlite:.cairn/langgraph.db
 *   npx cairn inspect --thread <thread id> --store sqlite:.cairn/langgraph.db
 *   npx cairn validate --thread <thread id> --store sqlite:.cairn/langgraph.db
 */
import { Annotation, Command, END, interrupt, START, StateGraph } from "@langchain/langgraph";
import { CairnSaver, threadPipelineName, threadRunId } from "../../src/langgraph/index.js";

const store = process.argv[2] ?? "sqlite:.cairn/langgraph.db";
const checkpointer = new CairnSaver({ store });

const Invoice = Annotation.Root({
  vendor: Annotation<string>(),
  amount: Annotation<number>(),
  decision: Annotation<string | null>({ reducer: (_, next) => next, default: () => null }),
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

const graph = new StateGraph(Invoice)
  .addNode("check", (s) => ({ log: [`checked: ${s.vendor} asks ${s.amount} EUR`] }))
  .addNode("approve", (s) => {
    // Stops the run here; the value is what the caller sees, the answer comes back on resume.
    const decision = interrupt({ question: `Pay ${s.amount} EUR to ${s.vendor}?` }) as string;
    return { decision, log: [`decision: ${decision}`] };
  })
  .addNode("book", (s) => ({ log: [s.decision === "yes" ? "booked for payment" : "sent back"] }))
  .addEdge(START, "check")
  .addEdge("check", "approve")
  .addEdge("approve", "book")
  .addEdge("book", END)
  .compile({ checkpointer });

// A new thread per run of the example; use your own ids (a ticket, a user) in an application.
const threadId = `invoice-${Date.now().toString(36)}`;
const config = { configurable: { thread_id: threadId } };

async function show(title: string): Promise<void> {
  const state = await graph.getState(config);
  const asks = state.tasks.flatMap((t) => t.interrupts.map((i) => i.value));
  console.log(`\n${title}`);
  console.log(`  values: ${JSON.stringify(state.values)}`);
  console.log(`  next:   ${JSON.stringify(state.next)}`);
  if (asks.length > 0) console.log(`  waits for: ${JSON.stringify(asks)}`);
}

console.log(`thread ${threadId} in ${store}`);
await graph.invoke({ vendor: "Acme GmbH", amount: 1250 }, config);
await show("1. stopped at the interrupt:");

await graph.invoke(new Command({ resume: "yes" }), config);
await show("2. resumed with the answer:");

console.log("\n3. the thread's checkpoints, newest first:");
for await (const snapshot of graph.getStateHistory(config)) {
  const { source, step } = snapshot.metadata ?? {};
  console.log(`  step ${step} (${source}) next ${JSON.stringify(snapshot.next)}`);
}

const flag = `--store ${store}`;
console.log(`\nIn cairn: run ${threadRunId(threadId)} of pipeline ${threadPipelineName(threadId)},
one record per checkpoint and per task's pending writes. Look at it with:
  npx cairn list --thread ${threadId} --namespace "" ${flag}
  npx cairn inspect --thread ${threadId} ${flag}
  npx cairn validate --thread ${threadId} ${flag}`);

await checkpointer.close();
