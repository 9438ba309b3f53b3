/**
 * The CLI on LangGraph threads written by CairnSaver: `--thread`/`--namespace` on list, inspect,
 * validate, analyze, export and visualize; a fork is a branch, never a problem; export/import of
 * a thread between stores, read back through CairnSaver on the target. The built CLI, real stores.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { CairnSaver, threadCheckpointId, threadRunId } from "../../src/langgraph/index.js";
import { readKeyFile } from "../../src/transforms/key-file.js";
import { type CliResult, runCairn } from "../support/cli.js";
import { runRealGraph, SUB_TASK, type ThreadFixture, writeThread } from "../support/lg-threads.js";
import { storeUrls } from "../support/store-urls.js";

const { urls, dir } = storeUrls("lg-cli");
const sqlite = () => urls.sqlite?.() as string;

function cairn(args: string[]): Promise<CliResult> {
  return runCairn(args, { cwd: dir() });
}

let count = 0;
/** A thread of its own for each test, in the file's shared stores. */
async function thread(store = sqlite()): Promise<ThreadFixture & { store: string }> {
  return { ...(await writeThread(store, `support-${++count}`)), store };
}

const json = <T>(result: CliResult): T => {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
};

describe("cairn list on LangGraph threads", () => {
  it("names thread runs by thread and namespace, and lists a thread's namespaces", async () => {
    const t = await thread();
    const all = await cairn(["list", "--store", t.store]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain("LangGraph threads (CairnSaver):");
    const rows = all.stdout.split("\n").filter((l) => l.includes(`"${t.threadId}"`));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain("(root)");
    expect(rows[0]).toContain(threadRunId(t.threadId));
    expect(rows[1]).toContain(`child:${SUB_TASK}`);

    const listed = json<{ pipelineId: string; thread?: unknown }[]>(
      await cairn(["list", "--store", t.store, "--json"]),
    );
    expect(listed.find((r) => r.pipelineId === threadRunId(t.threadId, t.subNs))?.thread).toEqual({
      threadId: t.threadId,
      namespace: t.subNs,
    });

    const text = await cairn(["list", "--thread", t.threadId, "--store", t.store]);
    expect(text.code).toBe(0);
    const [root, sub] = text.stdout
      .split("\n")
      .filter((l) => l.startsWith("(root)") || l.startsWith("child:"));
    // NAMESPACE, RUN ID, CHECKPOINTS, WRITES, FORKS, BRANCHES, LATEST (update, step 1), ..., CHECK
    expect(root).toMatch(/^\(root\)\s+\S+\s+4\s+3\s+1\s+2\s+\S+ \(update, step 1\).*all valid$/);
    expect(sub).toMatch(/^child:\S+\s+\S+\s+2\s+1\s+0\s+1\s+\S+ \(loop, step 0\).*all valid$/);

    const view = json<{
      namespaces: { namespace: string; forks: string[]; leaves: string[]; latest: string }[];
    }>(await cairn(["list", "--thread", t.threadId, "--store", t.store, "--json"]));
    const runId = threadRunId(t.threadId);
    expect(view.namespaces.map((n) => n.namespace)).toEqual(["", t.subNs]);
    expect(view.namespaces[0]?.forks).toEqual([threadCheckpointId(runId, t.root.b)]);
    expect(view.namespaces[0]?.leaves).toEqual(
      [t.root.c, t.root.d].map((id) => threadCheckpointId(runId, id)),
    );
    expect(view.namespaces[0]?.latest).toBe(threadCheckpointId(runId, t.root.d));
  });

  it("draws one namespace as a tree: the fork as two branches, writes under their checkpoint", async () => {
    const t = await thread();
    const result = await cairn(["list", "--thread", t.threadId, "--namespace", "", "--store", t.store]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
    expect(lines[0]).toContain("4 checkpoints, 3 pending-writes records, 1 fork, 2 branches; all valid");
    expect(lines[at(/loop step 0/)]).toContain("(fork: 2 branches)");
    expect(lines[at(/loop step 1/)]).toMatch(/^├─ ✓ /);
    expect(lines[at(/update step 1/)]).toMatch(/^└─ ✓ .*← latest$/);
    expect(lines[at(/update step 1/) + 1]).toContain("+ writes task task-review: __interrupt__");
    expect(lines[at(/input step -1/) + 1]).toContain("+ writes task task-start: question");
  });

  it("says when a thread or namespace is not there, and refuses --namespace alone", async () => {
    const t = await thread();
    const none = await cairn(["list", "--thread", "no-such-thread", "--store", t.store]);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('No LangGraph thread "no-such-thread"');
    const ns = await cairn(["list", "--thread", t.threadId, "--namespace", "other:1", "--store", t.store]);
    expect(ns.code).toBe(3);
    expect(ns.stderr).toContain('has no namespace "other:1"');
    const alone = await cairn(["list", "--namespace", "", "--store", t.store]);
    expect(alone.code).toBe(2);
    expect((await cairn(["list", "--thread", "x", "--pipeline-id", "y", "--store", t.store])).code).toBe(2);
  });
});

describe("cairn inspect on LangGraph threads", () => {
  interface Inspected {
    validation: { valid: boolean };
    langgraph: {
      kind: string;
      threadId: string;
      namespace: string;
      checkpointId: string;
      parentCheckpointId: string | null;
      source: string;
      step: number;
      latest: boolean;
      children: string[];
      channels: { name: string; version: number; changed: boolean; stored: boolean }[];
      full: boolean;
      pendingWrites: { taskId: string; channel: string; idx: number }[];
      writes?: { channel: string; idx: number }[];
    };
  }

  it("shows the latest checkpoint of a thread: ids, parent, source/step, channels, pending writes", async () => {
    const t = await thread();
    const r = json<Inspected>(await cairn(["inspect", "--thread", t.threadId, "--store", t.store, "--json"]));
    expect(r.validation.valid).toBe(true);
    expect(r.langgraph).toMatchObject({
      kind: "checkpoint",
      threadId: t.threadId,
      namespace: "",
      checkpointId: t.root.d,
      parentCheckpointId: t.root.b,
      source: "update",
      step: 1,
      latest: true,
      children: [],
    });
    expect(r.langgraph.channels.map((c) => [c.name, c.version])).toEqual([
      ["__start__", 1],
      ["question", 1],
      ["topic", 2],
    ]);
    expect(r.langgraph.pendingWrites).toEqual([
      expect.objectContaining({ taskId: "task-review", channel: "__interrupt__", idx: -3 }),
    ]);
  });

  it("finds a checkpoint by LangGraph id, part of it or cairn id, and names a fork's branches", async () => {
    const t = await thread();
    const runId = threadRunId(t.threadId);
    for (const id of [t.root.b, t.root.b.slice(9, 18), threadCheckpointId(runId, t.root.b)]) {
      const result = await cairn([
        "inspect",
        "--thread",
        t.threadId,
        "--checkpoint-id",
        id,
        "--store",
        t.store,
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Checkpoint id:  ${t.root.b}`);
      expect(result.stdout).toContain("Children:       a fork: 2 branches");
      expect(result.stdout).toContain(`    ${t.root.c}\n    ${t.root.d}`);
      expect(result.stdout).toContain(`task ${SUB_TASK}  answer [0]`);
    }
    // Without --thread: any thread record by its cairn id gets the LangGraph part too.
    const plain = await cairn([
      "inspect",
      "--checkpoint-id",
      threadCheckpointId(runId, t.root.c),
      "--store",
      t.store,
    ]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain(`LangGraph checkpoint:\n  Thread:         "${t.threadId}"`);
    expect(plain.stdout).toContain("Source / step:  loop, step 1");
    const writes = json<Inspected>(
      await cairn([
        "inspect",
        "--checkpoint-id",
        `${threadCheckpointId(runId, t.root.d)}.w1`,
        "--store",
        t.store,
        "--json",
      ]),
    );
    expect(writes.langgraph).toMatchObject({
      kind: "writes",
      checkpointId: t.root.d,
      writes: [{ channel: "__interrupt__", idx: -3 }],
    });
    const sub = json<Inspected>(
      await cairn(["inspect", "--thread", t.threadId, "--namespace", t.subNs, "--store", t.store, "--json"]),
    );
    expect(sub.langgraph).toMatchObject({
      namespace: t.subNs,
      checkpointId: t.sub.f,
      parentCheckpointId: t.sub.e,
    });
    const missing = await cairn([
      "inspect",
      "--thread",
      t.threadId,
      "--checkpoint-id",
      "nothing-like-it",
      "--store",
      t.store,
    ]);
    expect(missing.code).toBe(3);
  });

  it("resolves a delta record's channels through its ancestors", async () => {
    const store = sqlite();
    const saver = new CairnSaver({ store });
    const { emptyCheckpoint, uuid6 } = await import("@langchain/langgraph-checkpoint");
    const conf = { configurable: { thread_id: "wide-thread", checkpoint_ns: "" } };
    // More channels than a record keeps whole: the child names only the one that changed.
    const a = { ...emptyCheckpoint(), id: uuid6(-1) };
    for (let i = 0; i < 40; i++) {
      a.channel_values[`ch${i}`] = i;
      a.channel_versions[`ch${i}`] = 1;
    }
    const ca = await saver.put(conf, a, { source: "loop", step: 0, parents: {} }, { ...a.channel_versions });
    const b = { ...structuredClone(a), id: uuid6(-1) };
    b.channel_values.ch7 = "seven";
    b.channel_versions.ch7 = 2;
    await saver.put(ca, b, { source: "loop", step: 1, parents: {} }, { ch7: 2 });
    await saver.close();
    const r = json<Inspected>(
      await cairn(["inspect", "--thread", "wide-thread", "--store", store, "--json"]),
    );
    expect(r.langgraph.full).toBe(false);
    expect(r.langgraph.channels).toHaveLength(40);
    expect(r.langgraph.channels.filter((c) => c.changed).map((c) => [c.name, c.version])).toEqual([
      ["ch7", 2],
    ]);
    expect(r.langgraph.channels.find((c) => c.name === "ch30")).toMatchObject({
      version: 1,
      changed: false,
      stored: true,
    });
    const text = await cairn(["inspect", "--thread", "wide-thread", "--store", store]);
    expect(text.stdout).toContain("Channels:       40 (this record holds the channels marked *)");
    expect(text.stdout).toMatch(/ \*ch7 +v2\n/);
  });
});

describe("an encrypted thread", () => {
  it("is listed and drawn without the key (not verified, never invalid), and verified with it", async () => {
    const store = `sqlite:${join(dir(), "sealed.db")}`;
    const keys = join(dir(), "sealed.keys");
    expect((await cairn(["keys", "generate", "--key-file", keys])).code).toBe(0);
    const saver = new CairnSaver({ store, encryption: await readKeyFile(keys) });
    const { emptyCheckpoint, uuid6 } = await import("@langchain/langgraph-checkpoint");
    const cp = { ...emptyCheckpoint(), id: uuid6(-1) };
    cp.channel_values.secret = "Zebra";
    cp.channel_versions.secret = 1;
    const conf = { configurable: { thread_id: "sealed", checkpoint_ns: "" } };
    const stored = await saver.put(conf, cp, { source: "input", step: -1, parents: {} }, { secret: 1 });
    await saver.putWrites(stored, [["secret", "Zebra 2"]], "task-1");
    await saver.close();

    const without = await cairn(["list", "--thread", "sealed", "--store", store]);
    expect(without.code).toBe(0);
    expect(without.stdout).toMatch(/^\(root\)\s+\S+\s+1\s+1\s+0\s+1\s+.*2 not verified \(encrypted\)$/m);
    const inspect = await cairn(["inspect", "--thread", "sealed", "--store", store]);
    expect(inspect.code).toBe(7);
    expect(inspect.stdout).toContain(`Checkpoint id:  ${cp.id} (latest of the namespace)`);
    expect(inspect.stdout).not.toContain("Zebra");
    expect(
      (await cairn(["visualize", "--thread", "sealed", "--output", "sealed.svg", "--store", store])).code,
    ).toBe(0);
    const svg = await readFile(join(dir(), "sealed.svg"), "utf8");
    expect(svg).toContain("◌ not verified");

    const withKey = await cairn(["list", "--thread", "sealed", "--store", store, "--key-file", keys]);
    expect(withKey.stdout).toMatch(/all valid$/m);
    const valid = await cairn(["validate", "--thread", "sealed", "--store", store, "--key-file", keys]);
    expect(valid.code).toBe(0);
  });
});

describe("cairn validate and analyze on LangGraph threads", () => {
  it("validates every namespace of a thread; a fork is no problem", async () => {
    const t = await thread();
    const text = await cairn(["validate", "--thread", t.threadId, "--store", t.store]);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `Checked 10 checkpoints in 2 runs (namespaces of LangGraph thread "${t.threadId}"): all valid.`,
    );
    const report = json<{
      valid: boolean;
      problems: unknown[];
      history: unknown[];
      scope: { runIds: string[] };
    }>(await cairn(["validate", "--thread", t.threadId, "--store", t.store, "--json"]));
    expect(report).toMatchObject({ valid: true, problems: [], history: [] });
    expect(report.scope.runIds).toEqual([threadRunId(t.threadId), threadRunId(t.threadId, t.subNs)]);
    const one = await cairn(["validate", "--thread", t.threadId, "--namespace", t.subNs, "--store", t.store]);
    expect(one.stdout).toContain("Checked 3 checkpoints in 1 run");
    expect((await cairn(["validate", "--all", "--store", t.store])).code).toBe(0);
  });

  it("still finds real damage in a thread: a changed value fails validate (exit 4) and shows in the tree", async () => {
    const store = `sqlite:${join(dir(), "tampered.db")}`;
    const t = await thread(store);
    const db = new Database(join(dir(), "tampered.db"));
    // The fork's edited topic, changed at rest behind cairn's back.
    db.prepare("UPDATE cairn_outputs SET body = replace(body, 'refunds', 'refundz')").run();
    db.close();
    const result = await cairn(["validate", "--thread", t.threadId, "--store", store]);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain(`⚠ ${threadCheckpointId(threadRunId(t.threadId), t.root.d)}`);
    expect(result.stdout).toContain("output_hash_mismatch");
    const tree = await cairn(["list", "--thread", t.threadId, "--namespace", "", "--store", store]);
    expect(tree.code).toBe(0);
    expect(tree.stdout).toMatch(/^└─ ⚠ .*update step 1/m);
    expect(tree.stdout).toContain("1 invalid");
  });

  it("analyzes a thread as a tree: forks, branch tips and LangGraph's latest, nothing orphaned", async () => {
    const t = await thread();
    interface Analysis {
      pipelineId: string;
      orphaned: unknown[];
      corrupted: unknown[];
      history: unknown[];
      resumePoint: unknown;
      costs: unknown;
      checkpoints: { total: number; healthy: number };
      thread: {
        namespace: string;
        forks: { checkpointId: string; children: string[] }[];
        branches: { checkpointId: string; depth: number }[];
        latest: { checkpointId: string; source: string };
        latestWrites: number;
      };
      recommendations: string[];
    }
    const r = json<{ threadId: string; namespaces: Analysis[] }>(
      await cairn(["analyze", "--thread", t.threadId, "--store", t.store, "--json"]),
    );
    const [root, sub] = r.namespaces;
    expect(root).toMatchObject({ orphaned: [], corrupted: [], history: [], resumePoint: null });
    // Stage costs are a pipeline's: none for a thread.
    expect(root?.costs).toBeUndefined();
    expect(root?.checkpoints).toMatchObject({ total: 7, healthy: 7 });
    expect(root?.thread.forks).toEqual([
      expect.objectContaining({ checkpointId: t.root.b, children: [t.root.c, t.root.d] }),
    ]);
    expect(root?.thread.branches.map((b) => [b.checkpointId, b.depth])).toEqual([
      [t.root.c, 3],
      [t.root.d, 3],
    ]);
    expect(root?.thread.latest).toMatchObject({ checkpointId: t.root.d, source: "update" });
    expect(root?.thread.latestWrites).toBe(1);
    expect(root?.recommendations[0]).toBe("All 7 checkpoints verify and the tree has no gaps.");
    expect(sub?.thread).toMatchObject({ namespace: t.subNs, forks: [], latest: { checkpointId: t.sub.f } });

    const text = await cairn(["analyze", "--thread", t.threadId, "--namespace", "", "--store", t.store]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("Status:          LangGraph thread namespace (threads do not finish)");
    expect(text.stdout).toContain(
      "Tree:            4 checkpoints, 3 pending-writes records, 1 fork, 2 branches",
    );
    expect(text.stdout).toContain(
      `LangGraph resumes this namespace from its latest checkpoint ${t.root.d} (update, step 1)`,
    );
    expect(text.stdout).not.toContain("Resume point:");
    expect(text.stdout).not.toContain("Orphaned");
    // The recovery report agrees: LangGraph's latest, not a pipeline's resume point or command.
    const report = await cairn(["report", "--pipeline-id", threadRunId(t.threadId), "--store", t.store]);
    expect(report.code).toBe(0);
    expect(report.stdout).toContain(`LangGraph checkpoint: ${t.root.d} (update, step 1)`);
    expect(report.stdout).toContain("none: LangGraph resumes a thread");
    expect(report.stdout).not.toContain("cairn run");
  });
});

describe("cairn export and import of a LangGraph thread", () => {
  const pairs = [
    ["sqlite", "postgres"],
    ["file", "redis"],
  ].filter(([from, to]) => urls[from as string] && urls[to as string]) as [string, string][];

  it.each(pairs)(
    "moves a thread %s → %s; CairnSaver reads the same state on the target",
    async (from, to) => {
      const source = (urls[from] as () => string)();
      const target = (urls[to] as () => string)();
      const t = await thread(source);
      const folder = join(dir(), `export-${t.threadId}`);
      const out = await cairn(["export", "--thread", t.threadId, "--output", folder, "--store", source]);
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);
      expect(out.stdout).toContain(`Exported LangGraph thread "${t.threadId}": 2 namespace runs`);
      const files = (await readdir(folder)).sort();
      expect(files).toEqual(
        [`${threadRunId(t.threadId)}.json`, `${threadRunId(t.threadId, t.subNs)}.json`].sort(),
      );

      const imported = await cairn(["import", "--input", folder, "--store", target]);
      expect(imported.stderr).toBe("");
      expect(imported.code).toBe(0);
      expect(imported.stdout).toContain(`Imported run ${threadRunId(t.threadId)}: 7 checkpoints`);
      expect(imported.stdout).toContain(`Imported run ${threadRunId(t.threadId, t.subNs)}: 3 checkpoints`);
      const again = await cairn(["import", "--input", folder, "--store", target]);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toContain("pass --overwrite");

      const [a, b] = [new CairnSaver({ store: source }), new CairnSaver({ store: target })];
      try {
        const configs = [
          { configurable: { thread_id: t.threadId, checkpoint_ns: "" } },
          { configurable: { thread_id: t.threadId, checkpoint_ns: "", checkpoint_id: t.root.c } },
          { configurable: { thread_id: t.threadId, checkpoint_ns: t.subNs } },
        ];
        for (const config of configs) {
          const [x, y] = [await a.getTuple(config), await b.getTuple(config)];
          expect(y).toBeDefined();
          expect(y?.checkpoint).toEqual(x?.checkpoint);
          expect(y?.metadata).toEqual(x?.metadata);
          expect(y?.parentConfig).toEqual(x?.parentConfig);
          expect(y?.pendingWrites).toEqual(x?.pendingWrites);
        }
        const ids = async (saver: CairnSaver) => {
          const seen: string[] = [];
          for await (const tuple of saver.list(configs[0] as (typeof configs)[0]))
            seen.push(tuple.checkpoint.id);
          return seen;
        };
        expect(await ids(b)).toEqual(await ids(a));
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      const valid = await cairn(["validate", "--thread", t.threadId, "--store", target]);
      expect(valid.code).toBe(0);
      const listed = json<{ namespaces: { forks: string[] }[] }>(
        await cairn(["list", "--thread", t.threadId, "--store", target, "--json"]),
      );
      expect(listed.namespaces[0]?.forks).toHaveLength(1);
    },
  );
});

describe("a real StateGraph with a subgraph, an interrupt and a fork", () => {
  it("lists, validates, analyzes and draws its thread", async () => {
    const store = sqlite();
    const { forkedFrom } = await runRealGraph(store, "real-graph");
    const view = json<{
      namespaces: { namespace: string; forks: string[]; checkpoints: { lgId: string }[] }[];
    }>(await cairn(["list", "--thread", "real-graph", "--store", store, "--json"]));
    const [root, sub] = view.namespaces;
    expect(view.namespaces).toHaveLength(2);
    expect(root?.namespace).toBe("");
    expect(sub?.namespace).toMatch(/^child:[0-9a-f-]{36}$/);
    expect(root?.forks).toEqual([threadCheckpointId(threadRunId("real-graph"), forkedFrom)]);
    expect((await cairn(["validate", "--thread", "real-graph", "--store", store])).code).toBe(0);
    const analysis = json<{ namespaces: { thread: { forks: unknown[]; branches: unknown[] } }[] }>(
      await cairn(["analyze", "--thread", "real-graph", "--store", store, "--json"]),
    );
    expect(analysis.namespaces[0]?.thread.forks).toHaveLength(1);
    expect(analysis.namespaces[0]?.thread.branches).toHaveLength(2);
    const drawn = await cairn([
      "visualize",
      "--thread",
      "real-graph",
      "--output",
      "real.svg",
      "--store",
      store,
    ]);
    expect(drawn.code).toBe(0);
    const svg = await readFile(join(dir(), "real.svg"), "utf8");
    // The subgraph hangs off the root checkpoint whose task ran it.
    expect(svg.split('class="edge subgraph"').length - 1).toBe(1);
    expect(svg).toContain("__interrupt__");
  });
});

describe("cairn visualize --thread", () => {
  it("draws the checkpoint tree: a cluster per namespace, the fork, writes leaves, the subgraph link", async () => {
    const t = await thread();
    const draw = async (file: string, ...extra: string[]) => {
      const result = await cairn([
        "visualize",
        "--thread",
        t.threadId,
        "--output",
        file,
        "--store",
        t.store,
        ...extra,
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      return result;
    };
    const said = await draw("tree.svg");
    expect(said.stdout).toContain("(svg: 2 namespaces, 6 checkpoints, 4 writes records, 1 fork)");
    const svg = await readFile(join(dir(), "tree.svg"), "utf8");
    const countOf = (s: string) => svg.split(s).length - 1;
    expect(countOf('<g class="namespace">')).toBe(2);
    expect(countOf('class="node checkpoint')).toBe(6);
    expect(countOf('class="node writes')).toBe(4);
    expect(countOf('class="edge parent"')).toBe(4);
    expect(countOf('class="edge subgraph"')).toBe(1);
    expect(svg).toContain(`namespace child:${SUB_TASK}`);
    expect(svg).toMatch(/class="node checkpoint source-update latest valid">.*★ latest/);

    await draw("tree.mmd");
    const mmd = await readFile(join(dir(), "tree.mmd"), "utf8");
    expect(mmd).toMatch(/subgraph ns0 \["namespace \(root graph\)"\]/);
    expect(mmd).toContain("subgraph ns1");
    expect(mmd).toMatch(/n3\("…[0-9a-f-]+<br\/>loop · step 0<br\/>fork"\)/);
    expect(mmd).toContain("n3 -.-> n8");

    await draw("tree.dot");
    const dot = await readFile(join(dir(), "tree.dot"), "utf8");
    expect(dot).toContain("subgraph cluster_0 {");
    expect(dot).toContain("subgraph cluster_1 {");

    await draw("tree.png");
    const png = PNG.sync.read(await readFile(join(dir(), "tree.png")));
    expect(png.width).toBeGreaterThan(800);
    const has = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
      for (let i = 0; i < png.data.length; i += 4)
        if (png.data[i] === r && png.data[i + 1] === g && png.data[i + 2] === b) return true;
      return false;
    };
    expect(has("#2e7d32")).toBe(true); // loop
    expect(has("#f9a825")).toBe(true); // update

    const one = await draw("root.svg", "--namespace", "");
    expect(one.stdout).toContain("(svg: 1 namespace, 4 checkpoints, 3 writes records, 1 fork)");
    const stages = await cairn([
      "visualize",
      "--thread",
      t.threadId,
      "--output",
      "s.svg",
      "--graph",
      "stages",
      "--store",
      t.store,
    ]);
    expect(stages.code).toBe(2);
  });

  it("documents --thread in every command's help", async () => {
    for (const command of ["list", "inspect", "validate", "analyze", "export", "visualize"]) {
      const help = await cairn([command, "--help"]);
      expect(help.stdout, command).toContain("--thread <thread_id>");
    }
    expect((await cairn(["import", "--help"])).stdout).toContain("--input <files...>");
  });
});
