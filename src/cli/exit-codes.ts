/**
 * The CLI's exit codes and how errors map to them. Scripts switch on these numbers, so they
 * are part of the command-line contract and never change meaning.
 */
import { CommanderError } from "commander";
import { ErrorCode, isCairnError } from "../index.js";

/** Exit codes of every `cairn` command. */
export const ExitCode = {
  /** The command did what was asked. */
  Success: 0,
  /** Anything not covered below (I/O error, conflict, refused operation). */
  Failure: 1,
  /** Bad or missing flags, invalid names, invalid store configuration, data of a newer cairn, data over a size limit. */
  Usage: 2,
  /** The checkpoint or run does not exist. */
  NotFound: 3,
  /** Corrupt data was found (including `validate` finding problems). */
  Corrupt: 4,
  /** The store cannot be reached, its driver package is not installed, or its server lacks a needed feature. */
  StoreUnavailable: 5,
  /** Another runner is executing the run (`cairn run`). */
  RunLocked: 6,
  /** Encrypted data needs a key the command was not given (`--key-file`, `CAIRN_KEY_FILE`). */
  KeyMissing: 7,
  /** Stopped by SIGINT/SIGTERM after a checkpoint (`cairn run`); the run can be resumed. */
  Interrupted: 130,
} as const;

/** One of the values of {@link ExitCode}. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Text appended to `cairn --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  failure (anything not listed below)
  2  usage error: bad or missing flags, invalid names or store configuration;
     or the store or file was written by a newer cairn (upgrade cairn);
     or a file or checkpoint is larger than the size limit (raise --max-bytes)
  3  not found: no such checkpoint or run
  4  corrupt data found (validate found problems, or a checkpoint failed verification)
  5  store unavailable, its driver package is not installed, or its server lacks
     a feature the store needs (conditional writes)
  6  run locked: another process is executing that run (cairn run)
  7  key missing: encrypted data needs a key not in the key file (--key-file, CAIRN_KEY_FILE)
  130 stopped by a signal after a checkpoint; the run can be resumed (cairn run)`;

/** A command-line usage mistake the CLI detects itself (conflicting flags, missing mode). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Ends a command with a non-zero exit code after it printed its result, e.g. `validate`
 * finding problems: the report is the output, the code tells scripts what it means.
 */
export class CommandExit extends Error {
  readonly exitCode: ExitCodeValue;

  constructor(exitCode: ExitCodeValue, message: string) {
    super(message);
    this.name = "CommandExit";
    this.exitCode = exitCode;
  }
}

const BY_CODE: Partial<Record<string, ExitCodeValue>> = {
  [ErrorCode.NotFound]: ExitCode.NotFound,
  [ErrorCode.Corrupt]: ExitCode.Corrupt,
  [ErrorCode.StoreUnavailable]: ExitCode.StoreUnavailable,
  [ErrorCode.MissingDriver]: ExitCode.StoreUnavailable,
  // The server cannot hold cairn's data safely: like a missing driver, the fix is a different setup.
  [ErrorCode.StoreUnsupported]: ExitCode.StoreUnavailable,
  [ErrorCode.InvalidName]: ExitCode.Usage,
  [ErrorCode.InvalidArgument]: ExitCode.Usage,
  [ErrorCode.InvalidConfig]: ExitCode.Usage,
  [ErrorCode.InvalidPipeline]: ExitCode.Usage,
  // Retrying cannot help and nothing is broken: the remedy is on the user's side, as for usage.
  [ErrorCode.FormatTooNew]: ExitCode.Usage,
  [ErrorCode.TooLarge]: ExitCode.Usage,
  [ErrorCode.RunLocked]: ExitCode.RunLocked,
  [ErrorCode.KeyMissing]: ExitCode.KeyMissing,
  // A resume whose migration throws fails like a run whose stage fails: the run is intact, fix and re-run.
  [ErrorCode.MigrationFailed]: ExitCode.Failure,
  // The watcher's cursor is too old to continue from: the fix is the caller's (re-sync), as for usage.
  [ErrorCode.FeedTrimmed]: ExitCode.Usage,
  // A worker refused a store other machines cannot reach: the fix is the setup (or --shared-store).
  [ErrorCode.StoreNotShared]: ExitCode.Usage,
};

/** The exit code for an error thrown by a command or by commander's parsing. */
export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof CommandExit) return error.exitCode;
  if (error instanceof UsageError) return ExitCode.Usage;
  // Help and --version end parsing with an exception too, but with exit code 0.
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.Success : ExitCode.Usage;
  if (isCairnError(error)) return BY_CODE[error.code] ?? ExitCode.Failure;
  return ExitCode.Failure;
}
