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
