// Loopback HTTP load: timed single requests (latency, time to first byte) and a fixed-size
// closed loop at a given concurrency (throughput). Keep-alive agents, as a real client uses.
import * as http from "node:http";

export interface Timing {
  /** Microseconds until the last byte. */
  totalUs: number;
  /** Microseconds until the first body byte (for streams: the first SSE chunk). */
  firstByteUs: number;
  status: number;
}

export interface Target {
  url: URL;
  agent: http.Agent;
  headers?: Record<string, string>;
}

export function target(base: string, maxSockets: number): Target {
  return { url: new URL(base), agent: new http.Agent({ keepAlive: true, maxSockets }) };
}

/** One POST of `body` to `path`; resolves when the response has been read to its end. */
export function timedPost(t: Target, path: string, body: string): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const us = () => Number(process.hrtime.bigint() - started) / 1000;
    const req = http.request(
      {
        host: t.url.hostname,
        port: t.url.port,
        path,
        method: "POST",
        agent: t.agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...t.headers,
        },
      },
      (res) => {
        let firstByteUs = 0;
        res.on("data", () => {
          if (!firstByteUs) firstByteUs = us();
        });
        res.once("end", () => resolve({ totalUs: us(), firstByteUs, status: res.statusCode ?? 0 }));
        res.once("error", reject);
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

/** Percentile (0-100) of a list of numbers. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** `count` requests at `concurrency`; returns requests per second and every status seen. */
export async function closedLoop(
  t: Target,
  path: string,
  body: string,
  concurrency: number,
  count: number,
): Promise<{ rps: number; errors: number }> {
  let next = 0;
  let errors = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const r = await timedPost(t, path, body).catch(() => undefined);
        if (!r || r.status !== 200) errors++;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { rps: count / seconds, errors };
}
