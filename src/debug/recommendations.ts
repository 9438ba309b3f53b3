/** Concrete next steps from a pipeline analysis: what is wrong, and the command that helps. */
import { formatBytes } from "../manager/chain-text.js";
import type { SealedKey } from "../manager/run-walk.js";
import type { AnalysisFacts, PipelineAnalysis } from "./analyze.js";
import type { ThreadAnalysis } from "./analyze-thread.js";
import { formatTime } from "./report-formats.js";

/** Quotes one argument for a POSIX shell, leaving plain ones as they are. */
export function shellQuote(arg: string): string {
  // `<export-file>` is a placeholder the user replaces, not a value to quote.
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) || /^<[a-z-]+>$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A command line with its arguments quoted, for recommendations users paste into a shell. */
export function commandLine(...args: readonly string[]): string {
  return args.map(shellQuote).join(" ");
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const times = (n: number) => (n === 1 ? "once" : `${n} times`);
const list = (items: readonly string[], max = 3) =>
  items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;

/** The recommendations for an analysis, most urgent first. */
export function recommend(a: PipelineAnalysis, facts: AnalysisFacts): string[] {
  const store = facts.storeArgs;
  const cmd = (...args: string[]) => `\`${commandLine("cairn", ...args, ...store)}\``;
  const out: string[] = [];
  const withId = a.corrupted.flatMap((c) =>
    c.checkpointId !== undefined && !c.quarantined ? [c.checkpointId] : [],
  );
  const quarantined = a.corrupted.flatMap((c) =>
    c.checkpointId !== undefined && c.quarantined ? [c.checkpointId] : [],
  );
  const withoutId = a.corrupted.flatMap((c) =>
    c.checkpointId === undefined && c.location !== undefined ? [c.location] : [],
  );
  if (withId.length > 0) {
    out.push(
      `${plural(withId.length, "invalid checkpoint")} (${list(withId)}): a resume never uses ${withId.length === 1 ? "it" : "them"}. ` +
        `See what is wrong with ${cmd("inspect", "--checkpoint-id", withId[0] as string)}, then ` +
        `back it up and quarantine it with ${cmd("repair", "--checkpoint-id", withId[0] as string)} ` +
        `(add --force only to accept content that changed on purpose); ` +
        `if you exported a good copy, restore it with ${cmd("import", "--input", "<export-file>", "--overwrite")}.`,
    );
  }
  if (quarantined.length > 0) {
    out.push(
      `${plural(quarantined.length, "quarantined checkpoint")} (${list(quarantined)}): already handled by ` +
        "`cairn repair` (backed up; a resume skips it); nothing to do unless you restore a good copy.",
    );
  }
  if (withoutId.length > 0) {
    out.push(
      `${plural(withoutId.length, "unreadable entry", "unreadable entries")} with no checkpoint id (${list(withoutId)}): ` +
        "not a checkpoint cairn wrote, or truncated; move it out of the store.",
    );
  }
  const key = a.checkpoints.keyMissing ?? a.resumeKeyMissing;
  if (key) out.push(sealedAdvice(a, key, cmd));
  for (const h of a.history.filter((f) => f.problem)) {
    out.push(
      `Lost history (${h.kind}): ${h.message}. Checkpoints were removed or replaced behind cairn's back, not by retention: ` +
        `restore them with ${cmd("import", "--input", "<export-file>")} if you exported the run, or find what deleted them.`,
    );
  }
  out.push(resumeAdvice(a, facts, cmd));
  if (a.orphaned.length > 0) {
    const first = a.orphaned[0];
    out.push(
      `${plural(a.orphaned.length, "orphaned checkpoint")}: the parent of ${first?.checkpointId} (${first?.missingParentId}) ` +
        "was removed while older checkpoints remain, so the hash chain has a gap (resume is not affected). " +
        `Restore the missing checkpoint with ${cmd("import", "--input", "<export-file>")} if you exported it; ` +
        `${cmd("chain", "--pipeline-id", a.pipelineId)} shows the gap.`,
    );
  }
  for (const f of a.failurePoints.slice(0, 3)) {
    const error = f.lastError !== null ? `: "${f.lastError}"` : "";
    out.push(
      a.finished
        ? `Stage ${f.stageName} failed ${times(f.count)} before the run finished (last at ${formatTime(f.lastAt)}${error}).`
        : `Stage ${f.stageName} failed ${times(f.count)}, last at ${formatTime(f.lastAt)}${error}; fix the cause before resuming, or it fails again.`,
    );
  }
  if (a.resumes.totalResumeCount > 0 && !a.finished) {
    out.push(
      `The run was resumed ${times(a.resumes.totalResumeCount)} without finishing (resume success rate 0).`,
    );
  }
  if (a.storage.unreferencedOutputs > 0) {
    const caveat = facts.refsComplete
      ? ""
      : " (counted against the readable checkpoints only; an unreadable one may reference some)";
    out.push(
      `${plural(a.storage.unreferencedOutputs, "stored output")} (${formatBytes(facts.unreferencedBytes)}) referenced by no checkpoint${caveat}: ` +
        "left by removed checkpoints or an interrupted write; retention removes them the next time it deletes checkpoints of this run.",
    );
  }
  if (facts.old.length > 0) {
    const days = String(facts.retentionDays);
    const resumeIsOld =
      !a.finished &&
      a.resumePoint !== null &&
      facts.old.some((m) => m.checkpoint_id === a.resumePoint?.checkpointId);
    out.push(
      resumeIsOld
        ? `${plural(facts.old.length, "checkpoint")} older than ${days} days, the resume point among them: ` +
            `${cmd("cleanup", "--retention-days", days)} would delete it; resume or finish the run first.`
        : `No retention policy has removed ${plural(facts.old.length, "checkpoint")} older than ${days} days: ` +
            `run ${cmd("cleanup", "--retention-days", days, "--dry-run")} to see what it would remove (store-wide).`,
    );
  }
  if (a.corrupted.length === 0 && a.orphaned.length === 0 && a.checkpoints.sealed === 0) {
    out.unshift(
      `All ${plural(a.checkpoints.total, "checkpoint")} verify and the ${a.thread ? "tree" : "chain"} has no gaps.`,
    );
  }
  return out;
}

function resumeAdvice(a: PipelineAnalysis, facts: AnalysisFacts, cmd: (...args: string[]) => string): string {
  if (a.thread) return threadAdvice(a.thread);
  if (a.finished) {
    return `The run finished: nothing to resume; ${cmd("cleanup", "--pipeline-id", a.pipelineId)} removes it once it is no longer needed.`;
  }
  if (facts.resumeError !== undefined) return `A resume would fail: ${facts.resumeError}`;
  if (a.finishedUnverified) {
    return "The run's pipeline_complete checkpoint is listed but encrypted: it finished as far as its metadata says, not verified without the key.";
  }
  if (a.resumeKeyMissing) {
    return `The resume point is unknown: finding it means verifying checkpoints encrypted under key id ${a.resumeKeyMissing.keyId}.`;
  }
  const p = a.resumePoint;
  if (!p) return "No checkpoint of this run verifies: a resume starts over from the first stage.";
  const next = p.pendingStages[0] !== undefined ? `next stage: ${p.pendingStages[0]}` : "no stage pending";
  const skipped = p.isNewest
    ? ""
    : "; it is not the newest checkpoint: newer checkpoints are corrupt or expired, and a resume skips them";
  return `Resume will use checkpoint ${p.checkpointId} (stage ${p.stageName}, sequence ${p.sequence}, ${next})${skipped}.`;
}

/** What to do about checkpoints this reader cannot verify for want of a key. */
function sealedAdvice(a: PipelineAnalysis, key: SealedKey, cmd: (...args: string[]) => string): string {
  const what =
    a.checkpoints.sealed > 0
      ? `${plural(a.checkpoints.sealed, "checkpoint")} not verified`
      : "The resume point is not verified";
  if (key.kind === "data-key") {
    return (
      `${what}: encrypted with data key ${key.keyId}, which the store no longer holds (deleting a run destroys it): ` +
      "they cannot be decrypted or verified by anyone."
    );
  }
  return (
    `${what}: encrypted under key id ${key.keyId}, which this reader does not have (not damage). ` +
    `Pass the key file that holds it: ${cmd("analyze", "--pipeline-id", a.pipelineId, "--key-file", "<key-file>")} ` +
    "(or set CAIRN_KEY_FILE) to verify them and find the resume point."
  );
}

/** Where LangGraph picks up a thread namespace, and how to reach its other branches. */
function threadAdvice(t: ThreadAnalysis): string {
  if (!t.latest)
    return "No checkpoint of this thread namespace verifies: LangGraph would start the thread afresh.";
  const writes = t.latestWrites > 0 ? ` with ${plural(t.latestWrites, "pending-writes record")}` : "";
  const others = t.branches.length - 1;
  const branches =
    others === 0
      ? ""
      : others === 1
        ? "; the other branch (a fork) resumes when its checkpoint_id is passed in the config"
        : `; the other ${others} branches (forks) resume when their checkpoint_id is passed in the config`;
  return (
    `LangGraph resumes this namespace from its latest checkpoint ${t.latest.checkpointId} ` +
    `(${t.latest.source}, step ${t.latest.step})${writes}${branches}. A thread never finishes: ` +
    "deleteThread (CairnSaver) removes it when it is no longer needed."
  );
}
