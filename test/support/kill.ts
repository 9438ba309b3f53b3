/** SIGKILL of a CLI process at a point the test observes, for the fault tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { watch } from "node:fs";
import { CLI_PATH } from "./cli.js";

/** Starts `cairn ...args`. */
export function start(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [CLI_PATH, ...args], {
    stdio: "ignore",
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined },
  });
}

/**
 * SIGKILLs the child as soon as `ready()` holds (checked on every change `watched` reports and
 * every millisecond); resolves once it is gone, with whether it was killed or had exited first.
 */
export function killWhen(
  child: ChildProcess,
  ready: () => boolean,
  watched: string[] = [],
): Promise<boolean> {
  return new Promise((resolve) => {
    let killed = false;
    const check = () => {
      if (!killed && child.exitCode === null && ready()) {
        killed = true;
        child.kill("SIGKILL");
      }
    };
    const watchers = watched.map((path) => watch(path, check));
    const timer = setInterval(check, 1);
    child.on("exit", () => {
      clearInterval(timer);
      for (const w of watchers) w.close();
      resolve(killed);
    });
  });
}
