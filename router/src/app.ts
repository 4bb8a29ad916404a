// The router's HTTP servers: the API (endpoints, authentication, model resolution) and, on a
// port of its own, Prometheus metrics; and the SIGTERM lifecycle (fail readiness, keep
// serving through the preStop window, drain, close).
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type Redis from "ioredis";
import type { Pool } from "pg";
import { ApiKeys } from "./apiKeys";
import { ByteBudget, parseRequest, readBody } from "./body";
import type { RouterConfig } from "./config";
import { ROUTER_ENV } from "./contract";
import { RouterError, errors, sendError } from "./errors";
import { createLogger, Logger } from "./logger";
import { atMostEvery, RouterMetrics } from "./metrics";
import {
  createPool,
  createRedis,
  redactUrl,
  ROUTER_POOL_MAX,
  type Environment,
  type RegistryEntry,
} from "@vllm-fleet/registry";
import { RegistryListener } from "./registryListener";
import { ModelResolver } from "./resolver";
import { EndpointRouting } from "./routing/routing";
import { Upstream } from "./upstream";

/** The only paths forwarded to model servers; the upstream comes from the registry. */
const FORWARDED = new Set(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]);

/** Header set on answers given from last-known-good entries while the registry is down. */
export const DEGRADED_HEADER = "x-vllm-router-degraded";

export class RouterApp {
  readonly metrics = new RouterMetrics();
  readonly logger: Logger;
  private readonly server: http.Server;
  /** Metrics list every model of the environment: only Prometheus reaches this port. */
  private readonly metricsServer: http.Server;
  private readonly pool: Pool;
  private readonly redis?: Redis;
  private readonly resolver: ModelResolver;
  private readonly listener: RegistryListener;
  private readonly upstream: Upstream;
  private readonly routing: EndpointRouting;
  private readonly apiKeys?: ApiKeys;
  private readonly env: Environment;
  /** Request body bytes held in memory by all requests together. */
  private readonly bodyBudget: ByteBudget;
  private draining = false;
  private inflight = 0;
  private idle?: () => void;

