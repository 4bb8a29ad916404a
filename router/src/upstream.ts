// Forwarding to model servers: one keep-alive pool per endpoint (keep-alive below vLLM's 5 s),
// fallbacks only before the first byte, streaming passthrough with backpressure, upstream
// abort when the client goes away, and an SSE error event when a stream breaks midway or ends
// without [DONE]. 1xx are skipped, invalid statuses and 5xx fall back, hop-by-hop fields stay
// on their connection, and the router's own response headers cannot be overridden.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Agent, Dispatcher, errors as undiciErrors } from "undici";
import type { RegistryEntry } from "@vllm-fleet/registry";
import { errors, sseErrorEvent } from "./errors";
import type { Logger } from "./logger";
import type { RouterMetrics } from "./metrics";
import type { Pod } from "./routing/pods";
import {
  MAX_POD_ATTEMPTS,
  type EndpointRouting,
  type Pick,
  type PickContext,
} from "./routing/routing";

export interface UpstreamOptions {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveMs: number;
  metrics: RouterMetrics;
  logger: Logger;
  /** Picks the address of each attempt: the model's Service, or one of its pods. */
  routing: EndpointRouting;
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

// Hop-by-hop fields are the connection's business, not the message's: RFC 9110 section 7.6.1
// (Connection and the fields it names; Proxy-Connection, Keep-Alive, TE, Transfer-Encoding,
// Upgrade), 11.7.1-2 (Proxy-Authenticate, Proxy-Authorization: for the next hop only). Trailer
// announces trailers the router does not forward. Requests to model servers are built from
// scratch (content type, accept, request id), so nothing of the client's reaches them.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Response headers the router sets itself; a model server cannot replace them. */
function routerOwned(name: string): boolean {
  return name === "x-request-id" || name.startsWith("x-vllm-router-");
}

/** A model server's response headers as the client may see them. */
export function clientHeaders(
  upstream: Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders {
  const named = new Set(
    [upstream.connection ?? []]
      .flat()
      .flatMap((v) => v.split(","))
      .map((v) => v.trim().toLowerCase()),
  );
  const out: OutgoingHttpHeaders = {};
  for (const k in upstream)
    if (!HOP_BY_HOP.has(k) && !named.has(k) && !routerOwned(k)) out[k] = upstream[k];
  return out;
}

/**
 * A failed model server's error body is read (so its connection can be reused) for at most
 * this long and this much, then the connection is dropped: a 5xx whose body never ends must
 * not hold the request, and fallbacks are waiting.
 */
const ERROR_BODY_DRAIN_MS = 1000;
const ERROR_BODY_MAX_BYTES = 64 * 1024;

/** An SSE stream is complete only when its last event is `data: [DONE]` (with the blank line that dispatches it). */
const SSE_DONE = /(?:^|[\r\n])data: ?\[DONE\](?:\r\n|\r|\n)(?:\r\n|\r|\n)$/;
const SSE_TAIL_BYTES = 32;

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

  /**
   * Proxies `f` to its model or a fallback; resolves when the response is finished or
   * abandoned. A pod that cannot be connected to is left out and the request goes to another
   * pod of the same model (up to MAX_POD_ATTEMPTS) before any fallback model.
   */
  async forward(f: ForwardRequest): Promise<void> {
    const failures: Failure[] = [];
    const ctx: PickContext = { json: f.json };
    let tried: Set<string> | undefined;
    for (let entry: RegistryEntry | undefined = f.primary; entry;) {
      const podsTried: Pod[] = [];
      for (let pick = this.o.routing.pick(entry, ctx); pick;) {
        if (f.res.destroyed) return;
        const outcome = await this.attempt(f, entry, pick);
        if (outcome === "done" || f.res.destroyed) return;
        failures.push(outcome);
        this.o.metrics.upstreamErrors.inc({ model: entry.modelName, reason: outcome.reason });
        this.o.logger.warn(
          {
            requestId: f.requestId,
            model: entry.modelName,
            endpoint: entry.endpoint,
            pod: pick.pod?.address,
            reason: outcome.reason,
          },
          "model server attempt failed",
        );
        if (!this.o.routing.failed(pick, outcome.reason)) break;
        if (podsTried.push(pick.pod!) >= MAX_POD_ATTEMPTS) break;
        pick = this.o.routing.pick(entry, ctx, podsTried);
      }
      tried ??= new Set([f.primary.modelName]);
      entry = await this.nextFallback(f, tried);
    }
    if (f.res.destroyed) return;
    const unavailable = failures.every((x) => x.reason === "timeout" || x.reason === "http_503");
    throw errors
      .upstream_unavailable(f.primary.modelName, failures)
      .with(unavailable ? { status: 503, headers: { "retry-after": "1" } } : {});
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
  private attempt(f: ForwardRequest, entry: RegistryEntry, pick: Pick): Promise<"done" | Failure> {
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
      let sseTail = Buffer.alloc(0);
      let failed: Failure | undefined;
      let errorBytes = 0;
      let drainTimer: NodeJS.Timeout | undefined;
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
      const pod = pick.pod;
      if (pod) pod.inflight++;
      const finish = (outcome: "done" | Failure) => {
        if (pod) pod.inflight--;
        clearTimeout(drainTimer);
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
        onResponseStart: (c, statusCode, headers) => {
          // undici calls this once per 1xx before the final response (its Dispatcher docs,
          // onHeaders). Towards the model server the router is a user agent, which MAY ignore
          // 1xx (RFC 9110 section 15.2); passing one on would commit the client before the
          // final status decides between this answer and a fallback.
          if (statusCode >= 100 && statusCode < 200) return;
          // RFC 9110 section 15: codes outside 100..599 are invalid, and a client SHOULD treat
          // them as 5xx. Nothing is sent yet, so the next candidate gets the request.
          if (statusCode < 100 || statusCode > 599) {
            failed = { model: entry.modelName, reason: "invalid_status" };
            c.abort(new Abandoned(`invalid status ${statusCode}`));
            return;
          }
          if (statusCode >= 500) {
            failed = { model: entry.modelName, reason: `http_${statusCode}` };
            drainTimer = setTimeout(
              () => c.abort(new Abandoned("error body too slow")),
              ERROR_BODY_DRAIN_MS,
            );
            return;
          }
          committed = true;
          pod?.markUp();
          f.onFirstByte();
          isSse = String(headers["content-type"] ?? "").startsWith("text/event-stream");
          res.writeHead(statusCode, {
            ...clientHeaders(headers),
            ...f.headers,
            "x-request-id": f.requestId,
            "x-vllm-router-model": entry.modelName,
          });
        },
        onResponseData: (c, chunk) => {
          if (failed) {
            errorBytes += chunk.length;
            if (errorBytes > ERROR_BODY_MAX_BYTES) c.abort(new Abandoned("error body too long"));
            return;
          }
          if (res.destroyed) return;
          if (isSse) sseTail = Buffer.concat([sseTail, chunk]).subarray(-SSE_TAIL_BYTES);
          if (!res.write(chunk) && !waitingForDrain) {
            waitingForDrain = true;
            c.pause();
            res.once("drain", onDrain);
          }
        },
        onResponseEnd: () => {
          if (failed) return finish(failed);
          // A stream that stops without [DONE] was cut short, however cleanly the connection ended.
          if (isSse && !SSE_DONE.test(sseTail.toString("latin1"))) {
            this.brokenMidway(f, entry, sseTail, "stream_incomplete");
          } else {
            res.end();
          }
          finish("done");
        },
        onResponseError: (_c, err) => {
          if (failed) return finish(failed);
          if (clientGone || res.destroyed) return finish("done");
          if (!committed) return finish({ model: entry.modelName, reason: classify(err) });
          this.brokenMidway(f, entry, isSse ? sseTail : undefined, classify(err));
          finish("done");
        },
      };
      this.agent.dispatch(
        {
          origin: `http://${pick.address}`,
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

  /**
   * The model server failed after the response began: the client must see a failure, not a
   * clean end. `sseTail` (the stream's last bytes) is set for event streams.
   */
  private brokenMidway(
    f: ForwardRequest,
    entry: RegistryEntry,
    sseTail: Buffer | undefined,
    reason: string,
  ): void {
    this.o.metrics.upstreamErrors.inc({ model: entry.modelName, reason: "stream_broken" });
    this.o.logger.warn(
      { requestId: f.requestId, model: entry.modelName, reason },
      "model server failed mid-response",
    );
    if (!sseTail) {
      f.res.destroy(); // a truncated JSON body must not look complete
      return;
    }
    // Close whatever event the model server left open, then an error event and no [DONE]:
    // OpenAI clients raise it. Blank lines between events dispatch nothing.
    const boundary = /(?:\r\n|\r|\n){2}$/.test(sseTail.toString("latin1")) ? "" : "\n\n";
    f.res.end(boundary + sseErrorEvent(errors.upstream_stream_broken(entry.modelName)));
  }
}

/** Abort reason when the client disconnected. */
class ClientGoneError extends Error {
  constructor() {
    super("client went away");
    this.name = "ClientGoneError";
  }
}

/** Abort reason when the router gives up on a response it already counts as failed. */
class Abandoned extends Error {
  constructor(why: string) {
    super(why);
    this.name = "Abandoned";
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
