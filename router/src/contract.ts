// @vllm-fleet/router/contract: what the router promises the parts that deploy, start and watch
// it. The environment variables it reads, its ports, the key of the Secret its registry URL comes
// from, and its metric names, written once: the router reads and registers these, the manifests
// layer, the scripts and the benchmarks write and query them. Constants only, no imports, so the
// pure layers load it without the router's dependencies (router/package.json exports it).

/** The environment variables the router reads (router/src/config.ts), by the setting they set. */
export const ROUTER_ENV = {
  port: "PORT",
  metricsPort: "METRICS_PORT",
  host: "HOST",
  databaseUrl: "DATABASE_URL",
  registryCa: "REGISTRY_SSLROOTCERT",
  redisUrl: "REDIS_URL",
  environment: "ROUTER_ENVIRONMENT",
  apiKeysFile: "ROUTER_API_KEYS_FILE",
  logLevel: "LOG_LEVEL",
  metricsRegistryIntervalMs: "ROUTER_METRICS_REGISTRY_INTERVAL_MS",
  maxBodyBytes: "ROUTER_MAX_BODY_BYTES",
  bodyTimeoutMs: "ROUTER_BODY_TIMEOUT_MS",
  maxInflightBodyBytes: "ROUTER_MAX_INFLIGHT_BODY_BYTES",
  upstreamConnectTimeoutMs: "ROUTER_UPSTREAM_CONNECT_TIMEOUT_MS",
  upstreamFirstByteTimeoutMs: "ROUTER_UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
  upstreamIdleTimeoutMs: "ROUTER_UPSTREAM_IDLE_TIMEOUT_MS",
  upstreamKeepAliveMs: "ROUTER_UPSTREAM_KEEPALIVE_MS",
  shutdownDelayMs: "ROUTER_SHUTDOWN_DELAY_MS",
  drainTimeoutMs: "ROUTER_DRAIN_TIMEOUT_MS",
  registryMemoryTtlMs: "ROUTER_REGISTRY_MEMORY_TTL_MS",
  registryPingIntervalMs: "ROUTER_REGISTRY_PING_INTERVAL_MS",
  registryListenTimeoutMs: "ROUTER_REGISTRY_LISTEN_TIMEOUT_MS",
  routingMode: "ROUTER_ROUTING_MODE",
  discoveryStaticFile: "ROUTER_DISCOVERY_STATIC_FILE",
  discoveryDnsServers: "ROUTER_DISCOVERY_DNS_SERVERS",
  discoveryIntervalMs: "ROUTER_DISCOVERY_INTERVAL_MS",
  podMetricsIntervalMs: "ROUTER_POD_METRICS_INTERVAL_MS",
  podMetricsTimeoutMs: "ROUTER_POD_METRICS_TIMEOUT_MS",
  affinityLoadFactor: "ROUTER_AFFINITY_LOAD_FACTOR",
} as const;

/**
 * How the router picks where a model's request goes (`ROUTER_ROUTING_MODE`): `service` sends it
 * to the registry endpoint (the model's Service), `least-loaded` to its least loaded ready pod,
 * `scored` to a pod by load and prompt-prefix affinity.
 */
export const ROUTING_MODES = ["service", "least-loaded", "scored"] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];

/**
 * `ROUTER_AFFINITY_LOAD_FACTOR`: its default, and its range (above `min`, at most `max`). The
 * default is 2, not the 1.25 of proxies whose misses are cheap: a prefix-cache miss here
 * recomputes the whole shared prompt. With eight 7k-token system prompts on four replicas
 * (`npm run bench -- --routing`), 1.25 spilled over half the picks (p90 time to first token
 * 1.5 s, 85% of prompt tokens cached) and 2 about 5% (0.2 s, 95%); a hot prefix still gets at
 * most twice the mean.
 */
export const AFFINITY_LOAD_FACTOR = { default: 2, min: 1, max: 10 } as const;

/** The API port when `PORT` is unset, and the one the router's Deployment sets. */
export const ROUTER_PORT = 8080;
/** The metrics port when `METRICS_PORT` is unset, and the one the router's Deployment sets. */
export const ROUTER_METRICS_PORT = 9090;

/**
 * Key of the Secret holding the router's read-only registry URL: the Deployment maps it to
 * `DATABASE_URL`, whose name it carries.
 */
export const REGISTRY_URL_SECRET_KEY = ROUTER_ENV.databaseUrl;

/** The router's Prometheus metrics (router/src/metrics.ts registers them; alerts query them). */
export const ROUTER_METRICS = {
  requests: "router_requests_total",
  duration: "router_request_duration_seconds",
  timeToFirstByte: "router_time_to_first_byte_seconds",
  registryLookups: "router_registry_lookups_total",
  registryErrors: "router_registry_errors_total",
  upstreamErrors: "router_upstream_errors_total",
  inflight: "router_inflight_requests",
  degraded: "router_degraded",
  entryReady: "router_registry_entry_ready",
  listenAge: "router_registry_listen_age_seconds",
  listenReconnects: "router_registry_listen_reconnects_total",
  cacheRejected: "router_registry_cache_rejected_total",
  endpointPicks: "router_endpoint_picks_total",
  podInflight: "router_pod_inflight_requests",
  podMetricsAge: "router_pod_metrics_age_seconds",
} as const;
