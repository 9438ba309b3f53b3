/**
 * Real outages while following: the source server (PostgreSQL, Redis) is reached through a TCP
 * proxy that the test takes down (every connection dropped, new ones refused) while a writer
 * keeps writing to the server directly. The replicator reports the outage, retries with backoff,
 * and catches up once the proxy is back; nothing is skipped.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  type ReplicationProblem,
  type ReplicationProgress,
  replicate,
} from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { openStore } from "../../src/stores/registry.js";
import { expectSameRuns, until, writeRun } from "../support/replica.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

const schemas: string[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  if (postgresUp) await dropSchemas(...schemas);
  if (redisUp) await deleteKeyPrefixes(...prefixes);
});
const closing: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((c) => c.close()));
});

/** The server's URL with its host and port replaced by the proxy's. */
function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(proxy.port);
  return u.toString();
}

const SERVERS = [
  {
    name: "postgres",
    up: postgresUp,
    url: () => {
      const schema = uniqueName("cairn_replicate_outage");
      schemas.push(schema);
      return `${POSTGRES_URL}?schema=${schema}`;
    },
  },
  {
    name: "redis",
    up: redisUp,
    url: () => {
      const prefix = `${uniqueName("cairn-replicate-outage")}:`;
      prefixes.push(prefix);
      return `${REDIS_URL}?keyPrefix=${prefix}`;
    },
  },
];

describe.each(SERVERS)("replicate --follow from $name through an outage", ({ up, url }) => {
  it.skipIf(!up)("reports the outage, retries with backoff and catches up", async () => {
    const direct = url();
    const server = new URL(direct);
    const proxy = await startProxy("127.0.0.1", Number(server.port));
    closing.push(proxy);
    const from = viaProxy(direct, proxy);
    const writer = new CheckpointManager({ store: direct });
    closing.push(writer);
    await writeRun(writer, "run-before", 2);
    const target = new MemoryStore({ name: `outage-${randomBytes(3).toString("hex")}` });
    const problems: ReplicationProblem[] = [];
    const phases: ReplicationProgress["phase"][] = [];
    const controller = new AbortController();
    const running = replicate({
      from,
      to: target,
      follow: true,
      signal: controller.signal,
      onProblem: (p) => problems.push(p),
      onProgress: (p) => phases.push(p.phase),
    });
    await until(async () => (await target.listCheckpoints("run-before")).length === 2);

    await proxy.down();
    await writeRun(writer, "run-during", 3);
    await until(() => problems.filter((p) => p.kind === "outage").length >= 2, 30_000);
    await proxy.up();
    await until(async () => (await target.listCheckpoints("run-during")).length === 3, 30_000);
    await writeRun(writer, "run-after", 1);
    await until(async () => (await target.listCheckpoints("run-after")).length === 1);
    controller.abort();
    const report = await running;

    expect(phases).toContain("retrying");
    expect(problems.length).toBeGreaterThanOrEqual(2);
    expect(problems.every((p) => p.kind === "outage")).toBe(true);
    expect(report).toMatchObject({ checkpointsCopied: 6, corrupt: [], diverged: [] });
    const source = await openStore(direct);
    closing.push(source);
    await expectSameRuns(source, target);
  });
});
