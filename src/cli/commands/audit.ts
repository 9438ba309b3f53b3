/** `cairn audit`: lists the console's audit trail (newest first), or verifies its hash chain. */
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { type AuditEntry, AuditLog, DEFAULT_AUDIT_LOG } from "../../ui/audit.js";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { formatTable, formatTime, printJson, printText } from "../output.js";
import { examples } from "../runs.js";

interface AuditFlags {
  auditLog: string;
  limit: number;
  json?: boolean;
  verify?: boolean;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 1000) {
    throw new CommanderArgumentError("expected a whole number from 1 to 1000");
  }
  return n;
}

/** The target column: the run, the checkpoint, or both. */
function targetText(entry: AuditEntry): string {
  const { pipelineId, checkpointId } = entry.target;
  return [pipelineId, checkpointId].filter((t) => t !== undefined).join(" ") || "-";
}

/** The outcome column: a failure says its code. */
function outcomeText(entry: AuditEntry): string {
  const code = entry.outcome === "failed" ? entry.detail?.code : undefined;
  return typeof code === "string" ? `failed (${code})` : entry.outcome;
}

async function verify(log: AuditLog, flags: AuditFlags): Promise<void> {
  const result = await log.verify();
  if (flags.json) printJson({ path: log.path, ...result, brokenAt: result.brokenAt ?? null });
  else if (result.ok)
    printText(`Audit trail ${log.path}: ${result.entries} entries, the hash chain is whole.`);
  else {
    const at = result.brokenAt;
    printText(
      `Audit trail ${log.path}: the hash chain breaks at line ${at?.line}: ${at?.reason}\n` +
        `${result.entries} entries before it verify.`,
    );
  }
  // The report is the output; the exit code tells scripts the trail was tampered with or damaged.
  if (!result.ok) throw new CommandExit(ExitCode.Corrupt, "");
}

/** Registers `cairn audit`. */
export function registerAudit(program: Command): void {
  program
    .command("audit")
    .summary("List the console's audit trail, or verify it")
    .description(
      "List the actions taken in the web console (`cairn ui --allow-actions`), newest first: when, the OS user, " +
        "the client address, the action, its target and its outcome. Each action is recorded as requested before " +
        "it acts, then done or failed. The trail is an append-only JSON Lines file whose entries are hash-chained; " +
        "--verify walks the chain and exits 4 naming the first line that was edited, removed or reordered.",
    )
    .option("--audit-log <file>", "the audit trail file", DEFAULT_AUDIT_LOG)
    .option("--limit <n>", "how many entries to list, newest first", parseLimit, 50)
    .option("--json", "print JSON")
    .option("--verify", "verify the hash chain instead of listing (exit 4 when broken)")
    .addHelpText(
      "after",
      examples(
        "cairn audit",
        "cairn audit --limit 200 --json",
        "cairn audit --verify --audit-log /var/log/cairn/audit.jsonl",
      ),
    )
    .action(async (flags: AuditFlags) => {
      const log = new AuditLog(flags.auditLog);
      if (flags.verify) return verify(log, flags);
      const page = await log.read({ limit: flags.limit });
      if (flags.json)
        return printJson({ path: log.path, entries: page.entries, more: page.nextBefore !== undefined });
      if (page.entries.length === 0) return printText(`No entries in the audit trail ${log.path}.`);
      const rows = page.entries.map((e) => [
        formatTime(new Date(e.at)),
        e.user,
        e.client,
        e.action,
        targetText(e),
        outcomeText(e),
      ]);
      printText(formatTable(["TIME", "USER", "CLIENT", "ACTION", "TARGET", "OUTCOME"], rows));
      if (page.nextBefore !== undefined)
        printText(`(newest ${page.entries.length} shown; --limit shows more)`);
    });
}
