// Structured JSON logs. Request logs carry ids, models, statuses and timings, never bodies,
// prompts or keys; `redact` also scrubs credentials should an error object carry them.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: "vllm-router" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "authorization",
          "headers.authorization",
          "*.authorization",
          "password",
          "*.password",
        ],
        censor: "[redacted]",
      },
    },
    // Asynchronous writes: under load lines written while one write is in flight go out
    // together, instead of one blocking write(2) per request. `flush` runs before exit.
    pino.destination({ dest: 1, sync: false }),
  );
}
