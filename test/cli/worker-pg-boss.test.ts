/**
 * `cairn worker` and `cairn enqueue` on pg-boss: the engine scenarios of test/support/worker-cli.ts
 * (run to completion once though enqueued twice, drain on SIGTERM, exit on a second signal and
 * resume by another worker). Real PostgreSQL: the queue in a schema of its own.
 */
import { engineScenarios } from "../support/worker-cli.js";

engineScenarios("pg-boss");
