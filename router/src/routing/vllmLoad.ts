// Reads a pod's load from vLLM's Prometheus text (`/metrics`, served on its API port) as it
// streams in, and says when it has read enough: vLLM lists these gauges near the top, so a
// reading seldom needs more than the first few kilobytes of a long page.
import type { VllmLoad } from "./pods";

// vLLM's names (vllm/v1/metrics/loggers.py, PrometheusStatLogger): one series per engine
// (labels model_name, engine), so a pod running several engines is summed (requests) or
// averaged (KV-cache usage, a fraction of each engine's own cache). `gpu_cache_usage_perc` is
// the name before v0.10, read when `kv_cache_usage_perc` is absent.
export const VLLM_RUNNING = "vllm:num_requests_running";
export const VLLM_WAITING = "vllm:num_requests_waiting";
export const VLLM_KV_USAGE = "vllm:kv_cache_usage_perc";
export const VLLM_GPU_CACHE_USAGE = "vllm:gpu_cache_usage_perc";

const WANTED = [VLLM_RUNNING, VLLM_WAITING, VLLM_KV_USAGE, VLLM_GPU_CACHE_USAGE];

interface Family {
  sum: number;
  count: number;
  /** No more series of it can follow. */
  complete: boolean;
}

/**
 * Incremental parser: `feed` text chunks, `done` once running, waiting and KV usage have been
 * read in full. All series of one metric form one group in the text format
 * (prometheus.io/docs/instrumenting/exposition_formats, "Grouping and sorting"), so a family
 * is complete as soon as a line of another metric follows it.
 */
export class VllmLoadReader {
  private readonly families = new Map<string, Family>();
  private current = "";
  private carry = "";

  /** Reads a chunk; true once nothing more is needed. */
  feed(chunk: string): boolean {
    const text = this.carry + chunk;
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      this.line(text.slice(start, nl));
      start = nl + 1;
    }
    this.carry = text.slice(start);
    return this.done;
  }

  get done(): boolean {
    const complete = (name: string) => this.families.get(name)?.complete === true;
    return complete(VLLM_RUNNING) && complete(VLLM_WAITING) && complete(VLLM_KV_USAGE);
  }

  /**
   * The load read so far; undefined without the request gauges. A line without its "\n" is
   * left out: the text format ends every line with one, so it was cut short.
   */
  result(): VllmLoad | undefined {
    const running = this.families.get(VLLM_RUNNING);
    const waiting = this.families.get(VLLM_WAITING);
    if (!running || !waiting) return undefined;
    const kv = this.families.get(VLLM_KV_USAGE) ?? this.families.get(VLLM_GPU_CACHE_USAGE);
    const kvUsage = kv && kv.count > 0 ? kv.sum / kv.count : 0;
    return { running: running.sum, waiting: waiting.sum, kvUsage: Math.min(1, kvUsage) };
  }

  private line(line: string): void {
    let name: string;
    if (line.startsWith("#")) {
      // "# HELP <name> ..." and "# TYPE <name> ..." open a metric's group; other comments do nothing.
      const m = /^#\s+(?:HELP|TYPE)\s+(\S+)/.exec(line);
      if (!m) return;
      name = m[1];
    } else {
      const end = line.search(/[{\s]/);
      name = end === -1 ? line : line.slice(0, end);
      if (!name) return;
    }
    if (name !== this.current) {
      const previous = this.families.get(this.current);
      if (previous) previous.complete = true;
      this.current = name;
    }
    if (line.startsWith("#") || !WANTED.includes(name)) return;
    const labelsEnd = line.lastIndexOf("}");
    const value = Number(
      line
        .slice(labelsEnd === -1 ? name.length : labelsEnd + 1)
        .trim()
        .split(/\s+/)[0],
    );
    if (!Number.isFinite(value) || value < 0) return;
    const family = this.families.get(name) ?? { sum: 0, count: 0, complete: false };
    family.sum += value;
    family.count++;
    this.families.set(name, family);
  }
}
