// vLLM's Prometheus metrics in the text exposition format, as vLLM V1's PrometheusStatLogger
// (vllm/v1/metrics/loggers.py) declares them: the same names, types, help texts and buckets,
// labelled `model_name` (the served name) and `engine` (the engine index, "0" for one engine).
// prometheus_client renders a counter declared as `vllm:prompt_tokens` as
// `vllm:prompt_tokens_total`, so counters carry `_total` here.

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
  160, 640, 2560,
];
const E2E_BUCKETS = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];
/** vLLM's FinishReason values; the logger creates a `vllm:request_success` child for each. */
export type FinishReason = "stop" | "length" | "abort";
const FINISH_REASONS: readonly FinishReason[] = ["stop", "length", "abort"];

/** The scheduler and KV-cache state the gauges and cache counters show. */
export interface EngineSnapshot {
  running: number;
  waiting: number;
  /** Fraction of KV blocks held by requests (vllm:kv_cache_usage_perc). */
  kvCacheUsage: number;
  /** Prompt tokens looked up in, and found in, the prefix cache (vllm:prefix_cache_*). */
  prefixCacheQueries: number;
  prefixCacheHits: number;
  preemptions: number;
}

/** Without the engine model: nothing waits, nothing is cached, and the cache fills with the load. */
export function pacedSnapshot(running: number): EngineSnapshot {
  return {
    running,
    waiting: 0,
    kvCacheUsage: Math.min(1, running / 64),
    prefixCacheQueries: 0,
    prefixCacheHits: 0,
    preemptions: 0,
  };
}

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.counts[i]++;
    });
  }

  render(labels: string): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) =>
      lines.push(`${this.name}_bucket{${labels},le="${b}"} ${this.counts[i]}`),
    );
    lines.push(`${this.name}_bucket{${labels},le="+Inf"} ${this.count}`);
    lines.push(
      `${this.name}_sum{${labels}} ${this.sum}`,
      `${this.name}_count{${labels}} ${this.count}`,
    );
    return lines.join("\n");
  }
}

export class SimulatorMetrics {
  private readonly ttft = new Histogram(
    "vllm:time_to_first_token_seconds",
    "Histogram of time to first token in seconds.",
    TTFT_BUCKETS,
  );
  private readonly e2e = new Histogram(
    "vllm:e2e_request_latency_seconds",
    "Histogram of e2e request latency in seconds.",
    E2E_BUCKETS,
  );
  private promptTokens = 0;
  private generationTokens = 0;
  private readonly finished = new Map<FinishReason, number>(FINISH_REASONS.map((r) => [r, 0]));

  constructor(private readonly model: string) {}

  /** The first token is out: vLLM counts the prompt then (IterationStats.update_from_output). */
  firstToken(seconds: number, promptTokens: number): void {
    this.ttft.observe(seconds);
    this.promptTokens += promptTokens;
  }

  token(): void {
    this.generationTokens++;
  }

  /** A request the engine finished (vLLM drops aborted requests without counting them). */
  finish(reason: Exclude<FinishReason, "abort">, seconds: number): void {
    this.e2e.observe(seconds);
    this.finished.set(reason, this.finished.get(reason)! + 1);
  }

  render(s: EngineSnapshot): string {
    const labels = `model_name="${this.model.replace(/["\\]/g, "\\$&")}",engine="0"`;
    const family = (type: string, name: string, help: string, samples: string[]) =>
      [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples].join("\n");
    const gauge = (name: string, help: string, v: number) =>
      family("gauge", name, help, [`${name}{${labels}} ${v}`]);
    const counter = (name: string, help: string, v: number) =>
      family("counter", name, help, [`${name}{${labels}} ${v}`]);
    return [
      gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        s.running,
      ),
      gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", s.waiting),
      // Deprecated in vLLM 0.9 for kv_cache_usage_perc; dashboards of older releases read it.
      gauge(
        "vllm:gpu_cache_usage_perc",
        "GPU KV-cache usage. 1 means 100 percent usage.",
        s.kvCacheUsage,
      ),
      gauge(
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        s.kvCacheUsage,
      ),
      counter(
        "vllm:prefix_cache_queries_total",
        "Prefix cache queries, in terms of number of queried tokens.",
        s.prefixCacheQueries,
      ),
      counter(
        "vllm:prefix_cache_hits_total",
        "Prefix cache hits, in terms of number of cached tokens.",
        s.prefixCacheHits,
      ),
      counter(
        "vllm:num_preemptions_total",
        "Cumulative number of preemption from the engine.",
        s.preemptions,
      ),
      counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", this.promptTokens),
      counter(
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
        this.generationTokens,
      ),
      family(
        "counter",
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        FINISH_REASONS.map(
          (r) =>
            `vllm:request_success_total{${labels},finished_reason="${r}"} ${this.finished.get(r)}`,
        ),
      ),
      this.ttft.render(labels),
      this.e2e.render(labels),
      "",
    ].join("\n");
  }
}
