// The router as its own process, as production runs it: `node --conditions=vllm-compiled
// router/dist/server.js`, built once per test run from the current sources, configured by
// environment variables (scripts/lib/routerProcess.ts), with everything it printed kept for
// assertions.
import { Pool } from "pg";
import { migrate, upsertEntry, type EntryInput } from "@vllm-fleet/registry";
import {
  buildRouter,
  spawnRouter,
  RouterProcess as Spawned,
} from "../../scripts/lib/routerProcess";

export interface RouterProcess extends Spawned {
  /** Every stdout/stderr line so far (JSON log lines, or plain text). */
  output: string[];
  /** Parsed JSON log records so far. */
  logs(): Record<string, unknown>[];
}

/**
 * Starts the built router (compiled once per run) with `env` (DATABASE_URL,
 * ROUTER_ENVIRONMENT, ...) on a free port and, unless `waitReady` is false, waits until /readyz
 * answers 200.
 */
export async function startRouter(
  env: Record<string, string | undefined>,
  { waitReady = true } = {},
): Promise<RouterProcess> {
  await buildRouter();
  const output: string[] = [];
  const router = await spawnRouter({
    env: { PATH: process.env.PATH, ...env },
    waitReady,
    onLine: (line) => output.push(line),
  });
  return {
    ...router,
    output,
    logs: () =>
      output.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
}

/** Migrates a registry database and writes `entries` through the registry library. */
export async function seedRegistry(databaseUrl: string, entries: EntryInput[]): Promise<void> {
  const pool = new Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await migrate(pool);
    for (const e of entries) await upsertEntry(pool, e);
  } finally {
    await pool.end();
  }
}

/** Polls `probe` until it returns true (or throws after `timeoutMs`). */
export async function eventually(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
