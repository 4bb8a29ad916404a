// npm run local: the whole data plane of the development stack on this machine, no cluster.
// PostgreSQL (embedded unless DATABASE_URL is set), Redis when REDIS_URL is set, per model
// several engine-model vLLM simulators (its pods) behind a Service stand-in, the registry rows
// registered as the Pulumi program's provider does, the router (a child process, from source)
// in the stack's routing mode with the pods listed in a static discovery file, then the
// verification through the router. Everything started here is stopped on exit, on Ctrl-C and
// on failure.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { InvalidArgumentError } from "commander";
import { ROUTING_ENV, RoutingMode, StackSpec, loadStackSpec } from "../components/spec";
import { modelRegistration, routingEnv } from "../components/manifests";
import {
  checkedRegistration,
  connectClient,
  migrate,
  ModelRegistration,
  redactUrl,
  registerModel,
  withRegistryClient,
} from "@vllm-fleet/registry";
import { ROUTER_ENV } from "@vllm-fleet/router/contract";
import { startSimulator, Simulator } from "./simulator/server";
import { startEmbeddedPostgres } from "./lib/embeddedPostgres";
import { freePort } from "./lib/freePort";
import {
  EXIT,
  main,
  runScript,
  scriptCommand,
  ScriptError,
  ScriptIo,
  stopSignals,
} from "./lib/cli";
import { formatTable } from "./lib/format";
import { spawnRouter } from "./lib/routerProcess";
import { ServiceProxy, startServiceProxy } from "./lib/serviceProxy";
import { CheckResult, formatResults, passed, verifyPlatform } from "./lib/verification";

/** Exit codes: the table every script shares (printed by --help). */
export { EXIT };

/** Who the local platform records as `managed_by` on the rows it writes. */
export const LOCAL_MANAGER = "local";
const ROUTER_START_TIMEOUT_MS = 30000;
const ROUTER_STOP_TIMEOUT_MS = 5000;
/** Simulated pods per model unless --replicas says otherwise: enough to see picks differ. */
export const LOCAL_REPLICAS = 2;

export interface LocalOptions {
  /** Stack whose models are simulated (development). */
  stack: string;
  /** Router port; 0 picks a free one. */
  port: number;
  /** Exit after the verification instead of serving until interrupted. */
  once: boolean;
  /** Simulated pods per model. */
  replicas: number;
}

/** One model as run here: its Service stand-in (the registry endpoint) and its pods. */
export interface LocalModel {
  model: string;
  /** The Service stand-in the registry row points at. */
  url: string;
  port: number;
  pods: { url: string; port: number }[];
}

/** What is running, for the summary and for tests. */
export interface LocalPlatform {
  routerUrl: string;
  routerPid: number;
  databaseUrl: string;
  /** Whether this run started its own PostgreSQL. */
  embeddedPostgres: boolean;
  redisUrl?: string;
  models: LocalModel[];
  /** The router's routing mode (the stack's router.routing.mode). */
  routingMode: RoutingMode;
  /** The router's static discovery file: each registry endpoint's pods. */
  podsFile: string;
  routerLog: string;
  results: CheckResult[];
}

/** Things to stop, newest first. Once run, anything added later is stopped at once. */
export class Teardown {
  private readonly steps: { what: string; stop: () => Promise<void> }[] = [];
  private closed = false;
  add(what: string, stop: () => Promise<void>): void {
    if (this.closed) void stop().catch(() => undefined);
    else this.steps.unshift({ what, stop });
  }
  async run(report: (line: string) => void): Promise<void> {
    this.closed = true;
    for (const s of this.steps.splice(0)) {
      await s
        .stop()
        .catch((e: Error) => report(`warning: stopping ${s.what} failed: ${e.message}`));
    }
  }
}

