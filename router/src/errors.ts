// Errors in OpenAI's shape, so the official clients raise the right exception types.
import type { ServerResponse } from "node:http";

/** An error the router answers with: HTTP status plus OpenAI's `{error:{message,type,code}}`. */
export class RouterError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type: string = errorType(status),
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "RouterError";
  }
}

function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status < 500) return "invalid_request_error";
  return "server_error";
}

/** The JSON body of an OpenAI error. */
export function errorBody(err: RouterError): string {
  return JSON.stringify({
    error: { message: err.message, type: err.type, param: null, code: err.code },
  });
}

/** Writes `err` as the whole response (only valid before any byte was sent). */
export function sendError(
  res: ServerResponse,
  err: RouterError,
  extraHeaders: Record<string, string> = {},
): void {
  const body = errorBody(err);
  res.writeHead(err.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...err.headers,
    ...extraHeaders,
  });
  res.end(body);
}