  constructor(private readonly config: RouterConfig) {
    this.logger = createLogger(config.logLevel);
    this.env = config.environment;
    this.apiKeys = config.apiKeysFile ? ApiKeys.fromFile(config.apiKeysFile) : undefined;
    this.bodyBudget = new ByteBudget(config.maxInflightBodyBytes);
    this.pool = createPool(
      config.databaseUrl,
      // Requests wait on these: fail fast and answer from last known good instead.
      {
        max: ROUTER_POOL_MAX,
        connectionTimeoutMillis: 1000,
        statement_timeout: 2000,
        query_timeout: 2500,
        ca: config.registryCa,
      },
      () => undefined,
    );
    this.redis = config.redisUrl
      ? createRedis(config.redisUrl, { commandTimeout: 200 })
      : undefined;
    this.resolver = new ModelResolver({
      pool: this.pool,
      redis: this.redis,
      environment: this.env,
      metrics: this.metrics,
      logger: this.logger,
      memoryTtlMs: config.registryMemoryTtlMs,
    });
    this.metrics.registryEntries = atMostEvery(
      config.metricsRegistryIntervalMs,
      async () => (await this.resolver.listAll()).entries,
    );
    this.metrics.inflightNow = () => this.inflight;
    this.listener = new RegistryListener({
      databaseUrl: config.databaseUrl,
      registryCa: config.registryCa,
      environment: this.env,
      logger: this.logger,
      metrics: this.metrics,
      pingIntervalMs: config.registryPingIntervalMs,
      timeoutMs: config.registryListenTimeoutMs,
      onChange: (model) => this.resolver.invalidate(model),
      onConnected: () => this.resolver.resync(),
      onLost: () => this.resolver.listenerLost(),
    });
    this.metrics.listenProofAt = () => this.listener.proofOfLifeAt;
    this.routing = new EndpointRouting(config.routing, this.metrics, this.logger);
    if (this.routing.mode !== "service") this.metrics.podStats = () => this.routing.podStats();
    this.upstream = new Upstream({
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      firstByteTimeoutMs: config.upstreamFirstByteTimeoutMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      keepAliveMs: config.upstreamKeepAliveMs,
      metrics: this.metrics,
      logger: this.logger,
      routing: this.routing,
    });
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.metricsServer = http.createServer((req, res) => void this.serveMetrics(req, res));
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<number> {
    this.listener.start();
    this.routing.start();
    const port = await listen(this.server, this.config.port, this.config.host);
    const metricsPort = await listen(this.metricsServer, this.config.metricsPort, this.config.host);
    this.logger.info(
      {
        port,
        metricsPort,
        environment: this.env,
        database: redactUrl(this.config.databaseUrl),
        redis: this.config.redisUrl ? redactUrl(this.config.redisUrl) : null,
        authentication: this.apiKeys ? "api-keys" : "none",
        routing: this.routing.mode,
        discovery:
          this.routing.mode === "service"
            ? undefined
            : this.config.routing.staticFile
              ? `static ${this.config.routing.staticFile}`
              : "dns",
      },
      "router listening",
    );
    if (!this.apiKeys)
      this.logger.warn(`${ROUTER_ENV.apiKeysFile} is not set: requests are not authenticated`);
    this.logger.flush(); // startup lines are what operators and probes wait for: no buffering
    return port;
  }

  /**
   * Graceful stop: readiness fails at once, requests keep being served for `shutdownDelayMs`
   * (endpoints take a moment to drop this pod), then new connections are refused and in-flight
   * requests and streams get up to `drainTimeoutMs` before the rest are cut.
   */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.info(
      { inflight: this.inflight, delayMs: this.config.shutdownDelayMs },
      "SIGTERM: draining",
    );
    await sleep(this.config.shutdownDelayMs);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const drained =
      this.inflight === 0
        ? Promise.resolve(true)
        : new Promise<boolean>((r) => (this.idle = () => r(true)));
    const finished = await Promise.race([
      drained,
      sleep(this.config.drainTimeoutMs).then(() => false),
    ]);
    if (!finished)
      this.logger.warn(
        { inflight: this.inflight },
        "drain deadline reached; closing open requests",
      );
    this.server.closeAllConnections();
    await closed;
    await new Promise<void>((resolve) => this.metricsServer.close(() => resolve()));
    this.resolver.close();
    await Promise.allSettled([
      this.listener.close(),
      this.pool.end(),
      this.upstream.close(),
      this.routing.close(),
    ]);
    this.redis?.disconnect();
    this.logger.info("router stopped");
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = pathOf(req);
    if (this.draining) res.setHeader("connection", "close");
    try {
      if (path === "/healthz") return this.sendJson(res, 200, { status: "ok" });
      if (path === "/readyz") return this.readyz(res);
      if (path === "/v1/models") {
        if (req.method !== "GET") throw methodNotAllowed(req.method, path, "GET");
        this.authenticate(req);
        return await this.listModels(res);
      }
      if (FORWARDED.has(path)) {
        if (req.method !== "POST") throw methodNotAllowed(req.method, path, "POST");
        return await this.proxy(req, res, path);
      }
      throw errors.unknown_path(req.method, path);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const e = err instanceof RouterError ? err : errors.internal_error();
    if (this.resolver.degraded) res.setHeader(DEGRADED_HEADER, "1");
    if (!(err instanceof RouterError))
      this.logger.error({ err: (err as Error).message, path: pathOf(req) }, "unhandled error");
    sendError(res, e);
  }

  private authenticate(req: http.IncomingMessage): void {
    if (this.apiKeys && !this.apiKeys.accepts(req.headers.authorization)) {
      throw errors.invalid_api_key();
    }
  }

  private async proxy(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
  ): Promise<void> {
    const started = process.hrtime.bigint();
    // A caller's id is kept for tracing across services, within reason.
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && given.length <= 128 ? given : randomUUID();
    let model = "";
    this.inflight++;
    res.once("close", () => {
      this.metrics.requests.inc({ model, status: String(res.statusCode), environment: this.env });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (model) this.metrics.duration.observe({ model, environment: this.env }, seconds);
      this.logger.info(
        {
          requestId,
          path,
          model: model || undefined,
          status: res.statusCode,
          ms: Math.round(seconds * 1000),
          completed: res.writableFinished,
        },
        "request",
      );
      if (--this.inflight === 0) this.idle?.();
    });
    res.setHeader("x-request-id", requestId);
    this.authenticate(req);
    const body = await readBody(req, res, {
      maxBytes: this.config.maxBodyBytes,
      timeoutMs: this.config.bodyTimeoutMs,
      budget: this.bodyBudget,
    });
    const json = parseRequest(body);
    const { entry, source } = await this.resolver.resolve(json.model);
    const primary = this.usable(json.model, entry);
    model = primary.modelName;
    const headers: Record<string, string> = {};
    if (source === "stale" || this.resolver.degraded) headers[DEGRADED_HEADER] = "1";
    await this.upstream.forward({
      req,
      res,
      path,
      body,
      json,
      primary,
      headers,
      requestId,
      fallback: async (name) => (await this.resolver.resolve(name)).entry,
      onFirstByte: () =>
        this.metrics.timeToFirstByte.observe(
          { model, environment: this.env },
          Number(process.hrtime.bigint() - started) / 1e9,
        ),
    });
  }

  /** The entry if it can serve; 404 for unknown names, 403 (with the reason) for disabled ones. */
  private usable(name: string, entry: RegistryEntry | undefined): RegistryEntry {
    if (!entry) {
      throw errors.model_not_found(name, this.env);
    }
    if (entry.status !== "ready") {
      throw errors.model_disabled(name, entry.disabledReason);
    }
    return entry;
  }

  private async listModels(res: http.ServerResponse): Promise<void> {
    const { entries, degraded } = await this.resolver.listReady();
    const data = entries.map((e) => ({
      id: e.modelName,
      object: "model",
      created: Math.floor(Date.parse(e.createdAt) / 1000),
      owned_by: "vllm-fleet",
    }));
    this.sendJson(res, 200, { object: "list", data }, degraded ? { [DEGRADED_HEADER]: "1" } : {});
  }

  private readyz(res: http.ServerResponse): void {
    // The environment lets `npm run verify` tell a router of another stack from the right one.
    const environment = this.env;
    if (this.draining) return this.sendJson(res, 503, { status: "draining", environment });
    if (!this.resolver.ready)
      return this.sendJson(res, 503, {
        status: "registry unreachable and cache empty",
        environment,
      });
    this.sendJson(res, 200, { status: "ready", degraded: this.resolver.degraded, environment });
  }

  /** The metrics port: GET /metrics and nothing else. */
  private async serveMetrics(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (pathOf(req) !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("metrics are at GET /metrics\n");
      return;
    }
    try {
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, { "content-type": this.metrics.registry.contentType });
      res.end(text);
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, "metrics failed");
      res.writeHead(500).end();
    }
  }

  private sendJson(
    res: http.ServerResponse,
    status: number,
    value: unknown,
    headers: Record<string, string> = {},
  ): void {
    const body = JSON.stringify(value);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }
}

function methodNotAllowed(method: string | undefined, path: string, allowed: string): RouterError {
  return errors.method_not_allowed(method, path, allowed).with({ headers: { allow: allowed } });
}

/** The request's path without its query string: queries may carry credentials, so they are never logged. */
function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** Listens on `port` (0: any free one) and resolves with the bound port. */
function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
