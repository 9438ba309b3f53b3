/** Placeholder until the pg-boss adapter lands (branch wk-pgboss replaces this file). */
import { InvalidArgumentError } from "../core/errors.js";
import type { EngineAdapter } from "./types.js";

const notBuilt = () => Promise.reject(new InvalidArgumentError("the pg-boss worker engine is not built yet"));

export const adapter: EngineAdapter = { startWorker: notBuilt, enqueue: notBuilt };
