import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Builds `dist/` once before the tests, the console's page (dist/ui/web) included: the CLI,
 * package and browser tests run the built code the way a user gets it from npm, not the
 * TypeScript sources.
 */
export default function setup(): () => void {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  // The s3 tests start a private Ceph cluster (scripts/rgw.sh) and leave it for the next local
  // run; under CI nothing may outlive the run, so it is stopped (a no-op when none was started).
  const teardown = () => {
    if (process.env.CI) execFileSync("bash", [join(root, "scripts/rgw.sh"), "stop"], { stdio: "inherit" });
  };
  // For quick local runs of unit tests only; CI and `npm test` always build.
  if (process.env.CAIRN_SKIP_BUILD === "1") return teardown;
  execFileSync(
    process.execPath,
    [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: root,
      stdio: "inherit",
    },
  );
  // The console's page (dist/ui/web), as `npm run build` makes it: the browser tests serve it.
  const viteConfig = join(root, "src/ui/web/vite.config.ts");
  if (existsSync(viteConfig))
    execFileSync(
      process.execPath,
      [join(root, "node_modules/vite/bin/vite.js"), "build", "--config", viteConfig, "--logLevel", "warn"],
      { cwd: root, stdio: "inherit" },
    );
  return teardown;
}
