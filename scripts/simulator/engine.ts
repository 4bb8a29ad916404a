// A model of one vLLM engine where it matters for routing: a step loop after vLLM V1's Scheduler
// (vllm/v1/core/sched/scheduler.py `schedule`), over a prefix-cached KV cache (./kvcache).
// Each step serves the running sequences first (one decode token each, or the next chunk of a
// prompt), then admits waiting ones in FIFO order while sequences, token budget (chunked
// prefill) and KV blocks allow; a running sequence that cannot get a block preempts the last
// admitted one, which goes back to the head of the queue to be recomputed. The step that
// computes a prompt's last token samples the first output token, so time to first token is
// queue wait + the prefill steps, each of which also carries the batch's decodes.
// Time is modelled, not measured: a step lasts stepMs + uncached prefill tokens /
// prefillTokensPerSecond + decodeMsPerSeq per decoding sequence, so prefill time follows
// uncached tokens and a busy engine slows every sequence. The Engine itself is clock-driven by
// its caller (tests step it in virtual time); EngineLoop runs it on the wall clock.
import { Block, BlockPool, extendBlockHashes } from "./kvcache";
import { GENERATED } from "./tokens";
import type { EngineSnapshot } from "./metrics";

export interface EngineParameters {
  /** Tokens per KV-cache block (vLLM `--block-size`). */
  blockSize: number;
  /** KV-cache capacity in blocks (vLLM `--num-gpu-blocks-override`). */
  numGpuBlocks: number;
  /** Most sequences running at once; the rest wait (vLLM `--max-num-seqs`). */
  maxNumSeqs: number;
  /** Most tokens a step computes, decodes and prefill chunks together (`--max-num-batched-tokens`). */
  maxNumBatchedTokens: number;
  /** Fixed time of a step, in milliseconds. */
  stepMs: number;
  /** Prefill speed: uncached prompt tokens a second of step time computes. */
  prefillTokensPerSecond: number;
  /** Step time each decoding sequence adds, in milliseconds. */
  decodeMsPerSeq: number;
}

/**
 * A small replica of a small fleet: vLLM's own defaults for block size, sequences and token
 * budget (an OpenAI server on a GPU under 70 GiB: EngineArgs.get_batch_defaults in
 * vllm/engine/arg_utils.py), 2048 blocks (32k tokens) of cache, prefill at 16k tokens/s and
 * decode steps of 10-30 ms for 8-88 sequences.
 */
export const ENGINE_DEFAULTS: Readonly<EngineParameters> = {
  blockSize: 16,
  numGpuBlocks: 2048,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  stepMs: 8,
  prefillTokensPerSecond: 16000,
  decodeMsPerSeq: 0.25,
};

const PARAMETER_KINDS: Record<keyof EngineParameters, "count" | "rate" | "duration"> = {
  blockSize: "count",
  numGpuBlocks: "count",
  maxNumSeqs: "count",
  maxNumBatchedTokens: "count",
  stepMs: "duration",
  prefillTokensPerSecond: "rate",
  decodeMsPerSeq: "duration",
};
const KIND_RULES = { count: "an integer > 0", rate: "a number > 0", duration: "a number >= 0" };

/** Why `value` cannot be the engine's `key`, or undefined when it can. */
export function engineParameterError(
  key: keyof EngineParameters,
  value: number,
): string | undefined {
  const kind = PARAMETER_KINDS[key];
  const ok =
    kind === "count"
      ? Number.isInteger(value) && value > 0
      : Number.isFinite(value) && (kind === "rate" ? value > 0 : value >= 0);
  return ok ? undefined : `must be ${KIND_RULES[kind]}, got ${value}`;
}

/** A request as the engine holds it; the caller reads tokens with `next()`. */
export interface EngineRequest {
  /** Resolves true when another token is out, false once the request finished or was aborted. */
  next(): Promise<boolean>;
  /** Stops the request and frees its blocks (a client that went away). */
  abort(): void;
  readonly promptTokens: number;
  /** Prompt tokens found in the prefix cache when the request was first admitted. */
  readonly cachedTokens: number | undefined;
  /** Engine clock when submitted, and when the first token came out. */
  readonly arrivedAt: number;
  readonly firstTokenAt: number | undefined;
  readonly generated: number;
}

/** What the metrics show (running, waiting, KV usage, prefix-cache counters, preemptions), and evictions. */
export interface EngineStats extends EngineSnapshot {
  /** Cached blocks reused for other tokens. */
  evictions: number;
}

