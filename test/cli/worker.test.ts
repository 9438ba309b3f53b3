/**
 * `cairn worker` and `cairn enqueue` as users run them: usage errors (exit 2, a clear message),
 * then the engine scenarios (test/support/worker-cli.ts) on BullMQ: a worker process runs an
 * enqueued 3-stage pipeline file to completion, once though it was enqueued twice; SIGTERM
 * mid-stage drains (exit 0: the stage finishes and checkpoints, the job goes back to the queue)
 * and a second worker finishes the run without re-running the stages done; a second signal exits
 * at once (130) and another worker resumes the run once its lease lapses. pg-boss runs the same
 * scenarios in worker-pg-boss.test.ts. Real Redis.
 */
import { writeFile } from "node:fs/promises";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCairn } from "../support/cli.js";
import { engineScenarios, pipelineFile, startWorker, testDir } from "../support/worker-cli.js";

describe("usage errors", () => {
  const cases: [string, string[], RegExp][] = [
    ["no --engine", ["worker", "p.yaml"], /--engine/],
    ["an unknown engine", ["worker", "p.yaml", "--engine", "kafka"], /kafka.*bullmq|bullmq.*kafka/s],
    [
      "pg-boss's flag with bullmq",
      ["worker", "p.yaml", "--engine", "bullmq", "--connection-string", "postgres://x/y"],
      /--connection-string is for --engine pg-boss/,
    ],
    [
      "bullmq's flag with pg-boss",
      [
        "enqueue",
        "p.yaml",
        "--engine",
        "pg-boss",
        "--redis-url",
        "redis://x",
        "--connection-string",
        "postgres://x/y",
      ],
      /--redis-url is for --engine bullmq/,
    ],
    [
      "pg-boss without a connection",
      ["enqueue", "p.yaml", "--engine", "pg-boss"],
      /--connection-string.*DATABASE_URL/,
    ],
    ["a concurrency of 0", ["worker", "p.yaml", "--engine", "bullmq", "--concurrency", "0"], /--concurrency/],
    [
      "a lease TTL under a second",
      ["worker", "p.yaml", "--engine", "bullmq", "--lease-ttl", "50"],
      /--lease-ttl/,
    ],
    ["a queue name with a colon", ["enqueue", "p.yaml", "--engine", "bullmq", "--queue", "a:b"], /--queue/],
    ["an invalid run id", ["enqueue", "p.yaml", "--engine", "bullmq", "--run-id", "no spaces"], /--run-id/],
  ];
  it("refuses bad flags with exit 2 and a message naming the flag", async () => {
    await pipelineFile("usage", "redis://127.0.0.1:1");
    // One process each, all at once: they only parse their flags.
    const results = await Promise.all(
      cases.map(([, args]) => runCairn(args, { cwd: testDir(), env: { DATABASE_URL: undefined } })),
    );
    for (const [i, [what, , message]] of cases.entries()) {
      const result = results[i];
      expect(result?.stderr, what).toMatch(message);
      expect(result?.code, `${what}: ${result?.stderr}`).toBe(2);
    }
  });

  it("refuses two files defining one pipeline, a file without a valid name or without checkpoints", async () => {
    await pipelineFile("twice", "redis://127.0.0.1:1", 50, "a.yaml");
    await pipelineFile("twice", "redis://127.0.0.1:1", 50, "b.yaml");
    await writeFile(join(testDir(), "bad.yaml"), "name: has spaces\nsteps: []\n");
    await writeFile(
      join(testDir(), "off.yaml"),
      "name: off\nsteps:\n  - { name: one, agent: ./agents.js:stage }\n",
    );
    const [both, bad, missing, off] = await Promise.all([
      runCairn(["worker", "a.yaml", "b.yaml", "--engine", "bullmq"], { cwd: testDir() }),
      runCairn(["enqueue", "bad.yaml", "--engine", "bullmq"], { cwd: testDir() }),
      runCairn(["enqueue", "nope.yaml", "--engine", "bullmq"], { cwd: testDir() }),
      runCairn(["worker", "off.yaml", "--engine", "bullmq"], { cwd: testDir() }),
    ]);
    // A worker's runs must resume elsewhere: a pipeline without checkpoints is refused.
    expect(off.stderr).toMatch(/checkpointEnabled off/);
    expect(off.code).toBe(2);
    expect(both.stderr).toMatch(/a\.yaml and b\.yaml both define pipeline twice/);
    expect(both.code).toBe(2);
    expect(bad.stderr).toMatch(/has spaces/);
    expect(bad.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml does not exist/);
    expect(missing.code).toBe(3);
  });

  it("refuses a checkpoint store the other workers cannot reach, unless --shared-store", async () => {
    await pipelineFile("local", `sqlite:${join(testDir(), "c.db")}`);
    const result = await runCairn(["worker", "pipeline.yaml", "--engine", "bullmq"], { cwd: testDir() });
    expect(result.stderr).toMatch(/sqlite store.*pass --shared-store.*CAIRN_STORE_NOT_SHARED/s);
    expect(result.code).toBe(2);
  });

  it("stops on SIGTERM while its queue's server does not answer, with exit 5", async () => {
    // A server that accepts connections and never answers: the worker is still connecting.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done));
    try {
      const { port } = silent.address() as AddressInfo;
      const file = await pipelineFile("silent", "redis://127.0.0.1:1");
      const worker = startWorker([file, "--engine", "bullmq", "--redis-url", `redis://127.0.0.1:${port}`]);
      await worker.until("a connection", () => sockets.size > 0);
      worker.child.kill("SIGTERM");
      expect(await worker.exited, worker.out.stderr).toBe(5);
      expect(worker.events().at(-1)).toMatchObject({ type: "worker_stopped", drained: false });
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it("reports a queue server that refuses connections with exit 5", async () => {
    const file = await pipelineFile("refused", "redis://127.0.0.1:1");
    const engines = [
      ["--engine", "pg-boss", "--connection-string", "postgres://postgres@127.0.0.1:1/test"],
      ["--engine", "bullmq", "--redis-url", "redis://127.0.0.1:1"],
    ];
    const results = await Promise.all(
      engines.flatMap((args) =>
        ["enqueue", "worker"].map((command) => runCairn([command, file, ...args], { cwd: testDir() })),
      ),
    );
    for (const result of results) {
      expect(result.stderr).toMatch(/127\.0\.0\.1:1\b.*ECONNREFUSED/);
      expect(result.code, result.stderr).toBe(5);
    }
  });

  it("documents the exit codes and every flag in --help", async () => {
    for (const command of ["worker", "enqueue"]) {
      const help = await runCairn([command, "--help"], { cwd: testDir() });
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Exit codes:\n\s+0 /);
      for (const flag of [
        "--engine",
        "--redis-url",
        "--connection-string",
        "--queue",
        "--lease-ttl",
        "--json",
      ])
        expect(help.stdout).toContain(flag);
    }
  });
});

engineScenarios("bullmq");
