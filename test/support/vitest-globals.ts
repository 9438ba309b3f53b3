/**
 * Vitest's `globals: true` for the importing test file only. Some third-party suites (LangGraph's
 * checkpoint validation kit) call `describe`, `it`, `expect` … as globals; turning `globals` on
 * for the whole repo would hide a forgotten import in every other file. This does what vitest
 * itself does for that option (`registerApiGlobally`: each API onto `globalThis`), for one file.
 * Import it before calling the suite's functions.
 */
import * as vitest from "vitest";

// The same names vitest registers for `globals: true` (vitest 4), those it exports.
const GLOBAL_APIS = [
  "suite",
  "test",
  "describe",
  "it",
  "chai",
  "expect",
  "assert",
  "expectTypeOf",
  "assertType",
  "vitest",
  "vi",
  "beforeAll",
  "afterAll",
  "beforeEach",
  "afterEach",
  "onTestFinished",
  "onTestFailed",
  "aroundEach",
  "aroundAll",
] as const;

const api = vitest as unknown as Record<string, unknown>;
for (const name of GLOBAL_APIS) (globalThis as Record<string, unknown>)[name] = api[name];