class Sequence implements EngineRequest {
  readonly tokens: string[];
  readonly promptTokens: number;
  generated = 0;
  /** Tokens whose KV is computed. */
  computed = 0;
  /** Tokens to compute before decoding: the prompt, or everything after a preemption. */
  prefillEnd: number;
  blocks: Block[] = [];
  readonly hashes: string[] = [];
  /** Leading blocks registered in the prefix cache. */
  registered = 0;
  cachedTokens: number | undefined;
  preempted = false;
  inStep = false;
  aborted = false;
  firstTokenAt: number | undefined;
  private ready = 0;
  private ended = false;
  private wake?: () => void;

  constructor(
    prompt: readonly string[],
    readonly maxTokens: number,
    readonly arrivedAt: number,
    private readonly onAbort: (s: Sequence) => void,
  ) {
    this.tokens = [...prompt];
    this.promptTokens = prompt.length;
    this.prefillEnd = prompt.length;
  }

  emit(): void {
    this.ready++;
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  next(): Promise<boolean> {
    if (this.ready > 0) {
      this.ready--;
      return Promise.resolve(true);
    }
    if (this.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve(this.next());
      };
    });
  }

  abort(): void {
    if (this.ended) return;
    this.aborted = true;
    this.end();
    this.onAbort(this);
  }
}

/** What one step computes, tokens per scheduled sequence, and how long it takes. */
export interface Step {
  readonly ms: number;
  readonly items: readonly { seq: Sequence; tokens: number }[];
}

export class Engine {
  readonly params: Readonly<EngineParameters>;
  private readonly pool: BlockPool;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private prefixCacheQueries = 0;
  private prefixCacheHits = 0;
  private preemptions = 0;

