// The processes a benchmark run starts: simulators and routers, each its own Node process so
// the load generator does not share an event loop with what it measures.
import { ChildProcess, execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { ROUTER_ENV } from "@vllm-fleet/router/contract";
import { spawnRouter } from "../scripts/lib/routerProcess";
import { REQUEST_LOG_PREFIX, RESET_LINE } from "./replica";

export { buildRouter } from "../scripts/lib/routerProcess";

export const ROOT = path.resolve(__dirname, "..");
const TS_NODE = ["-r", "ts-node/register/transpile-only"];
/** USER_HZ: the unit of /proc CPU times, 100 on every Linux architecture Node.js supports. */
const CLOCK_TICKS = 100;

export interface Child {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `args` and waits until a stdout line matches `ready` (its first group is the URL);
 * `onLine` then gets each later stdout line.
 */
function startChild(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  what: string,
  onLine?: (line: string) => void,
): Promise<Child> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within 30 s:\n${output}`)),
      30000,
    );
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = ready.exec(output);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        // Keep draining logs so the child never blocks on a full pipe.
        if (onLine) readLines(child.stdout!, output.slice(m.index + m[0].length), onLine);
        else child.stdout!.resume();
        child.stderr!.resume();
        resolve({
          child,
          url: m[1],
          stop: () =>
            new Promise<void>((r) => {
              if (child.exitCode !== null) return r();
              child.once("exit", () => r());
              child.kill("SIGKILL");
            }),
        });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}:\n${output}`)));
  });
}

/** Calls `onLine` for each line of `stream`, starting with the `rest` already read. */
function readLines(stream: NodeJS.ReadableStream, rest: string, onLine: (line: string) => void) {
  let buf = rest.replace(/^\n/, "");
  const flush = () => {
    let i: number;
    while ((i = buf.indexOf("\n")) !== -1) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
  flush();
  stream.on("data", (d: Buffer) => {
    buf += d.toString();
    flush();
  });
}

export function startSimulatorProcess(
  model: string,
  port: number,
  ttftMs: number,
  tokensPerSecond: number,
): Promise<Child> {
  return startChild(
    [
      ...TS_NODE,
      "scripts/simulator.ts",
      "--model",
      model,
      "--port",
      String(port),
      "--ttft-ms",
      String(ttftMs),
      "--tokens-per-second",
      String(tokensPerSecond),
    ],
    {},
    /listening on (http:\/\/\S+)/,
    `simulator ${model}`,
  );
}

/** The bare proxy of bench/bareProxy.ts in front of `upstream`. */
export function startBareProxyProcess(port: number, upstream: string): Promise<Child> {
  return startChild(
    [...TS_NODE, "bench/bareProxy.ts", "--port", String(port), "--upstream", upstream],
    {},
    /listening on (http:\/\/\S+)/,
    "bare proxy",
  );
}

export interface Replica extends Child {
  /**
   * Replaces the simulator with a fresh one (cold cache, zero counters) on the same port;
   * `onServed` then gets the request ids.
   */
  reset(onServed: (requestId: string) => void): Promise<void>;
}

/** A routing-benchmark replica (bench/replica.ts); `onServed` gets each request's x-request-id. */
export async function startReplicaProcess(
  model: string,
  port: number,
  onServed: (requestId: string) => void,
): Promise<Replica> {
  const prefix = `${REQUEST_LOG_PREFIX} `;
  const hooks = { onServed, resetDone: () => undefined as void };
  const child = await startChild(
    [...TS_NODE, "bench/replica.ts", "--port", String(port), "--model", model],
    {},
    /listening on (http:\/\/\S+)/,
    `replica on ${port}`,
    (line) => {
      if (line.startsWith(prefix)) hooks.onServed(line.slice(prefix.length));
      else if (line === RESET_LINE) hooks.resetDone();
    },
  );
  return {
    ...child,
    reset: (served) =>
      new Promise<void>((resolve) => {
        hooks.onServed = served;
        hooks.resetDone = resolve;
        child.child.kill("SIGUSR2");
      }),
  };
}

/** The kube-proxy stand-in of bench/kubeProxy.ts in front of `backends` (`host:port`). */
export function startKubeProxyProcess(
  port: number,
  backends: string[],
  seed: number,
): Promise<Child> {
  return startChild(
    [
      ...TS_NODE,
      "bench/kubeProxy.ts",
      "--port",
      String(port),
      "--seed",
      String(seed),
      ...backends.flatMap((b) => ["--backend", b]),
    ],
    {},
    /listening on (http:\/\/\S+)/,
    "kube-proxy stand-in",
  );
}

export interface RouterChild extends Child {
  /** Base URL of the router's metrics port. */
  metricsUrl: string;
}

/** Starts the built router (buildRouter) on `port` and waits until it is ready (its cache is loaded). */
export async function startRouterProcess(
  port: number,
  env: Record<string, string>,
): Promise<RouterChild> {
  // The shell's environment too (e.g. REGISTRY_SSLROOTCERT for a DATABASE_URL of its own), but
  // metrics on a free port of their own (the default): a run starts several routers on one host.
  const router = await spawnRouter({
    env: { [ROUTER_ENV.port]: String(port), ...env },
    inheritEnv: true,
  });
  return {
    child: router.child,
    url: router.url,
    metricsUrl: router.metricsUrl,
    stop: () => router.stop("SIGKILL").then(() => undefined),
  };
}

/** Runs a command of the registry CLI (`npm run registry -- ...`) and resolves on success. */
export async function registryCli(args: string[], env: Record<string, string>): Promise<void> {
  await promisify(execFile)(process.execPath, [...TS_NODE, "scripts/registry.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
}

/** CPU time (user + system) a process has used so far, in microseconds (Linux /proc). */
export async function cpuUs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

/** Resident memory of a process in MB (Linux /proc). */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}
