// Structured JSON logs. Request logs carry ids, models, statuses and timings, never bodies,
// prompts or keys; `redact` also scrubs credentials should a record carry them.
import pino from "pino";

export type Logger = pino.Logger;

/** Longest a log line waits in the buffer before it is written. */
export const LOG_FLUSH_INTERVAL_MS = 250;

export function createLogger(level: string): Logger {
  // Lines are written in blocks of at least 8 KiB, or every LOG_FLUSH_INTERVAL_MS: one
  // write(2) per request line cost about a tenth of the router's CPU under load.
  // `flush` runs before exit and after the startup lines.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 8192 });
  setInterval(() => destination.flush(), LOG_FLUSH_INTERVAL_MS).unref();
  return pino(
    {
      level,
      base: { service: "vllm-router" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Exact paths only: wildcard paths made every request line cost twice as much.
      redact: {
        paths: ["authorization", "apiKey", "password", "headers.authorization"],
        censor: "[redacted]",
      },
    },
    destination,
  );
}
