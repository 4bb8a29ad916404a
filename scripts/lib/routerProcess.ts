// The router as a child process, for `npm run local` (from source), the tests and the benchmarks
// (built, as production runs it): spawn it, learn its ports from its "router listening" log line,
// and wait until /readyz answers 200 (its registry cache is loaded), as a readiness probe would.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { ROUTER_ENV } from "@vllm-fleet/router/contract";
import { withParentDeathSignal } from "./parentDeathSignal";

const ROOT = path.resolve(__dirname, "../..");
const ROUTER_TSCONFIG = path.join(ROOT, "router/tsconfig.json");
/**
 * The built router (`npm run build -w router`) as the image runs it: the vllm-compiled condition
 * selects the registry package's compiled entry (registry/package.json exports).
 */
const ROUTER_COMPILED = ["--conditions=vllm-compiled", path.join(ROOT, "router/dist/server.js")];
const ROUTER_SOURCE = path.join(ROOT, "router/src/server.ts");
/** Output lines kept for the message of a router that fails to start. */
const TAIL_LINES = 40;
const READY_POLL_MS = 50;

let built: Promise<void> | undefined;

/**
 * Compiles registry/ and router/ to their dist/ (`tsc -b`: the registry is a project reference),
 * once per process (what `npm run build -w router` does).
 */
export function buildRouter(): Promise<void> {
  built ??= promisify(execFile)(
    process.execPath,
    [require.resolve("typescript/bin/tsc"), "-b", ROUTER_TSCONFIG],
    { cwd: ROOT },
  ).then(() => undefined);
  return built;
}

export interface SpawnRouterOptions {
  /**
   * The router's environment (DATABASE_URL, ROUTER_ENVIRONMENT, ...) over the defaults PORT 0
   * (a free port), METRICS_PORT 0, HOST 127.0.0.1 and LOG_LEVEL info.
   */
  env: Record<string, string | undefined>;
  /** Also pass this process's environment, under the defaults (default: nothing inherited). */
  inheritEnv?: boolean;
  /** `dist` (default): router/dist, built by buildRouter; `source`: router/src through ts-node. */
  from?: "dist" | "source";
  /** Wait until /readyz answers 200 (default), or return once it listens. */
  waitReady?: boolean;
  /** Time to listen, and again to become ready (default 15 s). */
  timeoutMs?: number;
  /** Every line the router writes, stdout and stderr (its JSON log records, or plain text). */
  onLine?: (line: string) => void;
}

export interface RouterProcess {
  url: string;
  port: number;
  /** Base URL of the metrics port (`${metricsUrl}/metrics`). */
  metricsUrl: string;
  child: ChildProcess;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM), SIGKILL after `killAfterMs` if given; the exit code. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
}

/**
 * Starts the router and waits until it listens (and, unless `waitReady` is false, is ready).
 * It gets SIGTERM if this process dies, however (Linux); a router that fails to start is
 * killed, and the error ends with the last lines it wrote.
 */
export async function spawnRouter(opts: SpawnRouterOptions): Promise<RouterProcess> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  const source = opts.from === "source";
  const [file, args] = withParentDeathSignal(
    process.execPath,
    source ? ["-r", "ts-node/register/transpile-only", ROUTER_SOURCE] : ROUTER_COMPILED,
    "SIGTERM",
  );
  const child = spawn(file, args, {
    cwd: ROOT,
    env: {
      ...(opts.inheritEnv ? process.env : {}),
      [ROUTER_ENV.port]: "0",
      [ROUTER_ENV.metricsPort]: "0",
      [ROUTER_ENV.host]: "127.0.0.1",
      [ROUTER_ENV.logLevel]: "info",
      ...(source ? { TS_NODE_PROJECT: ROUTER_TSCONFIG } : {}),
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) =>
    // "close": after the exit and its last output, so a failure message has all of it.
    child.once("close", (code) => resolve(code)),
  );
  const stop = async (signal: NodeJS.Signals = "SIGTERM", killAfterMs?: number) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  const tail: string[] = [];
  let listening: (ports: { port: number; metricsPort: number }) => void = () => undefined;
  const listened = new Promise<{ port: number; metricsPort: number }>((r) => (listening = r));
  // Once started, lines are split only for onLine: under load (the benchmarks) the router
  // writes a record per request, and the process that started it has its own work.
  let reading = true;
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    opts.onLine?.(line);
    try {
      const rec = JSON.parse(line) as { msg?: string; port?: number; metricsPort?: number };
      if (rec.msg === "router listening" && rec.port)
        listening({ port: rec.port, metricsPort: rec.metricsPort ?? 0 });
    } catch {
      // not a log record (e.g. a configuration error on stderr)
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = "";
    stream.setEncoding("utf8");
    // Always read: a router blocked on a full pipe would stop serving.
    stream.on("data", (d: string) => {
      if (!reading) return;
      buf += d;
      let i: number;
      while ((i = buf.indexOf("\n")) !== -1) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    stream.on("end", () => reading && buf && onLine(buf));
  }

  const failed = (what: string) =>
    new Error(`router ${what}${tail.length ? `:\n${tail.join("\n")}` : ""}`);
  /** `step`, unless the router exits or the time runs out first. */
  const within = <T>(step: Promise<T>, what: "listening" | "ready"): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      step,
      exited.then((code) => Promise.reject(failed(`exited with ${code} before ${what}`))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(failed(`was not ${what} within ${timeoutMs / 1000} s`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  };

  try {
    const ports = await within(listened, "listening");
    const url = `http://127.0.0.1:${ports.port}`;
    if (opts.waitReady ?? true) await within(untilReady(url, exited), "ready");
    reading = opts.onLine !== undefined;
    return {
      url,
      port: ports.port,
      metricsUrl: `http://127.0.0.1:${ports.metricsPort}`,
      child,
      exited,
      stop,
    };
  } catch (e) {
    await stop("SIGKILL"); // a router that failed to start is never left running
    throw e;
  }
}

/** Polls /readyz until it answers 200, or until the router exits. */
async function untilReady(url: string, exited: Promise<unknown>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  while (!gone) {
    const status = await fetch(`${url}/readyz`).then(
      (r) => {
        void r.body?.cancel();
        return r.status;
      },
      () => 0,
    );
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}
