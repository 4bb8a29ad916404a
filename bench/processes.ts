// The processes a benchmark run starts: simulators and routers, each its own Node process so
// the load generator does not share an event loop with what it measures.
import { ChildProcess, execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";

export const ROOT = path.resolve(__dirname, "..");
const TS_NODE = ["-r", "ts-node/register/transpile-only"];
/** The compiled router as its image runs it (the condition selects the registry's compiled entry). */
const ROUTER_NODE_ARGS = ["--conditions=vllm-compiled", path.join(ROOT, "router/dist/server.js")];
/** USER_HZ: the unit of /proc CPU times, 100 on every Linux architecture Node.js supports. */
const CLOCK_TICKS = 100;

export interface Child {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Starts `args` and waits until a stdout line matches `ready` (its first group is the URL). */
function startChild(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  what: string,
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
        child.stdout!.resume(); // keep draining logs so the child never blocks on a full pipe
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

export async function buildRouter(): Promise<void> {
  await promisify(execFile)(process.execPath, [
    require.resolve("typescript/bin/tsc"),
    "-b",
    path.join(ROOT, "router/tsconfig.json"),
  ]);
}

/** Starts a built router on `port` and waits until /readyz answers (its cache is loaded). */
export async function startRouterProcess(
  port: number,
  env: Record<string, string>,
): Promise<Child> {
  const child = spawn(process.execPath, ROUTER_NODE_ARGS, {
    // Metrics on a free port of their own: a run starts several routers on one host.
    env: {
      ...process.env,
      PORT: String(port),
      METRICS_PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`router exited with ${child.exitCode}`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL"); // never left running by a failed run
      throw new Error("router was not ready (/readyz) within 15 s");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    url,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once("exit", () => r());
        child.kill("SIGKILL");
      }),
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
