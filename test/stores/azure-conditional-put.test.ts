/**
 * The settling logic of the Azure adapter's conditional put, driven by scripted answers: the
 * sequences a real server produces only by chance (a lost reply followed by a refused
 * connection, our own earlier try failing our retry). The real-server cases are in
 * azure-faults.test.ts.
 */
import { describe, expect, it } from "vitest";
import { StoreOperationError, StoreUnavailableError } from "../../src/core/errors.js";
import { conditionalPut } from "../../src/stores/azure/conditional-put.js";
import { Deadline } from "../../src/stores/azure/sdk.js";
import type { StoredObject, WriteCondition } from "../../src/stores/object/objects.js";

const restError = (statusCode: number | undefined, code: string, message = code) =>
  Object.assign(new Error(message), { name: "RestError", statusCode, code });
const reset = () => restError(undefined, "ECONNRESET", "read ECONNRESET");
const refused = () => restError(undefined, "ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1");
const exists = () => restError(409, "BlobAlreadyExists");
const stale = () => restError(412, "ConditionNotMet");

/** A scripted server: each upload pops the next answer (an error, or "ok" to store the body). */
function scripted(answers: (Error | "ok")[], initial?: string) {
  let stored: StoredObject | undefined =
    initial === undefined ? undefined : { body: Buffer.from(initial), etag: '"e0"', serverTime: new Date() };
  let version = 0;
  const uploads: WriteCondition[] = [];
  let pending: Buffer = Buffer.alloc(0);
  const context = {
    where: "test",
    upload: async (condition: WriteCondition) => {
      uploads.push(condition);
      const answer = answers.shift() ?? "ok";
      if (answer === "ok") {
        stored = { body: pending, etag: `"e${++version}"`, serverTime: new Date() };
        return { etag: stored.etag, serverTime: stored.serverTime };
      }
      throw answer;
    },
    read: async () => stored,
  };
  return {
    context,
    uploads,
    /** Applies our body as if a try had reached the server (its reply being lost). */
    apply: () => {
      stored = { body: pending, etag: `"e${++version}"`, serverTime: new Date() };
    },
    setBody: (body: string) => {
      pending = Buffer.from(body);
    },
    get stored() {
      return stored;
    },
  };
}

describe("conditionalPut: settling unknown outcomes", () => {
  it("a refused try after a lost reply is maybe-committed", async () => {
    const server = scripted([reset(), refused(), refused(), refused(), refused()]);
    server.setBody("mine");
    const error = await conditionalPut(
      server.context,
      Buffer.from("mine"),
      { ifNoneMatch: "*" },
      new Deadline(5000),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).maybeCommitted).toBe(true);
  });

  it("refused every time, nothing sent: not maybe-committed", async () => {
    const server = scripted([refused(), refused(), refused(), refused(), refused()]);
    const error = await conditionalPut(
      server.context,
      Buffer.from("mine"),
      { ifNoneMatch: "*" },
      new Deadline(5000),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).maybeCommitted).toBe(false);
  });

  it("our own earlier try landing late fails the retry's condition: still ok", async () => {
    const body = Buffer.from("mine");
    const server = scripted([]);
    server.setBody("mine");
    // Try 1: reply lost, not yet applied; the read-back sees nothing; try 2 collides with try 1,
    // which the server applied in between.
    let tries = 0;
    const context = {
      ...server.context,
      upload: async (condition: WriteCondition) => {
        tries++;
        if (tries === 1) throw reset();
        server.apply();
        throw "ifNoneMatch" in condition ? exists() : stale();
      },
    };
    const result = await conditionalPut(context, body, { ifNoneMatch: "*" }, new Deadline(5000));
    expect(result.ok).toBe(true);
    expect(result.ok && result.etag).toBe(server.stored?.etag);
  });

  it("a first refusal of the condition is final, with no read", async () => {
    const server = scripted([stale()], "theirs");
    let reads = 0;
    const context = {
      ...server.context,
      read: async () => {
        reads++;
        return server.stored;
      },
    };
    expect(await conditionalPut(context, Buffer.from("mine"), { ifMatch: "e0" }, new Deadline(5000))).toEqual(
      {
        ok: false,
      },
    );
    expect(reads).toBe(0);
    // The ETag is sent quoted.
    expect(server.uploads).toEqual([{ ifMatch: '"e0"' }]);
  });

  it("a 500 for a compare-and-swap that did not apply: retried with the same ETag", async () => {
    const server = scripted([restError(500, "InternalError"), "ok"], "old");
    server.setBody("new");
    const result = await conditionalPut(
      server.context,
      Buffer.from("new"),
      { ifMatch: '"e0"' },
      new Deadline(5000),
    );
    expect(result.ok).toBe(true);
    expect(server.uploads).toEqual([{ ifMatch: '"e0"' }, { ifMatch: '"e0"' }]);
    expect(server.stored?.body.toString()).toBe("new");
  });

  it("any other answer is a StoreOperationError at once", async () => {
    const server = scripted([restError(403, "AuthorizationFailure")]);
    await expect(
      conditionalPut(server.context, Buffer.from("x"), { ifNoneMatch: "*" }, new Deadline(5000)),
    ).rejects.toBeInstanceOf(StoreOperationError);
    expect(server.uploads).toHaveLength(1);
  });
});
