/**
 * `cairn replicate`: copies every run (or the filtered ones) from one store to another, verified,
 * and with `--follow` keeps the target in step on the source's change feed. On a terminal a
 * status line shows where it is; elsewhere (or with `--json`) progress and problems are JSON
 * lines on stdout. SIGINT/SIGTERM stop it cleanly: the cursor is saved in the target, so the same
 * command continues where it stopped.
 */
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { replicate } from "../../feed/replicate.js";
import type { ReplicationProblem, ReplicationProgress, ReplicationReport } from "../../feed/types.js";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { printText } from "../output.js";
import { ProgressLine } from "../progress.js";
import { examples } from "../runs.js";
import { stopOnSignals } from "../stop-signals.js";
import { redactPassword } from "../store-args.js";

interface ReplicateFlags {
  from: string;
  to: string;
  follow?: boolean;
  pipelineId?: string;
  name?: string;
  keepDeleted?: boolean;
  pollMs?: number;
  json?: boolean;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function parsePollMs(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 100)
    throw new CommanderArgumentError("expected a whole number of milliseconds ≥ 100");
  return Number(value);
}

/** The live status line: phase, runs, what was copied, lag. */
export function statusLine(p: ReplicationProgress): string {
  const parts: string[] = [p.phase];
  if (p.phase === "sync" || p.runsTotal > 0) parts.push(`runs ${p.runsDone}/${p.runsTotal}`);
  parts.push(`${p.checkpointsCopied} copied`);
  if (p.statusesCopied > 0) parts.push(`${p.statusesCopied} status`);
  if (p.deletions > 0) parts.push(`${p.deletions} deleted`);
  if (p.lagSeconds !== undefined) parts.push(`lag ${p.lagSeconds.toFixed(1)} s`);
  if (p.behind !== undefined) parts.push(`${p.behind} behind`);
  return parts.join(" · ");
}

const problemText = (p: ReplicationProblem) =>
  `${p.kind}${p.pipelineId ? ` (run ${p.pipelineId}${p.checkpointId ? `, ${p.checkpointId}` : ""})` : ""}: ${p.message}`;

/** The summary printed when the replicator returns. */
export function summary(report: ReplicationReport, from: string, to: string, stopped: boolean): string {
  const lines = [
    `${stopped ? "Stopped" : "Replicated"} ${redactPassword(from)} → ${redactPassword(to)}: ` +
      `${plural(report.checkpointsCopied, "checkpoint")}, ${plural(report.outputsCopied, "output")}, ` +
      `${plural(report.statusesCopied, "status change")} copied; ` +
      `${plural(report.runsDeleted, "run")} and ${plural(report.checkpointsDeleted, "checkpoint")} deleted ` +
      `(${plural(report.syncs, "full compare")}).`,
  ];
  if (report.corrupt.length > 0) {
    lines.push(`${plural(report.corrupt.length, "corrupt source record")} not copied:`);
    for (const p of report.corrupt) lines.push(`  ${problemText(p)}`);
  }
  const diverged = report.diverged ?? [];
  if (diverged.length > 0) {
    lines.push(
      `${plural(diverged.length, "record")} the target holds differently, left as they are (see cairn compare):`,
    );
    for (const p of diverged) lines.push(`  ${problemText(p)}`);
  }
  if (report.emptySource !== undefined)
    lines.push(`Refused to empty the target: ${report.emptySource.message}.`);
  if (report.cursor !== undefined)
    lines.push(
      `The replica is at ${report.cursor} (saved in the target: the same command continues from there).`,
    );
  return lines.join("\n");
}

/** Writes one JSON line on stdout. */
const jsonLine = (type: string, data: object) =>
  process.stdout.write(`${JSON.stringify({ type, at: new Date().toISOString(), ...data })}\n`);