/** Runs one start-up step with progress lines; a failure names the step. */
async function step<T>(
  io: ScriptIo,
  label: string,
  fn: () => Promise<T>,
  detail: (v: T) => string = () => "",
): Promise<T> {
  const started = Date.now();
  io.err(`… ${label}`);
  try {
    const v = await fn();
    const d = detail(v);
    io.err(`✓ ${label}${d ? `: ${d}` : ""} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return v;
  } catch (e) {
    if (e instanceof ScriptError) throw e;
    throw new ScriptError(`${label} failed: ${(e as Error).message}`, EXIT.startFailed);
  }
}

async function startPostgres(teardown: Teardown) {
  const pg = await startEmbeddedPostgres(await freePort());
  // destroy() deletes the data directory: every run starts from an empty registry.
  teardown.add("embedded PostgreSQL", () => pg.destroy());
  await withRegistryClient(pg.url, (db) => db.query("CREATE DATABASE model_registry"));
  return { url: pg.url.replace(/\/postgres$/, "/model_registry"), port: pg.port, embedded: true };
}

/**
 * The registration ModelDeployment gives the registry provider, with the simulator as the
 * endpoint: registerModel writes it as the provider does in `pulumi up`.
 */
export function localRegistration(
  spec: StackSpec,
  model: StackSpec["models"][number],
  endpoint: string,
): ModelRegistration {
  return modelRegistration(spec, model, endpoint, LOCAL_MANAGER);
}

/** Starts the local platform and verifies it; everything started is registered with `teardown`. */
export async function startLocal(
  io: ScriptIo,
  opts: LocalOptions,
  teardown: Teardown,
): Promise<LocalPlatform> {
  const spec = await step(
    io,
    `reading stack ${opts.stack}`,
    async () => {
      try {
        return loadStackSpec(opts.stack);
      } catch (e) {
        throw new ScriptError((e as Error).message, EXIT.usage);
      }
    },
    (s) => `${s.models.length} model(s) in ${s.environment}`,
  );

  const pg = await step(
    io,
    io.env.DATABASE_URL
      ? "connecting to PostgreSQL (DATABASE_URL)"
      : "starting embedded PostgreSQL",
    async () => {
      if (!io.env.DATABASE_URL) return startPostgres(teardown);
      const db = await connectClient(io.env.DATABASE_URL);
      await db.end();
      return { url: io.env.DATABASE_URL, port: undefined, embedded: false };
    },
    (p) => redactUrl(p.url),
  );
  const redisUrl = io.env.REDIS_URL || undefined;
  io.err(
    redisUrl
      ? `✓ Redis: ${redactUrl(redisUrl)} (REDIS_URL)`
      : "✓ Redis: not used (set REDIS_URL to put the registry cache in front of PostgreSQL)",
  );

  await step(
    io,
    "applying registry migrations",
    () => withRegistryClient(pg.url, (db) => migrate(db)),
    (r) => `schema at version ${r.to}`,
  );

  // Per model: its pods, engine-model simulators (each with its own prefix cache and queue,
  // which is what the router's picks are about), and a Service stand-in in front of them.
  const models: { pods: Simulator[]; service: ServiceProxy }[] = [];
  await step(
    io,
    `starting ${opts.replicas} vLLM simulator(s) per model`,
    async () => {
      for (const m of spec.models) {
        const pods: Simulator[] = [];
        for (let i = 0; i < opts.replicas; i++) {
          const sim = await startSimulator({
            port: 0,
            model: m.name,
            servedModelName: m.servedModelName,
            engine: {},
          });
          teardown.add(`simulator ${m.name} #${i}`, () => sim.close());
          pods.push(sim);
        }
        const service = await startServiceProxy(pods);
        teardown.add(`Service stand-in ${m.name}`, () => service.close());
        models.push({ pods, service });
      }
    },
    () =>
      spec.models
        .map((m, i) => `${m.name} ${models[i].pods.map((p) => p.endpoint).join(" ")}`)
        .join(", "),
  );
  // What the cluster DNS answers for each model's headless Service: its pods, by endpoint.
  const podsFile = path.join(
    fs.mkdtempSync(path.join(os.tmpdir(), "vllm-fleet-local-pods-")),
    "pods.json",
  );
  teardown.add("discovery file", async () =>
    fs.rmSync(path.dirname(podsFile), { recursive: true, force: true }),
  );
  fs.writeFileSync(
    podsFile,
    JSON.stringify(
      Object.fromEntries(models.map((m) => [m.service.endpoint, m.pods.map((p) => p.endpoint)])),
    ),
  );

  await step(
    io,
    "registering the models (as the Pulumi program's registry provider does)",
    async () => {
      for (const [i, m] of spec.models.entries())
        await registerModel(
          { connectionString: pg.url, redisUrl },
          checkedRegistration(localRegistration(spec, m, models[i].service.endpoint)),
        );
    },
    () => spec.models.map((m) => `${m.name} ${m.enabled ? "ready" : "disabled"}`).join(", "),
  );

  const routerLog = path.join(os.tmpdir(), `vllm-fleet-local-router-${process.pid}.log`);
  const router = await step(
    io,
    "starting the router",
    async () => {
      const port = opts.port;
      if (port !== 0) await assertPortFree(port);
      const log = fs.createWriteStream(routerLog);
      teardown.add("router log", () => new Promise((r) => log.end(r)));
      // From source: a fresh clone has no router/dist.
      const r = await spawnRouter({
        from: "source",
        env: {
          PATH: io.env.PATH ?? "",
          HOME: io.env.HOME ?? os.tmpdir(),
          [ROUTER_ENV.databaseUrl]: pg.url,
          ...(redisUrl ? { [ROUTER_ENV.redisUrl]: redisUrl } : {}),
          [ROUTER_ENV.environment]: spec.environment,
          [ROUTER_ENV.port]: String(port),
          // Nothing balances traffic away from a local router: stop at once on Ctrl-C.
          [ROUTER_ENV.shutdownDelayMs]: "0",
          [ROUTER_ENV.drainTimeoutMs]: "2000",
          // The stack's routing, with the pods from the file instead of cluster DNS.
          ...Object.fromEntries(routingEnv(spec.router.routing).map((e) => [e.name, e.value])),
          [ROUTING_ENV.staticFile]: podsFile,
        },
        timeoutMs: ROUTER_START_TIMEOUT_MS,
        // A router started after an interrupt's teardown is stopped at once; its log is closed.
        onLine: (line) => log.writableEnded || log.write(`${line}\n`),
      }).catch((e: Error) => {
        throw new Error(`${e.message}\nrouter log: ${routerLog}`);
      });
      teardown.add("router", async () => {
        await r.stop("SIGTERM", ROUTER_STOP_TIMEOUT_MS);
      });
      return r;
    },
    (r) => r.url,
  );

  const results = await step(
    io,
    "verifying through the router",
    () =>
      verifyPlatform({
        environment: spec.environment,
        routerUrl: router.url,
        metricsUrl: router.metricsUrl,
        databaseUrl: pg.url,
        models: spec.models.map((m, i) => ({
          name: m.name,
          enabled: m.enabled,
          endpoint: models[i].service.endpoint,
        })),
      }),
    (r) => (passed(r) ? "all checks passed" : `${r.filter((c) => !c.ok).length} check(s) failed`),
  );
  return {
    routerUrl: router.url,
    routerPid: router.child.pid!,
    databaseUrl: pg.url,
    embeddedPostgres: pg.embedded,
    redisUrl,
    models: spec.models.map((m, i) => ({
      model: m.name,
      url: models[i].service.url,
      port: models[i].service.port,
      pods: models[i].pods.map((p) => ({ url: p.url, port: p.port })),
    })),
    routingMode: spec.router.routing.mode,
    podsFile,
    routerLog,
    results,
  };
}

