/**
 * `--thread` and `--namespace`: naming a LangGraph thread instead of a run id. The ids come from
 * `langgraph/ids.ts`, pure functions with no LangGraph import, so the CLI never loads the
 * optional peer to address a thread.
 */
import type { Command } from "commander";
import { threadRunId } from "../langgraph/ids.js";
import { UsageError } from "./exit-codes.js";

/** The thread flags of a command. */
export interface ThreadFlags {
  thread?: string;
  namespace?: string;
}

/** Adds `--thread <thread_id>` and, with `namespace`, `--namespace <ns>` to a command. */
export function addThreadOptions(command: Command, what: string, namespace = true): Command {
  command.option("--thread <thread_id>", `a LangGraph thread (CairnSaver): ${what}`);
  if (namespace) {
    command.option(
      "--namespace <ns>",
      'with --thread: only this checkpoint namespace (a subgraph, as LangGraph names it; "" is the root graph)',
    );
  }
  return command;
}

/** Refuses `--namespace` without `--thread`, and `--thread` with a flag that names a run itself. */
export function checkThreadFlags(flags: ThreadFlags & { pipelineId?: string }): void {
  if (flags.namespace !== undefined && flags.thread === undefined)
    throw new UsageError("--namespace names a namespace of a thread: add --thread <thread_id>");
  if (flags.thread !== undefined && flags.pipelineId !== undefined)
    throw new UsageError("--thread and --pipeline-id both name a run: give one");
}

/** The run of `--thread` and `--namespace` (the root graph's without `--namespace`). */
export function threadRun(flags: ThreadFlags & { thread: string }): string {
  return threadRunId(flags.thread, flags.namespace ?? "");
}
