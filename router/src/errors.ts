// The router's HTTP error contract: every error it answers with, in OpenAI's shape
// ({error:{message,type,param,code}}), so the official clients raise the right exception types.
// The README's error table lists the same codes (tests/readme.test.ts holds them in step).
import type { ServerResponse } from "node:http";

/** OpenAI's error types (the `type` the official clients map to exception classes). */
type ErrorType =
  "invalid_request_error" | "authentication_error" | "permission_error" | "server_error";

interface ErrorEntry {
  /**
   * HTTP status; a list when the circumstances choose one (the first is the default); null for
   * an event inside a stream that already began with the model server's status.
   */
  readonly status: number | readonly number[] | null;
  readonly type: ErrorType;
  /** The message, or a function of the details it names. */
  readonly message: string | ((...args: never[]) => string);
}

/** One attempt at a model server that failed, as the 502/503 message names it. */
export interface FailedAttempt {
  model: string;
  reason: string;
}

/** Every error code, in the order a request meets them. */
export const ERRORS = {
  /** No such route. */
  unknown_path: {
    status: 404,
    type: "invalid_request_error",
    message: (method: string | undefined, path: string) =>
      `Unknown path ${method} ${path}; the router serves POST /v1/chat/completions, /v1/completions, /v1/embeddings and GET /v1/models`,
  },
  /** A known route with the wrong method (sent with `Allow`). */
  method_not_allowed: {
    status: 405,
    type: "invalid_request_error",
    message: (method: string | undefined, path: string, allowed: string) =>
      `${method} ${path} is not supported; use ${allowed}`,
  },
  /** API keys are configured and the request has none of them. */
  invalid_api_key: {
    status: 401,
    type: "authentication_error",
    message: "Missing or invalid API key: send 'Authorization: Bearer <key>'",
  },
  /** The body is larger than the router accepts. */
  request_too_large: {
    status: 413,
    type: "invalid_request_error",
    message: (limit: number) => `Request body exceeds the router's limit of ${limit} bytes`,
  },
  /** The bodies in flight hold the router's whole byte budget. */
  server_busy: {
    status: 503,
    type: "server_error",
    message: "The router is receiving too many request bodies at once; retry shortly",
  },
  /** The body did not arrive in time. */
  request_timeout: {
    status: 408,
    type: "invalid_request_error",
    message: (ms: number) => `The request body did not arrive within ${ms} ms`,
  },
  /** The body nests arrays and objects too deeply. */
  json_too_deep: {
    status: 400,
    type: "invalid_request_error",
    message: (max: number) =>
      `Request body nests arrays and objects more than ${max} levels deep; flatten it`,
  },
  /** The body is not JSON. */
  invalid_json: {
    status: 400,
    type: "invalid_request_error",
    message: (detail: string) =>
      `Request body is not valid JSON (${detail}); send a JSON object such as {"model": "...", "messages": [...]}`,
  },
  /** The body is JSON but not an object. */
  invalid_request: {
    status: 400,
    type: "invalid_request_error",
    message: "Request body must be a JSON object",
  },
  /** The body has no string `model`. */
  missing_model: {
    status: 400,
    type: "invalid_request_error",
    message:
      'Request body must name the model as a string: add "model": "<name>" (GET /v1/models lists them)',
  },
  /** `model` cannot be a model name (too long, control characters). */
  invalid_model: {
    status: 400,
    type: "invalid_request_error",
    message: (max: number) =>
      `"model" cannot name a model: model names are at most ${max} characters of lowercase letters, digits, '-' and '.' (GET /v1/models lists them)`,
  },
  /** The database refused the router's query (a grant or table is missing). */
  registry_error: {
    status: 500,
    type: "server_error",
    message: "The model registry refused the router's query; the router's logs say why",
  },
  /** Too many distinct names are being looked up at once. */
  registry_busy: {
    status: 503,
    type: "server_error",
    message: "Too many model lookups are in progress; retry shortly",
  },
  /** The registry is unreachable and the model was never cached. */
  registry_unavailable: {
    status: 503,
    type: "server_error",
    message:
      "The model registry is unreachable and this router has no cached entry for the model; retry shortly",
  },
  /** The environment's registry has no such model. */
  model_not_found: {
    status: 404,
    type: "invalid_request_error",
    message: (name: string, environment: string) =>
      `The model '${name}' does not exist in the ${environment} registry; GET /v1/models lists the available models`,
  },
  /** The model is disabled (the message carries the reason). */
  model_disabled: {
    status: 403,
    type: "permission_error",
    message: (name: string, reason: string | null) =>
      `The model '${name}' is disabled: ${reason ?? "no reason given"}`,
  },
  /** No model server answered: 503 when every attempt timed out or answered 503, else 502. */
  upstream_unavailable: {
    status: [502, 503],
    type: "server_error",
    message: (model: string, failures: readonly FailedAttempt[]) =>
      `No model server answered for '${model}' (tried ${failures
        .map((x) => `${x.model}: ${x.reason}`)
        .join(", ")})`,
  },
  /** The model server failed after the response began (the SSE error event). */
  upstream_stream_broken: {
    status: null,
    type: "server_error",
    message: (model: string) =>
      `The model server for '${model}' failed mid-stream; the response is incomplete`,
  },
  /** Anything unforeseen (logged as `unhandled error`). */
  internal_error: {
    status: 500,
    type: "server_error",
    message: "The router failed to handle the request",
  },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERRORS;
type Args<C extends ErrorCode> = (typeof ERRORS)[C]["message"] extends (...args: infer A) => string
  ? A
  : [];
type Status<C extends ErrorCode> = (typeof ERRORS)[C]["status"] extends readonly (infer S extends
  number)[]
  ? S
  : never;

/** The statuses an entry may answer with. */
export function statusesOf(code: ErrorCode): readonly number[] {
  const status: ErrorEntry["status"] = ERRORS[code].status;
  return status === null ? [] : typeof status === "number" ? [status] : status;
}

/** An error the router answers with; build it with `errors.<code>(...)`. */
export class RouterError<C extends ErrorCode = ErrorCode> extends Error {
  readonly type: ErrorType;
  status: number | null;
  headers: Record<string, string> = {};

  constructor(
    readonly code: C,
    args: Args<C>,
  ) {
    const entry: ErrorEntry = ERRORS[code];
    super(typeof entry.message === "string" ? entry.message : entry.message(...(args as never[])));
    this.name = "RouterError";
    this.type = entry.type;
    this.status = statusesOf(code)[0] ?? null;
  }

  /** Sets the response's extra headers, and its status where the entry lists several. */
  with(extra: { status?: Status<C>; headers?: Record<string, string> }): this {
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.headers) this.headers = extra.headers;
    return this;
  }
}

/** One builder per code, taking the details its message names: `errors.model_not_found(name, env)`. */
export const errors = Object.fromEntries(
  (Object.keys(ERRORS) as ErrorCode[]).map((code) => [
    code,
    (...args: never) => new RouterError(code, args),
  ]),
) as { [C in ErrorCode]: (...args: Args<C>) => RouterError<C> };

/** The JSON body of an OpenAI error. */
export function errorBody(err: RouterError): string {
  return JSON.stringify({
    error: { message: err.message, type: err.type, param: null, code: err.code },
  });
}

/** The same body as a server-sent event, for a failure after a stream began. */
export function sseErrorEvent(err: RouterError): string {
  return `data: ${errorBody(err)}\n\n`;
}

/** Writes `err` as the whole response (only valid before any byte was sent). */
export function sendError(
  res: ServerResponse,
  err: RouterError,
  extraHeaders: Record<string, string> = {},
): void {
  const body = errorBody(err);
  // A stream's event thrown before its response began is the router's fault.
  res.writeHead(err.status ?? 500, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...err.headers,
    ...extraHeaders,
  });
  res.end(body);
}
