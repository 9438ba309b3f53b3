/** `cairn migrate`: sets up or upgrades the store's schema, and says what it did. */
import type { Command } from "commander";
import { type MigrateReport, migrateStore } from "../../manager/migrate.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

const versions = (list: readonly number[]) => (list.length > 0 ? list.join(", ") : "none");

function render(report: MigrateReport): string {
  const lines = [`Store: ${report.location}`];
  const m = report.migrations;
  if (!m) {
    lines.push(`The ${report.strategy} store has no schema to migrate; it is ready.`);
    return lines.join("\n");
  }
  lines.push(
    `Applied now:      ${versions(m.appliedNow)}`,
    `Already present:  ${versions(m.alreadyPresent)}`,
    `Schema version:   ${m.current} (latest ${m.latest})${m.current === m.latest ? ", up to date" : ""}`,
  );
  return lines.join("\n");
}

/** Registers `cairn migrate`. */
export function registerMigrate(program: Command): void {
  const command = program
    .command("migrate")
    .summary("Set up or upgrade the store's schema")
    .description(
      "Create the store's tables (or folders) and apply the schema migrations it lacks; " +
        "print which versions were applied now and which were already present",
    )
    .addHelpText(
      "after",
      examples(
        "cairn migrate --db-path ./cairn.db",
        "cairn migrate --strategy postgres --connection-string postgres://localhost/cairn --schema etl",
      ),
    );
  addStoreOptions(command).action(async (flags: StoreFlags) => {
    await withManager(flags, async (manager) => {
      const report = await migrateStore(manager);
      if (flags.json) printJson(report);
      else printText(render(report));
    });
  });
}
