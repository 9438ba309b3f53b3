/**
 * One process of the CairnSaver kill tests, run as `node --import tsx lg-graph-process.ts '<JSON>'`:
 * builds the graph of `lg-graph.ts` on a saver over `store`, runs one action on `thread`, and
 * prints JSON lines: `hang` (a node in `hang` entered once everything before it was saved, and
 * now waits to be killed), then `outcome` (the thread's state) or `error`. Every node entry is
 * appended to `journal` (`<node> <pid>`), so the test counts what ran again after a kill.
 */
import { appendFileSync } from "node:fs";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { CairnSaver } from "../../src/langgraph/index.js";
import { act, buildGraph, type GraphAction } from "./lg-graph.js";

/** What the test passes on the command line. */
export interface GraphProcessConfig {
  /** A cairn store URL, or `lg-sqlite:<path>` for LangGraph's own SqliteSaver (reference). */
  store: string;
  thread: string;
  journal: string;
  action: GraphAction;
  answer?: string;
  /** Nodes that hang instead of running. */
  hang?: string[];
  /** SIGKILL this process `dieDelayMs` (default 0) after the saver's `dieAtCall`th write call starts. */
  dieAtCall?: number;
  dieDelayMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const print = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...line, pid: process.pid })}\n`);

async function openSaver(store: string): Promise<BaseCheckpointSaver & { close?: () => Promise<void> }> {
  if (store.startsWith("lg-sqlite:")) {
    const { SqliteSaver } = await import("@langchain/langgraph-checkpoint-sqlite");
    return SqliteSaver.fromConnString(store.slice("lg-sqlite:".length));
  }
  return new CairnSaver({ store });
}

/**
 * Counts the saver's calls in flight and which nodes' writes are stored (by the names the
 * nodes put in `log` / `trail`), so a hanging node waits until what ran before it is durable.
 */
function instrument(saver: BaseCheckpointSaver, onCall: (n: number) => void) {
  const saved = new Set<string>();
  let inflight = 0;
  let calls = 0;
  const put = saver.put.bind(saver);
  const putWrites = saver.putWrites.bind(saver);
  saver.put = async (...args) => {
    onCall(++calls);
    inflight++;
    try {
      return await put(...args);
    } finally {
      inflight--;
    }
  };
  saver.putWrites = async (config, writes, taskId) => {
    onCall(++calls);
    inflight++;
    try {
      await putWrites(config, writes, taskId);
      for (const [channel, value] of writes)
        if ((channel === "log" || channel === "trail") && Array.isArray(value))
          for (const name of value) saved.add(String(name));
    } finally {
      inflight--;
    }
  };
  return { saved, idle: () => inflight === 0 };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as GraphProcessConfig;
  const saver = await openSaver(config.store);
  const { saved, idle } = instrument(saver, (n) => {
    // A real SIGKILL, from the process itself: lands while that write is in flight (or just after).
    if (n === config.dieAtCall)
      setTimeout(() => process.kill(process.pid, "SIGKILL"), config.dieDelayMs ?? 0);
  });
  const left: string[] = [];
  const hooks = {
    enter: async (node: string) => {
      appendFileSync(config.journal, `${node} ${process.pid}\n`);
      if (!config.hang?.includes(node)) return;
      while (!idle() || left.some((n) => !saved.has(n))) await sleep(2);
      print({ event: "hang", node });
      await sleep(120_000);
    },
    leave: (node: string) => {
      left.push(node);
    },
  };
  const graph = buildGraph(saver, hooks);
  const outcome = await act(graph, config.thread, config.action, config.answer);
  await saver.close?.();
  print({ event: "outcome", ...outcome });
}

main().catch((error: unknown) => {
  print({ event: "error", message: String((error as Error)?.stack ?? error) });
  process.exit(1);
});
