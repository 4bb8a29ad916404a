// Reads a request body into memory up to a limit; larger bodies are refused with 413.
import type { IncomingMessage } from "node:http";
import { RouterError } from "./errors";

function tooLarge(limit: number): RouterError {
  return new RouterError(
    413,
    "request_too_large",
    `Request body exceeds the router's limit of ${limit} bytes`,
  );
}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.resume(); // discard the rest so the client can read the 413
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      if (size <= limit) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.once("error", reject);
  });
}

/** Parses an OpenAI request body: a JSON object with a non-empty string `model`. */
export function parseRequest(body: Buffer): Record<string, unknown> & { model: string } {
  checkNesting(body);
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new RouterError(
      400,
      "invalid_json",
      `Request body is not valid JSON (${(e as Error).message}); send a JSON object such as {"model": "...", "messages": [...]}`,
    );
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new RouterError(400, "invalid_request", "Request body must be a JSON object");
  }
  const model = (json as { model?: unknown }).model;
  if (typeof model !== "string" || model === "") {
    throw new RouterError(
      400,
      "missing_model",
      'Request body must name the model: add "model": "<name>" (GET /v1/models lists them)',
    );
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
      if (++depth > MAX_JSON_DEPTH)
        throw new RouterError(
          400,
          "json_too_deep",
          `Request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; flatten it`,
        );
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}
