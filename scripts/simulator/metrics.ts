// vLLM's Prometheus metric names (v0.11), labelled `model_name`, in the text exposition format.

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60];

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

  render(label: string): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) =>
      lines.push(`${this.name}_bucket{${label},le="${b}"} ${this.counts[i]}`),
    );
    lines.push(`${this.name}_bucket{${label},le="+Inf"} ${this.count}`);
    lines.push(
      `${this.name}_sum{${label}} ${this.sum}`,
      `${this.name}_count{${label}} ${this.count}`,
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
  private finished = 0;

  constructor(private readonly model: string) {}

  observeTtft(seconds: number): void {
    this.ttft.observe(seconds);
  }

  observeE2e(seconds: number): void {
    this.e2e.observe(seconds);
    this.finished++;
  }

  countTokens(prompt: number, generated: number): void {
    this.promptTokens += prompt;
    this.generationTokens += generated;
  }

  render(running: number): string {
    const label = `model_name="${this.model.replace(/["\\]/g, "\\$&")}"`;
    // The simulator has no KV cache; usage is a plausible function of the load.
    const cache = Math.min(1, running / 64);
    const gauge = (name: string, help: string, v: number) =>
      `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name}{${label}} ${v}`;
    const counter = (name: string, help: string, v: number) =>
      `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name}{${label}} ${v}`;
    return [
      gauge("vllm:num_requests_running", "Number of requests in model execution batches.", running),
      gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", 0),
      gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", cache),
      gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", cache),
      counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", this.promptTokens),
      counter(
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
        this.generationTokens,
      ),
      counter(
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        this.finished,
      ),
      this.ttft.render(label),
      this.e2e.render(label),
      "",
    ].join("\n");
  }
}
