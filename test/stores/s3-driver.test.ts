/**
 * The S3 client loads `@aws-sdk/client-s3` only when opened, and names the package when it is
 * missing: a real child process whose module resolver cannot find it, as for a user without it.
 * Also: invalid options are reported all at once, before the SDK is loaded.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { InvalidConfigError } from "../../src/core/errors.js";
import { createS3Objects } from "../../src/stores/s3/objects.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

it("names @aws-sdk/client-s3 when it is not installed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cairn-nodriver-s3-"));
  try {
    const pkg = "@aws-sdk/client-s3";
    const hooks = `export async function resolve(specifier, context, next) {
      if (specifier === ${JSON.stringify(pkg)}) {
        throw Object.assign(new Error("Cannot find package '${pkg}'"), { code: "ERR_MODULE_NOT_FOUND" });
      }
      return next(specifier, context);
    }`;
    const register = `import { register } from "node:module";
      register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    const module = new URL("../../src/stores/s3/objects.ts", import.meta.url).href;
    const script = `import { createS3Objects } from ${JSON.stringify(module)};
      createS3Objects({ bucket: "b", endpoint: "http://127.0.0.1:1" }).then(
        () => console.log("opened"),
        (e) => console.log(JSON.stringify({ code: e.code, message: e.message, packageName: e.packageName, cause: e.cause?.code })),
      );`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "--import",
        TSX,
        "--import",
        `data:text/javascript,${encodeURIComponent(register)}`,
        "--input-type=module",
        "--eval",
        script,
      ],
      { cwd: dir },
    );
    expect(JSON.parse(stdout)).toEqual({
      code: "CAIRN_MISSING_DRIVER",
      message: `The s3 store needs the "${pkg}" package: run \`npm install ${pkg}\``,
      packageName: pkg,
      cause: "ERR_MODULE_NOT_FOUND",
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("reports every invalid option at once", async () => {
  const error = await createS3Objects({
    bucket: "",
    endpoint: "not a url",
    requestTimeoutMs: 0,
    maxAttempts: 0,
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidConfigError);
  expect((error as InvalidConfigError).problems).toHaveLength(4);
});