/** Registers `cairn replicate`. */
export function registerReplicate(program: Command): void {
  program
    .command("replicate")
    .summary("Copy runs from one store to another, and keep copying with --follow")
    .description(
      "Copy every run and checkpoint from --from to --to (stores of any kind), verifying each record " +
        "and output before writing it: a corrupt source record is reported and skipped, never copied. " +
        "Records are copied as stored, so encrypted and compressed runs need no key. Idempotent: " +
        "checkpoints the target holds are not copied again. Deletions and status changes are copied " +
        "too (--keep-deleted keeps runs the source deleted). The replicator keeps its position in the " +
        "target, so the same command, stopped or killed, continues where it was.\n\n" +
        "--follow keeps running on the source's change feed after the catch-up, with the lag shown on " +
        "a terminal and as JSON lines otherwise; SIGINT/SIGTERM stop it cleanly.",
    )
    .requiredOption(
      "--from <url>",
      "the source store: file:<dir>, sqlite:<file>, postgres://..., redis://...",
    )
    .requiredOption("--to <url>", "the target store (the replica), in the same forms")
    .option("--follow", "keep following the source's changes until stopped")
    .option("--pipeline-id <id>", "only this run")
    .option("--name <name>", "only runs of this pipeline name")
    .option("--keep-deleted", "keep runs on the target after the source deletes them")
    .option(
      "--poll-ms <n>",
      "with --follow on a source without a change feed: compare every n ms",
      parsePollMs,
    )
    .option("--json", "progress, problems and the report as JSON lines on stdout")
    .addHelpText(
      "after",
      `
Exit codes:
  0  copied (or stopped by SIGINT/SIGTERM: the position is saved)
  1  copied, but the target holds some runs or checkpoints differently from the source and
     they were left as they are (the report lists them; cairn compare shows them), or the
     source holds no run while the target does: nothing was deleted (a wrong --from?)
  2  bad flags or store URL, or --from and --to are the same store
  3  there is no store at --from (nothing is created there)
  4  copied, but corrupt source records were skipped (the report lists them)
  5  a store is unreachable
${examples(
  "cairn replicate --from sqlite:./cairn.db --to postgres://db/cairn",
  "cairn replicate --from postgres://db/cairn --to redis://backup:6379 --follow",
  "cairn replicate --from sqlite:./replica.db --to sqlite:./primary.db --pipeline-id etl-42",
)}`,
    )
    .action(async (flags: ReplicateFlags) => {
      const live = process.stderr.isTTY === true && flags.json !== true;
      const line = new ProgressLine(process.stderr, !live, 200);
      let last: ReplicationProgress | undefined;
      const stop = new AbortController();
      // A second signal exits at once: the position saved last is where the next start continues.
      const undo = stopOnSignals(stop);
      let report: ReplicationReport;
      try {
        report = await replicate({
          from: flags.from,
          to: flags.to,
          follow: flags.follow === true,
          signal: stop.signal,
          ...(flags.pipelineId !== undefined ? { pipelineId: flags.pipelineId } : {}),
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.keepDeleted ? { keepDeleted: true } : {}),
          ...(flags.pollMs !== undefined ? { pollMs: flags.pollMs } : {}),
          onProgress: (progress) => {
            last = progress;
            if (live) line.show(statusLine(progress), progress.phase !== "follow");
            else jsonLine("progress", progress);
          },
          onProblem: (problem) => {
            if (!live) {
              jsonLine("problem", problem);
              return;
            }
            line.clear();
            process.stderr.write(`cairn: ${problemText(problem)}\n`);
            if (last) line.show(statusLine(last), true);
          },
        });
      } finally {
        line.clear();
        undo();
      }
      if (live) printText(summary(report, flags.from, flags.to, stop.signal.aborted));
      else jsonLine("report", { ...report, stopped: stop.signal.aborted });
      if (report.corrupt.length > 0) throw new CommandExit(ExitCode.Corrupt, "");
      if ((report.diverged ?? []).length > 0 || report.emptySource !== undefined)
        throw new CommandExit(ExitCode.Failure, "");
    });
}
