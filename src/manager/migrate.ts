/** The store's schema migrations, as `cairn migrate` reports them. */
import type { MigrationStatus } from "../stores/types.js";
import type { CheckpointManager } from "./checkpoint-manager.js";

/** What {@link migrateStore} found and did. */
export interface MigrateReport {
  strategy: string;
  location: string;
  /** Null for stores without a schema (file, memory, redis). */
  migrations: (MigrationStatus & { alreadyPresent: number[] }) | null;
}

/** Sets up the manager's store, which applies the migrations it lacks, and says which those were. */
export async function migrateStore(manager: CheckpointManager): Promise<MigrateReport> {
  // Opening the store runs its setup; calling it again is a no-op that makes the intent plain.
  const store = await manager.getStore();
  await store.setup();
  const status = store.migrationStatus ? await store.migrationStatus() : undefined;
  return {
    strategy: store.strategy,
    location: store.location,
    migrations: status
      ? { ...status, alreadyPresent: status.applied.filter((v) => !status.appliedNow.includes(v)) }
      : null,
  };
}
