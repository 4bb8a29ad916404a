// Scrapes each tracked pod's vLLM `/metrics` on an interval, with a deadline and a byte cap per
// reading, and stops reading as soon as the load gauges are in. A pod whose reading fails
// keeps its last one, which fades to neutral as it ages (Pod.load).
import { Agent, request } from "undici";
import type { Discovery } from "./discovery";
import type { Pod } from "./pods";
import { VllmLoadReader } from "./vllmLoad";

/** Most bytes read of one `/metrics` answer. */
export const MAX_METRICS_BYTES = 1024 * 1024;

export interface PodMetricsOptions {
  discovery: Discovery;
  intervalMs: number;
  /** Deadline of one reading (connect, headers and body). */
  timeoutMs: number;
}

export class PodMetricsScraper {
  private readonly agent: Agent;
  private readonly busy = new WeakSet<Pod>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: PodMetricsOptions) {
    this.agent = new Agent({
      connect: { timeout: o.timeoutMs },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      keepAliveTimeout: 4000, // below vLLM's 5 s, like the proxy's own pool
    });
  }

  start(): void {
    this.timer ??= setInterval(() => this.round(), this.o.intervalMs).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.agent.destroy();
  }

  private round(): void {
    for (const set of this.o.discovery.sets())
      for (const pod of set.pods) if (!this.busy.has(pod)) void this.scrape(pod);
  }

  /** One reading of `pod`; failures leave its last reading in place. */
  async scrape(pod: Pod): Promise<void> {
    this.busy.add(pod);
    try {
      const res = await request(`http://${pod.address}/metrics`, {
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.o.timeoutMs),
        headers: { accept: "text/plain" },
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return;
      }
      const reader = new VllmLoadReader();
      let bytes = 0;
      res.body.setEncoding("utf8");
      for await (const chunk of res.body as AsyncIterable<string>) {
        bytes += Buffer.byteLength(chunk);
        if (reader.feed(chunk) || bytes > MAX_METRICS_BYTES) break; // leaving the loop closes the body
      }
      const load = reader.result();
      if (load) pod.report(load, Date.now());
    } catch {
      // timeout, refused, reset: the reading ages (Pod.load) and the next round tries again
    } finally {
      this.busy.delete(pod);
    }
  }
}
