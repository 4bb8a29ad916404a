// Router settings, read once from the environment. Every error names the variable and the fix.
import {
  ENVIRONMENTS,
  type Environment,
  isEnvironment,
  readCaFile,
  registryPgConfig,
} from "@vllm-fleet/registry";
import { LISTEN_PING_INTERVAL_MS, LISTEN_TIMEOUT_MS } from "./registryListener";
import { readRoutingConfig } from "./routing/config";
import type { RoutingConfig } from "./routing/routing";

/** Everything the router needs to run; built from process.env by `readRouterConfig`. */
export interface RouterConfig {
  /** Port the HTTP server listens on. */
  port: number;
  /** Port of the metrics server (Prometheus only; never the API port clients use). */
  metricsPort: number;
  /** `/metrics` reads the registry at most once per this interval, however often it is scraped. */
  metricsRegistryIntervalMs: number;
  /** Address the HTTP servers bind to. */
  host: string;
  /** Registry PostgreSQL URL (the router role needs SELECT only). */
  databaseUrl: string;
  /** CA certificate (PEM) the registry's TLS is verified against (from REGISTRY_SSLROOTCERT). */
  registryCa?: string;
  /** Registry cache; the router works without it. */
  redisUrl?: string;
  /** Deployment environment whose registry rows this router serves. */
  environment: Environment;
  /** File of API keys (plaintext or `sha256:<hex>` per line); no file means no authentication. */
  apiKeysFile?: string;
  /** Largest accepted request body. */
  maxBodyBytes: number;
  /** Time allowed to receive a request body (slow or stalled uploads get 408). */
  bodyTimeoutMs: number;
  /** Request body bytes all requests together may hold in memory (503 with Retry-After beyond). */
  maxInflightBodyBytes: number;
  /** Time allowed to open a connection to a model server. */
  upstreamConnectTimeoutMs: number;
  /** Time allowed until a model server sends response headers (non-streaming responses arrive whole). */
  upstreamFirstByteTimeoutMs: number;
  /** Longest silence allowed between two chunks of an upstream body (streams have no overall limit). */
  upstreamIdleTimeoutMs: number;
  /** Upstream keep-alive; must stay below vLLM's 5 s server keep-alive. */
  upstreamKeepAliveMs: number;
  /** After SIGTERM: keep serving (readiness failing) this long so endpoints stop sending traffic. */
  shutdownDelayMs: number;
  /** After the delay: wait this long for in-flight requests and streams before closing. */
  drainTimeoutMs: number;
  /** How long a looked-up entry is answered from memory while LISTEN delivers changes. */
  registryMemoryTtlMs: number;
  /** How often the LISTEN connection proves it delivers changes (a NOTIFY to itself). */
  registryPingIntervalMs: number;
  /** Silence after which the LISTEN connection is replaced and caches are bypassed meanwhile. */
  registryListenTimeoutMs: number;
  /** pino log level. */
  logLevel: string;
  /** How requests are spread over a model's pods (router/src/routing/). */
  routing: RoutingConfig;
}

export class RouterConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid router configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "RouterConfigError";
  }
}