function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", () =>
      reject(
        new ScriptError(
          `port ${port} is in use: stop what listens there, or pass --port <n> (--port 0 picks a free one)`,
          EXIT.usage,
        ),
      ),
    );
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve()));
  });
}

/** The summary: what runs where, and a request to paste. */
export function formatSummary(p: LocalPlatform): string {
  const firstReady = p.results.find((r) => r.check === "completion" && r.ok)?.target;
  const model = firstReady ?? p.models[0]?.model ?? "MODEL";
  const rows = [
    [
      "router",
      p.routerUrl,
      `pid ${p.routerPid}, mode ${p.routingMode} (pods from ${p.podsFile}), no API key (local), log ${p.routerLog}`,
    ],
    [
      "registry",
      redactUrl(p.databaseUrl),
      p.embeddedPostgres ? "embedded PostgreSQL, deleted on exit" : "DATABASE_URL",
    ],
    [
      "cache",
      p.redisUrl ? redactUrl(p.redisUrl) : "none",
      p.redisUrl ? "REDIS_URL" : "set REDIS_URL to use Redis",
    ],
    ...p.models.flatMap((m) => [
      [
        `model ${m.model}`,
        m.url,
        `Service stand-in: each connection to one of its ${m.pods.length} pods`,
      ],
      ...m.pods.map((pod, i) => [`pod ${m.model}-${i}`, pod.url, "vLLM simulator (engine model)"]),
    ]),
  ];
  const curl = [
    `curl -s ${p.routerUrl}/v1/chat/completions \\`,
    `  -H 'content-type: application/json' \\`,
    `  -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'`,
  ].join("\n");
  return `${formatTable(["COMPONENT", "ADDRESS", "NOTE"], rows)}\n\nTry it:\n\n${curl}`;
}

