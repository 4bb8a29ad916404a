// Forwarding to model servers: one keep-alive pool per endpoint (keep-alive below vLLM's 5 s),
// fallbacks only before the first byte, streaming passthrough with backpressure, upstream
// abort when the client goes away, and an SSE error event when a stream breaks midway.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Agent, Dispatcher, errors as undiciErrors } from "undici";
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
    let tried: Set<string> | undefined;
    for (let entry: RegistryEntry | undefined = f.primary; entry;) {
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
      tried ??= new Set([f.primary.modelName]);
      entry = await this.nextFallback(f, tried);
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

  /** The primary's next untried fallback that is ready, in the order the registry lists them. */
  private async nextFallback(
    f: ForwardRequest,
    tried: Set<string>,
  ): Promise<RegistryEntry | undefined> {
    for (const name of f.primary.fallbacks) {
      if (tried.has(name)) continue;
      tried.add(name);
      const entry = await f.fallback(name).catch(() => undefined);
      if (entry && entry.status === "ready") return entry;
    }
    return undefined;
  }

  /**
   * One try against one model server: "done" once anything was sent to the client. Uses
   * undici's dispatch API directly: response chunks go straight to the client socket, and
   * the upstream is paused while the client's buffer is full (backpressure).
   */
  private attempt(f: ForwardRequest, entry: RegistryEntry): Promise<"done" | Failure> {
    const body =
      f.json.model === entry.servedModelName
        ? f.body
        : Buffer.from(JSON.stringify({ ...f.json, model: entry.servedModelName }));
    const res = f.res;
    return new Promise((resolve) => {
      let controller: Dispatcher.DispatchController | undefined;
      let clientGone = false;
      let committed = false;
      let isSse = false;
      let failed: Failure | undefined;
      let waitingForDrain = false;
      const onClose = () => {
        if (res.writableFinished) return;
        clientGone = true;
        controller?.abort(new ClientGoneError());
      };
      const onDrain = () => {
        waitingForDrain = false;
        controller?.resume();
      };
      const finish = (outcome: "done" | Failure) => {
        res.off("close", onClose);
        res.off("drain", onDrain);
        resolve(outcome);
      };
      res.on("close", onClose);
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (c) => {
          controller = c;
          if (clientGone) c.abort(new ClientGoneError());
        },
        onResponseStart: (_c, statusCode, headers) => {
          if (statusCode >= 500) {
            // Nothing sent yet: read the error body to its end (keeping the connection) and fall back.
            failed = { model: entry.modelName, reason: `http_${statusCode}` };
            return;
          }
          committed = true;
          f.onFirstByte();
          const out: OutgoingHttpHeaders = { ...f.headers, "x-vllm-router-model": entry.modelName };
          for (const k in headers) if (!HOP_BY_HOP.has(k)) out[k] = headers[k];
          isSse = String(headers["content-type"] ?? "").startsWith("text/event-stream");
          res.writeHead(statusCode, out);
        },
        onResponseData: (c, chunk) => {
          if (failed || res.destroyed) return;
          if (!res.write(chunk) && !waitingForDrain) {
            waitingForDrain = true;
            c.pause();
            res.once("drain", onDrain);
          }
        },
        onResponseEnd: () => {
          if (failed) return finish(failed);
          res.end();
          finish("done");
        },
        onResponseError: (_c, err) => {
          if (clientGone || res.destroyed) return finish("done");
          if (!committed) return finish({ model: entry.modelName, reason: classify(err) });
          this.brokenMidway(f, entry, isSse, err);
          finish("done");
        },
      };
      this.agent.dispatch(
        {
          origin: `http://${entry.endpoint}`,
          path: f.path,
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: String(f.req.headers.accept ?? "*/*"),
            "x-request-id": f.requestId,
          },
          body,
        },
        handler,
      );
    });
  }

  /** The model server failed after the response began: the client must see a failure, not a clean end. */
  private brokenMidway(f: ForwardRequest, entry: RegistryEntry, isSse: boolean, err: Error): void {
    this.o.metrics.upstreamErrors.inc({ model: entry.modelName, reason: "stream_broken" });
    this.o.logger.warn(
      { requestId: f.requestId, model: entry.modelName, reason: classify(err) },
      "model server failed mid-response",
    );
    if (!isSse) {
      f.res.destroy(); // a truncated JSON body must not look complete
      return;
    }
    const event = {
      error: {
        message: `The model server for '${entry.modelName}' failed mid-stream; the response is incomplete`,
        type: "server_error",
        param: null,
        code: "upstream_stream_broken",
      },
    };
    // An error event and no [DONE]: OpenAI clients raise it.
    f.res.end(`data: ${JSON.stringify(event)}\n\n`);
  }
}

/** Abort reason when the client disconnected. */
class ClientGoneError extends Error {
  constructor() {
    super("client went away");
    this.name = "ClientGoneError";
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
  return code ? code.toLowerCase() : "error";
}