/** Parses the router's environment variables; throws RouterConfigError listing every problem. */
export function readRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got '${raw}')`);
      return fallback;
    }
    return n;
  };
  const databaseUrl = env.DATABASE_URL ?? "";
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(
      "DATABASE_URL must be set to the registry's postgresql://user:password@host:port/database URL",
    );
  }
  let registryCa: string | undefined;
  if (env.REGISTRY_SSLROOTCERT) {
    try {
      registryCa = readCaFile(env.REGISTRY_SSLROOTCERT, "REGISTRY_SSLROOTCERT");
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length === 0) {
    try {
      registryPgConfig(databaseUrl, registryCa);
    } catch (e) {
      problems.push(`DATABASE_URL: ${(e as Error).message}`);
    }
  }
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push(
      "REDIS_URL must start with redis:// or rediss:// (or be unset to run without Redis)",
    );
  }
  const environmentName = env.ROUTER_ENVIRONMENT ?? "";
  const environment = isEnvironment(environmentName) ? environmentName : undefined;
  if (!environment) {
    problems.push(
      `ROUTER_ENVIRONMENT must be one of ${ENVIRONMENTS.join(", ")} (got '${environmentName}')`,
    );
  }
  const upstreamKeepAliveMs = int("ROUTER_UPSTREAM_KEEPALIVE_MS", 4000, 100, 4900);
  const registryPingIntervalMs = int(
    "ROUTER_REGISTRY_PING_INTERVAL_MS",
    LISTEN_PING_INTERVAL_MS,
    10,
    60000,
  );
  const registryListenTimeoutMs = int(
    "ROUTER_REGISTRY_LISTEN_TIMEOUT_MS",
    LISTEN_TIMEOUT_MS,
    50,
    600000,
  );
  if (registryPingIntervalMs >= registryListenTimeoutMs) {
    problems.push(
      `ROUTER_REGISTRY_PING_INTERVAL_MS (${registryPingIntervalMs}) must be below ROUTER_REGISTRY_LISTEN_TIMEOUT_MS (${registryListenTimeoutMs}), or every ping times out; lower the interval or raise the timeout`,
    );
  }
  const port = int("PORT", 8080, 0, 65535);
  const metricsPort = int("METRICS_PORT", 9090, 0, 65535);
  if (metricsPort !== 0 && metricsPort === port)
    problems.push(
      `METRICS_PORT must differ from PORT (both ${port}): metrics are served apart from the API`,
    );
  const config: Omit<RouterConfig, "environment"> = {
    port,
    metricsPort,
    metricsRegistryIntervalMs: int("ROUTER_METRICS_REGISTRY_INTERVAL_MS", 15000, 1000, 3600000),
    host: env.HOST || "0.0.0.0",
    databaseUrl,
    registryCa,
    redisUrl,
    apiKeysFile: env.ROUTER_API_KEYS_FILE || undefined,
    maxBodyBytes: int("ROUTER_MAX_BODY_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    bodyTimeoutMs: int("ROUTER_BODY_TIMEOUT_MS", 30000, 100, 600000),
    maxInflightBodyBytes: int(
      "ROUTER_MAX_INFLIGHT_BODY_BYTES",
      64 * 1024 * 1024,
      1024,
      4 * 1024 * 1024 * 1024,
    ),
    upstreamConnectTimeoutMs: int("ROUTER_UPSTREAM_CONNECT_TIMEOUT_MS", 2000, 10, 60000),
    upstreamFirstByteTimeoutMs: int("ROUTER_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", 300000, 10, 3600000),
    upstreamIdleTimeoutMs: int("ROUTER_UPSTREAM_IDLE_TIMEOUT_MS", 300000, 10, 3600000),
    upstreamKeepAliveMs,
    shutdownDelayMs: int("ROUTER_SHUTDOWN_DELAY_MS", 3000, 0, 600000),
    drainTimeoutMs: int("ROUTER_DRAIN_TIMEOUT_MS", 20000, 0, 3600000),
    registryMemoryTtlMs: int("ROUTER_REGISTRY_MEMORY_TTL_MS", 60000, 0, 3600000),
    registryPingIntervalMs,
    registryListenTimeoutMs,
    logLevel: env.LOG_LEVEL || "info",
    routing: readRoutingConfig(env, int, problems),
  };
  if (config.maxInflightBodyBytes < config.maxBodyBytes)
    problems.push(
      `ROUTER_MAX_INFLIGHT_BODY_BYTES (${config.maxInflightBodyBytes}) must be at least ROUTER_MAX_BODY_BYTES (${config.maxBodyBytes}), or no body of the largest size could be accepted`,
    );
  if (problems.length || !environment) throw new RouterConfigError(problems);
  return { ...config, environment };
}
