// The router as its own process, as production runs it: `node --conditions=vllm-compiled
// router/dist/server.js` (the image's CMD), built once per test run from the current sources,
// configured by environment variables.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { Pool } from "pg";
import { migrate, upsertEntry, type EntryInput } from "@vllm-fleet/registry";

const ROOT = path.resolve(__dirname, "../..");
export const ROUTER_ENTRY = path.join(ROOT, "router/dist/server.js");
/** Node's arguments for the compiled router: the condition selects the registry's compiled entry. */
export const ROUTER_NODE_ARGS = ["--conditions=vllm-compiled", ROUTER_ENTRY];

let built: Promise<void> | undefined;

/** Compiles registry/ and router/ to their dist/ once per run (what `npm run build -w router` does). */
export function buildRouter(): Promise<void> {
  built ??= promisify(execFile)(
    process.execPath,
    [require.resolve("typescript/bin/tsc"), "-b", path.join(ROOT, "router/tsconfig.json")],
    { cwd: ROOT },
  ).then(() => undefined);
  return built;
}

export interface RouterProcess {
  url: string;
  port: number;
  /** Base URL of the metrics port (`${metricsUrl}/metrics`). */
  metricsUrl: string;
  child: ChildProcess;
  /** Every stdout/stderr line so far (JSON log lines, or plain text). */
  output: string[];
  /** Parsed JSON log records so far. */
  logs(): Record<string, unknown>[];
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Starts a built router with `env` (DATABASE_URL, ROUTER_ENVIRONMENT, ...) on a free port and,
 * unless `waitReady` is false, waits until /readyz answers 200.
 */
export async function startRouter(
  env: Record<string, string | undefined>,
  { waitReady = true } = {},
): Promise<RouterProcess> {
  await buildRouter();
  const child = spawn(process.execPath, ROUTER_NODE_ARGS, {
    env: {
      PATH: process.env.PATH,
      PORT: "0",
      METRICS_PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let metricsPort = 0;
  const port = await new Promise<number>((resolve, reject) => {
    const onLine = (line: string) => {
      output.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; port?: number; metricsPort?: number };
        metricsPort = rec.metricsPort ?? metricsPort;
        if (rec.msg === "router listening" && rec.port) resolve(rec.port);
      } catch {
        // not a log record
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = "";
      stream.setEncoding("utf8");
      stream.on("data", (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf("\n")) !== -1) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    void exited.then((code) =>
      reject(new Error(`router exited with ${code} before listening:\n${output.join("\n")}`)),
    );
    setTimeout(
      () => reject(new Error(`router did not start within 15 s:\n${output.join("\n")}`)),
      15000,
    );
  });
  // Like Kubernetes, send traffic only once the router reports ready (its cache is loaded).
  if (waitReady) {
    await eventually(
      "the router to be ready",
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
      15000,
    );
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    child,
    output,
    exited,
    logs: () =>
      output.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
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