function parseReplicas(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16)
    throw new InvalidArgumentError("--replicas must be an integer between 1 and 16");
  return n;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError("--port must be an integer between 0 and 65535");
  return n;
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  const program = scriptCommand(io, {
    name: "npm run local --",
    description:
      "Run the development stack's data plane on this machine: PostgreSQL, vLLM simulators as each model's pods behind a Service stand-in, the registry, the router in the stack's routing mode; then verify it through the router.",
    help: `Environment: DATABASE_URL (use this PostgreSQL instead of an embedded one; development rows
are overwritten), REDIS_URL (put Redis in front of the registry).

Without --once it serves until Ctrl-C, SIGTERM,
SIGHUP (the terminal closing) or its parent process exiting, then stops everything it started;
on Linux the router and PostgreSQL also die with it if it is killed outright (SIGKILL).`,
  })
    .option("--once", "exit after the verification (exit code says whether it passed)")
    .option("--port <port>", "router port (0 picks a free one)", parsePort, 8080)
    .option(
      "--replicas <n>",
      "simulated pods per model, each with its own prefix cache and queue",
      parseReplicas,
      LOCAL_REPLICAS,
    )
    .option("--stack <name>", "stack whose models to simulate", "development");
  return runScript<LocalOptions>(io, program, args, async (opts) => {
    const started = Date.now();
    const signals = stopSignals();
    const teardown = new Teardown();
    try {
      const platform = await Promise.race([
        startLocal(io, opts, teardown),
        signals.received.then((s) => {
          throw new ScriptError(`interrupted by ${s} while starting`, EXIT.interrupted);
        }),
      ]);
      io.out(`\n${formatResults(platform.results)}\n`);
      io.out(formatSummary(platform));
      const ok = passed(platform.results);
      io.err(`\nready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (opts.once || !ok) {
        if (!ok) io.err(`verification failed; router log: ${platform.routerLog}`);
        return ok ? EXIT.ok : EXIT.unverified;
      }
      io.out("\nRunning. Press Ctrl-C to stop.");
      io.err(`stopping (${await signals.received})…`);
      return EXIT.ok;
    } finally {
      signals.dispose();
      await teardown.run(io.err);
    }
  });
}

if (require.main === module) main(run);
