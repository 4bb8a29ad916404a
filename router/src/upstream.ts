// Forwarding to model servers: one keep-alive pool per endpoint (keep-alive below vLLM's 5 s),
// fallbacks only before the first byte, streaming passthrough with backpressure, upstream
// abort when the client goes away, and an SSE error event when a stream breaks midway.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Agent, errors as undiciErrors } from "undici";
import type { RegistryEntry } from "./registry/types";
import { RouterError } from "./errors";
import type { Logger } from "./logger";
import type { RouterMetrics } from "./metrics";

export interface UpstreamOptions {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveMs: number;
  metrics: RouterMetrics;
  logger: Logger;
}

/** One proxied call: what to send and how to find the next candidate when a model server fails. */
export interface ForwardRequest {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  body: Buffer;
  /** Parsed body; `model` is rewritten to each candidate's served name. */
  json: Record<string, unknown>;
  primary: RegistryEntry;
  /** Resolves a fallback name to a ready entry, or undefined to skip it. */
  fallback(name: string): Promise<RegistryEntry | undefined>;
  /** Headers added to the response (request id, degraded marker). */
  headers: Record<string, string>;
  requestId: string;
  /** Called with the time the first upstream byte (the response head) arrived. */
  onFirstByte(): void;
}

// Hop-by-hop headers (RFC 9110 section 7.6.1) are the connection's business, not the message's.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

type Failure = { model: string; reason: string };

export class Upstream {
  private readonly agent: Agent;

  constructor(private readonly o: UpstreamOptions) {
    this.agent = new Agent({
      keepAliveTimeout: o.keepAliveMs,
      keepAliveMaxTimeout: o.keepAliveMs,
      connect: { timeout: o.connectTimeoutMs },
      headersTimeout: o.firstByteTimeoutMs,
      bodyTimeout: o.idleTimeoutMs,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Proxies `f` to its model or a fallback; resolves when the response is finished or abandoned. */
  async forward(f: ForwardRequest): Promise<void> {
    const failures: Failure[] = [];
    const tried = new Set<string>();
    const candidates = this.candidates(f, tried);
    for await (const entry of candidates) {
      if (f.res.destroyed) return;
      const outcome = await this.attempt(f, entry);
      if (outcome === "done" || f.res.destroyed) return;
      failures.push(outcome);
      this.o.metrics.upstreamErrors.inc({ model: entry.modelName, reason: outcome.reason });
      this.o.logger.warn(
        {
          requestId: f.requestId,
          model: entry.modelName,
          endpoint: entry.endpoint,
          reason: outcome.reason,
        },
        "model server attempt failed",
      );
    }
    if (f.res.destroyed) return;
    const unavailable = failures.every((x) => x.reason === "timeout" || x.reason === "http_503");
    throw new RouterError(
      unavailable ? 503 : 502,
      "upstream_unavailable",
      `No model server answered for '${f.primary.modelName}' (tried ${failures
        .map((x) => `${x.model}: ${x.reason}`)
        .join(", ")})`,
      "server_error",
      unavailable ? { "retry-after": "1" } : {},
    );
  }

  private async *candidates(f: ForwardRequest, tried: Set<string>): AsyncGenerator<RegistryEntry> {
    tried.add(f.primary.modelName);
    yield f.primary;
    for (const name of f.primary.fallbacks) {
      if (tried.has(name)) continue;
      tried.add(name);
      const entry = await f.fallback(name).catch(() => undefined);
      if (entry && entry.status === "ready") yield entry;
    }
  }

  /** One try against one model server: "done" once anything was sent to the client. */
  private async attempt(f: ForwardRequest, entry: RegistryEntry): Promise<"done" | Failure> {
    const body =
      f.json.model === entry.servedModelName
        ? f.body
        : Buffer.from(JSON.stringify({ ...f.json, model: entry.servedModelName }));
    const abort = new AbortController();
    const onClose = () => {
      if (!f.res.writableFinished) abort.abort();
    };
    f.res.once("close", onClose);
    let upstream;
    try {
      upstream = await this.agent.request({
        origin: `http://${entry.endpoint}`,
        path: f.path,
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: String(f.req.headers.accept ?? "*/*"),
          "x-request-id": f.requestId,
        },
        body,
        signal: abort.signal,
      });
    } catch (err) {
      f.res.off("close", onClose);
      return { model: entry.modelName, reason: classify(err) };
    }
    if (upstream.statusCode >= 500) {
      upstream.body.dump().catch(() => undefined);
      f.res.off("close", onClose);
      return { model: entry.modelName, reason: `http_${upstream.statusCode}` };
    }
    f.onFirstByte();
    const headers: OutgoingHttpHeaders = { ...f.headers, "x-vllm-router-model": entry.modelName };
    for (const [k, v] of Object.entries(upstream.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    }
    f.res.writeHead(upstream.statusCode, headers);
    const isSse = String(upstream.headers["content-type"] ?? "").startsWith("text/event-stream");
    await new Promise<void>((resolve) => {
      const source = upstream.body;
      source.pipe(f.res, { end: false });
      source.once("end", () => {
        f.res.end();
        resolve();
      });
      source.once("error", (err) => {
        source.unpipe(f.res);
        if (!f.res.destroyed && !abort.signal.aborted) {
          this.o.metrics.upstreamErrors.inc({ model: entry.modelName, reason: "stream_broken" });
          this.o.logger.warn(
            { requestId: f.requestId, model: entry.modelName, reason: classify(err) },
            "model server failed mid-response",
          );
          if (isSse) {
            // The client must see a failure, not a clean end: an error event and no [DONE].
            const event = {
              error: {
                message: `The model server for '${entry.modelName}' failed mid-stream; the response is incomplete`,
                type: "server_error",
                param: null,
                code: "upstream_stream_broken",
              },
            };
            f.res.end(`data: ${JSON.stringify(event)}\n\n`);
          } else {
            f.res.destroy(); // a truncated JSON body must not look complete
          }
        }
        resolve();
      });
    });
    f.res.off("close", onClose);
    return "done";
  }
}

function classify(err: unknown): string {
  if (err instanceof undiciErrors.ConnectTimeoutError) return "connect_timeout";
  if (err instanceof undiciErrors.HeadersTimeoutError) return "timeout";
  if (err instanceof undiciErrors.BodyTimeoutError) return "idle_timeout";
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ECONNREFUSED") return "connection_refused";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return "connection_reset";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "dns";
  if ((err as Error).name === "AbortError") return "client_gone";
  return code ? code.toLowerCase() : "error";
}
