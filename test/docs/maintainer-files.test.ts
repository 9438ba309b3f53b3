/**
 * The files maintainers expect are there and stay true: the licence matches `package.json`, the
 * changelog has an entry for the package's version, the README links all four, every relative
 * link in them resolves, and every `src/`, `test/` and `bench/` path the docs name exists (so the
 * architecture notes cannot keep describing a file that moved).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const pkg = JSON.parse(read("package.json")) as { version: string; license: string };
const FILES = ["LICENSE", "CHANGELOG.md", "CONTRIBUTING.md", "docs/ARCHITECTURE.md"];
const DOCS = ["README.md", "CHANGELOG.md", "CONTRIBUTING.md", "docs/ARCHITECTURE.md"];

it("has the four files, each linked from the README", () => {
  const readme = read("README.md");
  for (const file of FILES) {
    expect(existsSync(join(ROOT, file)), file).toBe(true);
    expect(readme, `README.md links ${file}`).toContain(`](${file})`);
  }
});

it("licenses the code as package.json says: MIT, with the copyright line", () => {
  expect(pkg.license).toBe("MIT");
  const license = read("LICENSE");
  expect(license.startsWith("MIT License\n")).toBe(true);
  expect(license).toContain("Copyright (c) 2026 the cairn authors");
  expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS"');
});

describe("the changelog", () => {
  const changelog = read("CHANGELOG.md");
  const versions = [...changelog.matchAll(/^## \[(\d+\.\d+\.\d+)\] - (Unreleased|\d{4}-\d{2}-\d{2})$/gm)].map(
    (m) => m[1] as string,
  );
  const semver = (v: string) => v.split(".").map(Number);
  const newer = (a: string, b: string) => {
    const [x, y] = [semver(a), semver(b)];
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) > (y[i] ?? 0);
    return false;
  };

  it("follows Keep a Changelog, newest version first", () => {
    expect(changelog).toContain("[Keep a Changelog](https://keepachangelog.com/");
    // Every version heading is in the format; none is malformed and so missed.
    expect(changelog.match(/^## /gm)?.length).toBe(versions.length);
    expect(versions.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < versions.length; i++)
      expect(newer(versions[i - 1] as string, versions[i] as string), versions.join(" > ")).toBe(true);
  });

  it("has an entry for the package's version", () => {
    expect(versions).toContain(pkg.version);
  });

  it("calls out breaking changes of the newest version", () => {
    const newest = changelog.slice(changelog.indexOf(`## [${versions[0]}]`));
    const section = newest.slice(0, newest.indexOf("\n## [", 1));
    expect(section).toMatch(/^### Breaking$/m);
  });
});

describe.each(DOCS)("%s", (doc) => {
  const text = read(doc);

  it("names only source, test and bench paths that exist", () => {
    const paths = [...text.matchAll(/\b(?:src|test|bench)\/[A-Za-z0-9_./-]*[A-Za-z0-9_/]/g)].map((m) => m[0]);
    if (doc === "docs/ARCHITECTURE.md")
      expect(paths.filter((p) => p.startsWith("src/")).length).toBeGreaterThan(20);
    const missing = [...new Set(paths)].filter((p) => !existsSync(join(ROOT, p)));
    expect(missing).toEqual([]);
  });

  it("links only to files that exist", () => {
    const targets = [...text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)]
      .map((m) => m[1] as string)
      .filter((t) => !/^[a-z]+:/.test(t));
    const missing = targets.filter((t) => !existsSync(join(ROOT, dirname(doc), t)));
    expect(missing).toEqual([]);
  });
});

it("draws the architecture as a Mermaid diagram", () => {
  expect(read("docs/ARCHITECTURE.md")).toMatch(/^```mermaid\n(flowchart|graph) /m);
});