  constructor(
    params: Partial<EngineParameters> = {},
    /** The engine's clock in milliseconds (request timestamps). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.params = { ...ENGINE_DEFAULTS, ...params };
    for (const key of Object.keys(PARAMETER_KINDS) as (keyof EngineParameters)[]) {
      const error = engineParameterError(key, this.params[key]);
      if (error) throw new RangeError(`engine ${key} ${error}`);
    }
    this.pool = new BlockPool(this.params.numGpuBlocks);
  }

  stats(): EngineStats {
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      kvCacheUsage: this.pool.usage,
      prefixCacheQueries: this.prefixCacheQueries,
      prefixCacheHits: this.prefixCacheHits,
      preemptions: this.preemptions,
      evictions: this.pool.evictions,
    };
  }

  /** Queues a request of `prompt` tokens that generates `maxTokens` tokens. */
  submit(prompt: readonly string[], maxTokens: number): EngineRequest {
    const { blockSize, numGpuBlocks } = this.params;
    const blocks = Math.ceil((prompt.length + maxTokens) / blockSize);
    // One sequence larger than the cache would preempt itself forever (the server keeps
    // sequences within max_model_len, which the cache holds).
    if (blocks > numGpuBlocks)
      throw new RangeError(
        `a sequence of ${prompt.length} + ${maxTokens} tokens needs ${blocks} KV-cache blocks; the cache has ${numGpuBlocks}`,
      );
    const seq = new Sequence(prompt, maxTokens, this.now(), (s) => this.aborted(s));
    this.waiting.push(seq);
    return seq;
  }

  /** Plans the next step (allocating its blocks); undefined when there is nothing to run. */
  schedule(): Step | undefined {
    const { blockSize, maxNumBatchedTokens, maxNumSeqs } = this.params;
    let budget = maxNumBatchedTokens;
    const items: { seq: Sequence; tokens: number }[] = [];
    let prefillTokens = 0;
    let decodes = 0;
    const add = (seq: Sequence, tokens: number) => {
      if (seq.computed >= seq.prefillEnd) decodes++;
      else prefillTokens += tokens;
      seq.inStep = true;
      items.push({ seq, tokens });
      budget -= tokens;
    };
    let preempted = false;
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i];
      const tokens = Math.min(seq.tokens.length - seq.computed, budget);
      let fits = this.grow(seq, tokens);
      while (!fits) {
        // Out of blocks: preempt the lowest-priority (last admitted) sequence, possibly itself.
        const victim = this.running.pop()!;
        this.preempt(victim);
        preempted = true;
        if (victim === seq) break;
        fits = this.grow(seq, tokens);
      }
      if (!fits) break;
      add(seq, tokens);
    }
    // As vLLM, no admissions in a step that had to preempt.
    while (
      !preempted &&
      this.waiting.length > 0 &&
      budget > 0 &&
      this.running.length < maxNumSeqs
    ) {
      const seq = this.waiting[0];
      extendBlockHashes(seq.hashes, seq.tokens, blockSize);
      // The last prompt token is always computed, to sample from (get_computed_blocks).
      const hit = this.pool.lookup(seq.hashes, Math.floor((seq.tokens.length - 1) / blockSize));
      const cached = hit.length * blockSize;
      const tokens = Math.min(seq.tokens.length - cached, budget);
      const fresh = Math.ceil((cached + tokens) / blockSize) - hit.length;
      if (fresh + this.pool.takenByHolding(hit) > this.pool.free) break;
      this.waiting.shift();
      this.pool.hold(hit);
      seq.blocks = [...hit, ...this.pool.allocate(fresh)];
      seq.registered = hit.length;
      seq.computed = cached;
      seq.prefillEnd = seq.tokens.length;
      // A preempted request's second lookup is not a query (PrefixCacheStats.record).
      if (!seq.preempted) {
        seq.cachedTokens = cached;
        this.prefixCacheQueries += seq.tokens.length;
        this.prefixCacheHits += cached;
      }
      this.running.push(seq);
      add(seq, tokens);
    }
    if (items.length === 0) return undefined;
    const { stepMs, prefillTokensPerSecond, decodeMsPerSeq } = this.params;
    const ms = stepMs + (prefillTokens * 1000) / prefillTokensPerSecond + decodes * decodeMsPerSeq;
    return { ms, items };
  }

  /** Ends a step: its tokens are computed, full blocks cached, and tokens sampled and emitted. */
  finish(step: Step): void {
    const { blockSize } = this.params;
    for (const { seq, tokens } of step.items) {
      seq.inStep = false;
      if (seq.aborted) {
        this.retire(seq);
        continue;
      }
      seq.computed += tokens;
      extendBlockHashes(seq.hashes, seq.tokens, blockSize);
      for (; seq.registered < Math.floor(seq.computed / blockSize); seq.registered++)
        this.pool.register(seq.blocks[seq.registered], seq.hashes[seq.registered]);
      if (seq.computed < seq.tokens.length) continue; // a prompt chunk, not the last
      seq.tokens.push(GENERATED[seq.generated % GENERATED.length]);
      seq.generated++;
      seq.firstTokenAt ??= this.now();
      seq.emit();
      if (seq.generated >= seq.maxTokens) {
        this.retire(seq);
        seq.end();
      }
    }
  }

  /** Aborts every request (shutdown). */
  abortAll(): void {
    for (const seq of [...this.waiting, ...this.running]) seq.abort();
  }

  /** Blocks for `tokens` more computed tokens of a running sequence; false when too few free. */
  private grow(seq: Sequence, tokens: number): boolean {
    const need = Math.ceil((seq.computed + tokens) / this.params.blockSize) - seq.blocks.length;
    if (need > this.pool.free) return false;
    seq.blocks.push(...this.pool.allocate(Math.max(0, need)));
    return true;
  }

  private preempt(seq: Sequence): void {
    this.pool.release(seq.blocks);
    seq.blocks = [];
    seq.registered = 0;
    seq.computed = 0;
    seq.preempted = true;
    this.preemptions++;
    this.waiting.unshift(seq);
  }

  private retire(seq: Sequence): void {
    this.pool.release(seq.blocks);
    seq.blocks = [];
    const i = this.running.indexOf(seq);
    if (i >= 0) this.running.splice(i, 1);
  }

  private aborted(seq: Sequence): void {
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    // A sequence in the step being computed is retired when the step ends.
    else if (!seq.inStep) this.retire(seq);
  }
}

/** How far behind the wall clock the loop may fall before it stops catching up (timer jitter). */
const MAX_LAG_MS = 50;

/** Runs an engine on the wall clock: each step takes its modelled time. */
export class EngineLoop {
  readonly engine: Engine;
  private busy = false;
  private closed = false;
  private timer?: NodeJS.Timeout;

  constructor(params: Partial<EngineParameters>) {
    this.engine = new Engine(params);
  }

  submit(prompt: readonly string[], maxTokens: number): EngineRequest {
    const request = this.engine.submit(prompt, maxTokens);
    if (!this.busy && !this.closed) void this.run();
    return request;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.engine.abortAll();
  }

  private async run(): Promise<void> {
    this.busy = true;
    // Steps are laid end to end on the clock, so timer overshoot does not add up over steps.
    let due = performance.now();
    for (let step = this.engine.schedule(); step && !this.closed; step = this.engine.schedule()) {
      due = Math.max(due, performance.now() - MAX_LAG_MS) + step.ms;
      await new Promise((r) => (this.timer = setTimeout(r, due - performance.now())));
      if (this.closed) break;
      this.engine.finish(step);
    }
    this.busy = false;
  }
}
