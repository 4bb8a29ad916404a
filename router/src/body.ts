// Reads a request body into memory within three bounds: the per-request limit (413), a read
// deadline (408, so a client trickling its body cannot hold memory and a socket for long) and
// a byte budget shared by every request in flight (503 with Retry-After when it is spent).
import type { IncomingMessage, ServerResponse } from "node:http";
import { RouterError, errors } from "./errors";
import { MODEL_NAME_MAX } from "@vllm-fleet/registry";

/** Seconds a client should wait before retrying when the body budget is spent. */
export const BODY_BUDGET_RETRY_AFTER_SECONDS = 1;

/** Bytes of request bodies held in memory right now, across all requests, up to `limit`. */
export class ByteBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  get used(): number {
    return this.held;
  }

  /** Takes `n` bytes if they are left; false (and nothing taken) otherwise. */
  take(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held -= n;
  }
}

export interface BodyLimits {
  /** Largest accepted body (413 beyond). */
  maxBytes: number;
  /** Time allowed to receive the whole body (408 beyond). */
  timeoutMs: number;
  /** Shared by all requests; the body's bytes are held until the response closes. */
  budget: ByteBudget;
}

function budgetSpent(): RouterError {
  return errors
    .server_busy()
    .with({ headers: { "retry-after": String(BODY_BUDGET_RETRY_AFTER_SECONDS) } });
}

/**
 * RFC 9110 section 15.5.9: 408 means the server did not receive a complete request in the time
 * it was prepared to wait, and it SHOULD send "close" (the connection is unusable mid-body).
 */
function timedOut(ms: number): RouterError {
  return errors.request_timeout(ms).with({ headers: { connection: "close" } });
}

/**
 * Reads the body of `req`. Its bytes count against `limits.budget` from arrival until `res`
 * closes (the body is kept for fallbacks); on a refusal they are given back at once and the
 * rest of the body is discarded unread.
 */
export function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  limits: BodyLimits,
): Promise<Buffer> {
  const { maxBytes, timeoutMs, budget } = limits;
  const declared = Number(req.headers["content-length"]);
  const refused = declared > maxBytes ? errors.request_too_large(maxBytes) : undefined;
  const spent = declared > budget.limit - budget.used ? budgetSpent() : undefined;
  if (refused || spent) {
    req.resume(); // discard the body so the client, still sending, can read the answer
    return Promise.reject(refused ?? spent);
  }
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let held = 0;
    let settled = false;
    const release = () => {
      budget.give(held);
      held = 0;
    };
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off("data", onData);
      if (!err) return resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, held));
      release();
      chunks = [];
      req.resume(); // discard the rest so the client can read the answer
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      if (held + chunk.length > maxBytes) return finish(errors.request_too_large(maxBytes));
      if (!budget.take(chunk.length)) return finish(budgetSpent());
      held += chunk.length;
      chunks.push(chunk);
    };
    const timer = setTimeout(() => finish(timedOut(timeoutMs)), timeoutMs);
    req.on("data", onData);
    req.once("end", () => finish());
    req.once("error", finish);
    // The exchange is over (answered, or the client went away): the body's bytes go back.
    res.once("close", () => {
      finish(new Error("the client closed the connection"));
      release();
    });
  });
}

/** C0 and C1 control characters and DEL: never part of a model name, never echoed back. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Parses an OpenAI request body: a JSON object with a non-empty string `model`. */
export function parseRequest(body: Buffer): Record<string, unknown> & { model: string } {
  checkNesting(body);
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw errors.invalid_json((e as Error).message);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw errors.invalid_request();
  }
  const model = (json as { model?: unknown }).model;
  if (typeof model !== "string" || model === "") {
    throw errors.missing_model();
  }
  if (model.length > MODEL_NAME_MAX || CONTROL.test(model)) {
    throw errors.invalid_model(MODEL_NAME_MAX);
  }
  return json as Record<string, unknown> & { model: string };
}

/**
 * Deepest nesting of arrays and objects accepted: serde_json's default recursion limit
 * (https://github.com/serde-rs/json, `Error::RecursionLimitExceeded`, "more than 128 layers
 * deep"). OpenAI request bodies nest a few levels; a deeper one would overflow the stack of
 * the JSON.stringify that rewrites `model`.
 */
export const MAX_JSON_DEPTH = 128;

/** Rejects JSON nested deeper than MAX_JSON_DEPTH with a 400: a linear scan, strings skipped. */
function checkNesting(body: Buffer): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next byte is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) throw errors.json_too_deep(MAX_JSON_DEPTH);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}
