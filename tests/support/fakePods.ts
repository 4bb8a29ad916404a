// Stand-ins for a model's vLLM pods, as plain node:http servers: each answers completions with
// its own name (so a test sees which pod served a request), can hold answers until released
// (requests in flight), and serves `/metrics` text the test sets, or never answers it.
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakePod {
  name: string;
  /** `host:port`: the pod's address as discovery lists it. */
  address: string;
  /** Completion requests received. */
  requests: number;
  /** Requests being answered now (held ones included). */
  open: number;
  /** vLLM's gauges this pod reports; `metrics: "hang"` never answers `/metrics`. */
  gauges: { running: number; waiting: number; kvUsage: number };
  metrics: "ok" | "hang";
  /** `/metrics` requests received. */
  scrapes: number;
  /** While true, completion answers wait for `release()`. */
  hold: boolean;
  release(): void;
  close(): Promise<void>;
}

/** The vLLM v1 text for `gauges`: process metrics first, one series per engine, like vLLM. */
function metricsText(model: string, g: FakePod["gauges"]): string {
  const labels = `engine="0",model_name="${model}"`;
  return [
    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
    "# TYPE process_cpu_seconds_total counter",
    "process_cpu_seconds_total 1.5",
    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{${labels}} ${g.running}`,
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting{${labels}} ${g.waiting}`,
    "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
    "# TYPE vllm:kv_cache_usage_perc gauge",
    `vllm:kv_cache_usage_perc{${labels}} ${g.kvUsage}`,
    "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
    "# TYPE vllm:prompt_tokens_total counter",
    `vllm:prompt_tokens_total{${labels}} 0.0`,
    "",
  ].join("\n");
}

/** Starts a fake pod on `host` (any 127.x.y.z on Linux) and `port` (0: a free one). */
export async function startFakePod(
  name: string,
  { host = "127.0.0.1", port = 0, model = "m" } = {},
): Promise<FakePod> {
  let held: (() => void)[] = [];
  const pod: FakePod = {
    name,
    address: "",
    requests: 0,
    open: 0,
    gauges: { running: 0, waiting: 0, kvUsage: 0 },
    metrics: "ok",
    scrapes: 0,
    hold: false,
    release: () => {
      const waiting = held;
      held = [];
      waiting.forEach((answer) => answer());
    },
    close: async () => {
      pod.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    if (req.url === "/metrics") {
      pod.scrapes++;
      if (pod.metrics === "hang") return; // the router's deadline must end it
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(metricsText(model, pod.gauges));
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      pod.requests++;
      pod.open++;
      const answer = () => {
        pod.open--;
        const body = JSON.stringify({
          id: `cmpl-${pod.requests}`,
          object: "chat.completion",
          model: JSON.parse(Buffer.concat(chunks).toString()).model,
          pod: name,
          choices: [
            { index: 0, message: { role: "assistant", content: name }, finish_reason: "stop" },
          ],
        });
        res.writeHead(200, { "content-type": "application/json" }).end(body);
      };
      if (pod.hold) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  pod.address = `${host}:${(server.address() as AddressInfo).port}`;
  return pod;
}
