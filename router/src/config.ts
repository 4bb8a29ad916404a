// Router settings, read once from the environment. Every error names the variable and the fix.
import {
  ENVIRONMENTS,
  type Environment,
  isEnvironment,
  readCaFile,
  registryPgConfig,
} from "@vllm-fleet/registry";
import { ROUTER_ENV as ENV, ROUTER_METRICS_PORT, ROUTER_PORT } from "./contract";
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
  const databaseUrl = env[ENV.databaseUrl] ?? "";
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(
      `${ENV.databaseUrl} must be set to the registry's postgresql://user:password@host:port/database URL`,
    );
  }
  let registryCa: string | undefined;
  const caFile = env[ENV.registryCa];
  if (caFile) {
    try {
      registryCa = readCaFile(caFile, ENV.registryCa);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length === 0) {
    try {
      registryPgConfig(databaseUrl, registryCa);
    } catch (e) {
      problems.push(`${ENV.databaseUrl}: ${(e as Error).message}`);
    }
  }
  const redisUrl = env[ENV.redisUrl] || undefined;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push(
      `${ENV.redisUrl} must start with redis:// or rediss:// (or be unset to run without Redis)`,
    );
  }
  const environmentName = env[ENV.environment] ?? "";
  const environment = isEnvironment(environmentName) ? environmentName : undefined;
  if (!environment) {
    problems.push(
      `${ENV.environment} must be one of ${ENVIRONMENTS.join(", ")} (got '${environmentName}')`,
    );
  }
  const upstreamKeepAliveMs = int(ENV.upstreamKeepAliveMs, 4000, 100, 4900);
  const registryPingIntervalMs = int(
    ENV.registryPingIntervalMs,
    LISTEN_PING_INTERVAL_MS,
    10,
    60000,
  );
  const registryListenTimeoutMs = int(ENV.registryListenTimeoutMs, LISTEN_TIMEOUT_MS, 50, 600000);
  if (registryPingIntervalMs >= registryListenTimeoutMs) {
    problems.push(
      `${ENV.registryPingIntervalMs} (${registryPingIntervalMs}) must be below ${ENV.registryListenTimeoutMs} (${registryListenTimeoutMs}), or every ping times out; lower the interval or raise the timeout`,
    );
  }
  const port = int(ENV.port, ROUTER_PORT, 0, 65535);
  const metricsPort = int(ENV.metricsPort, ROUTER_METRICS_PORT, 0, 65535);
  if (metricsPort !== 0 && metricsPort === port)
    problems.push(
      `${ENV.metricsPort} must differ from ${ENV.port} (both ${port}): metrics are served apart from the API`,
    );
  const config: Omit<RouterConfig, "environment"> = {
    port,
    metricsPort,
    metricsRegistryIntervalMs: int(ENV.metricsRegistryIntervalMs, 15000, 1000, 3600000),
    host: env[ENV.host] || "0.0.0.0",
    databaseUrl,
    registryCa,
    redisUrl,
    apiKeysFile: env[ENV.apiKeysFile] || undefined,
    maxBodyBytes: int(ENV.maxBodyBytes, 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    bodyTimeoutMs: int(ENV.bodyTimeoutMs, 30000, 100, 600000),
    maxInflightBodyBytes: int(
      ENV.maxInflightBodyBytes,
      64 * 1024 * 1024,
      1024,
      4 * 1024 * 1024 * 1024,
    ),
    upstreamConnectTimeoutMs: int(ENV.upstreamConnectTimeoutMs, 2000, 10, 60000),
    upstreamFirstByteTimeoutMs: int(ENV.upstreamFirstByteTimeoutMs, 300000, 10, 3600000),
    upstreamIdleTimeoutMs: int(ENV.upstreamIdleTimeoutMs, 300000, 10, 3600000),
    upstreamKeepAliveMs,
    shutdownDelayMs: int(ENV.shutdownDelayMs, 3000, 0, 600000),
    drainTimeoutMs: int(ENV.drainTimeoutMs, 20000, 0, 3600000),
    registryMemoryTtlMs: int(ENV.registryMemoryTtlMs, 60000, 0, 3600000),
    registryPingIntervalMs,
    registryListenTimeoutMs,
    logLevel: env[ENV.logLevel] || "info",
    routing: readRoutingConfig(env, int, problems),
  };
  if (config.maxInflightBodyBytes < config.maxBodyBytes)
    problems.push(
      `${ENV.maxInflightBodyBytes} (${config.maxInflightBodyBytes}) must be at least ${ENV.maxBodyBytes} (${config.maxBodyBytes}), or no body of the largest size could be accepted`,
    );
  if (problems.length || !environment) throw new RouterConfigError(problems);
  return { ...config, environment };
}
