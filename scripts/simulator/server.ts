// A vLLM OpenAI-server simulator: vLLM's endpoints, response and SSE chunk formats and metric
// names, with faults and either fixed pacing (time to first token, token rate) or the engine
// model (./engine: scheduler, queue, prefix-cached KV cache). No GPU, no model.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ENGINE_DEFAULTS, EngineLoop, EngineParameters, EngineStats } from "./engine";
import { pacedSnapshot, SimulatorMetrics } from "./metrics";
import { GENERATED, promptTokens, tokenize } from "./tokens";

export type SimulatorFault = "refuse" | "500" | "drop-mid-stream";
export const SIMULATOR_FAULTS: readonly SimulatorFault[] = ["refuse", "500", "drop-mid-stream"];

export interface SimulatorOptions {
  /** Port to listen on (0 picks a free one). */
  port: number;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Model name, as in the registry; also the served name unless `servedModelName` is set. */
  model: string;
  /** Name vLLM serves the model as (`--served-model-name`); requests must use it. */
  servedModelName?: string;
  /** Delay before the first token, without `engine` (default 50). */
  ttftMs?: number;
  /** Token rate after the first token, without `engine` (0 sends all tokens at once; default 50). */
  tokensPerSecond?: number;
  /**
   * Serve through the engine model instead of fixed pacing: these parameters, ENGINE_DEFAULTS for
   * the rest (`{}` for all defaults). Without `numGpuBlocks`, the cache holds at least one
   * sequence of `maxModelLen` tokens.
   */
  engine?: Partial<EngineParameters>;
  /** Fault to inject from the start. */
  fault?: SimulatorFault;
  /** Largest `max_tokens` honoured (vLLM's --max-model-len); default 8192. */
  maxModelLen?: number;
}

export interface SimulatorStats {
  /** Completion requests received. */
  requests: number;
  /** Completion requests whose client went away before the response finished. */
  aborted: number;
  /** Completion requests being generated now. */
  running: number;
  /** Stream writes that waited for the reader to catch up (backpressure reached the engine). */
  stalled: number;
  /** The engine model's state and counters (with `engine` only). */
  engine?: EngineStats;
}

export interface Simulator {
  url: string;
  port: number;
  /** Registry endpoint form: `127.0.0.1:<port>`. */
  endpoint: string;
  stats(): SimulatorStats;
  /** Changes the fault; `refuse` closes the port, clearing it listens again on the same port. */
  setFault(fault: SimulatorFault | undefined): Promise<void>;
  close(): Promise<void>;
}

const MAX_TOKENS_DEFAULT = 16;
const FIXED_PACING_DEFAULT_MS = 50;
const FIXED_TOKENS_PER_SECOND_DEFAULT = 50;
const MAX_MODEL_LEN_DEFAULT = 8192;
/** After this many streamed tokens a `drop-mid-stream` fault cuts the connection. */
const DROP_AFTER_TOKENS = 2;
const EMBEDDING_DIMENSIONS = 8;

interface Generation {
  id: string;
  created: number;
  chat: boolean;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
  prompt: string[];
}

/** Where a request's tokens come from: fixed pacing or the engine. */
interface TokenSource {
  /** Resolves true when the next token is due, false when there are no more. */
  next(): Promise<boolean>;
  abort(): void;
}

type Json = Record<string, unknown>;

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const host = options.host ?? "127.0.0.1";
  const served = options.servedModelName ?? options.model;
  const metrics = new SimulatorMetrics(served);
  const sockets = new Set<Socket>();
  const stats: SimulatorStats = { requests: 0, aborted: 0, running: 0, stalled: 0 };
  const maxModelLen = options.maxModelLen ?? MAX_MODEL_LEN_DEFAULT;
  const engine = options.engine && new EngineLoop(engineParameters(options.engine, maxModelLen));
  const emit = async (res: http.ServerResponse, text: string) => {
    if (await write(res, text)) stats.stalled++;
  };
  let fault = options.fault;

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) sendError(res, 500, "InternalServerError", err.message);
      else res.destroy();
    });
  });
  // vLLM (uvicorn) closes idle keep-alive connections after 5 s; the router must stay below.
  server.keepAliveTimeout = 5000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/health") {
      res.writeHead(200).end();
      return;
    }
    if (req.method === "GET" && path === "/v1/models") {
      return sendJson(res, 200, {
        object: "list",
        data: [
          {
            id: served,
            object: "model",
            created: Math.floor(Date.now() / 1000),
            owned_by: "vllm",
            root: options.model,
            parent: null,
            max_model_len: maxModelLen,
            permission: [],
          },
        ],
      });
    }
    if (req.method === "GET" && path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(metrics.render(engine?.engine.stats() ?? pacedSnapshot(stats.running)));
      return;
    }
    const chat = path === "/v1/chat/completions";
    if (
      req.method !== "POST" ||
      !(chat || path === "/v1/completions" || path === "/v1/embeddings")
    ) {
      return sendError(res, 404, "NotFoundError", "Not Found");
    }
    const body = await readJson(req);
    if (!body) return sendError(res, 400, "BadRequestError", "Invalid JSON body");
    if (body.model !== served) {
      return sendError(
        res,
        404,
        "NotFoundError",
        `The model \`${String(body.model)}\` does not exist.`,
      );
    }
    if (fault === "500")
      return sendError(res, 500, "InternalServerError", "simulated engine failure");
    if (path === "/v1/embeddings") return sendEmbeddings(res, body);
    const limit = body.max_tokens ?? body.max_completion_tokens;
    const prompt = promptTokens(body);
    // The engine holds a sequence's KV, so it keeps prompt + output within max_model_len; vLLM
    // rejects a prompt that alone reaches it (OpenAIServing._validate_input).
    if (engine && prompt.length >= maxModelLen) {
      return sendError(
        res,
        400,
        "BadRequestError",
        `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${prompt.length} input tokens. Please reduce the length of the input messages.`,
      );
    }
    await generate(res, {
      id: `${chat ? "chatcmpl" : "cmpl"}-${randomUUID().replace(/-/g, "")}`,
      created: Math.floor(Date.now() / 1000),
      chat,
      stream: body.stream === true,
      includeUsage:
        (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true,
      maxTokens: Math.min(
        Number.isInteger(limit) ? Number(limit) : MAX_TOKENS_DEFAULT,
        engine ? maxModelLen - prompt.length : maxModelLen,
      ),
      prompt,
    });
  }

  function tokenSource(gen: Generation): TokenSource {
    if (engine) return engine.submit(gen.prompt, gen.maxTokens);
    const ttftMs = options.ttftMs ?? FIXED_PACING_DEFAULT_MS;
    const tokensPerSecond = options.tokensPerSecond ?? FIXED_TOKENS_PER_SECOND_DEFAULT;
    let sent = 0;
    let aborted = false;
    return {
      async next() {
        if (sent++ === 0) await sleep(ttftMs);
        else if (tokensPerSecond > 0) await sleep(1000 / tokensPerSecond);
        return !aborted;
      },
      abort: () => void (aborted = true),
    };
  }

  async function generate(res: http.ServerResponse, gen: Generation): Promise<void> {
    stats.requests++;
    stats.running++;
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const source = tokenSource(gen);
    let gone = false;
    const onClose = () => {
      if (res.writableFinished) return;
      gone = true;
      source.abort();
    };
    res.once("close", onClose);
    try {
      if (gen.stream) {
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
        res.flushHeaders();
      }
      const tokens: string[] = [];
      while (tokens.length < gen.maxTokens && !gone && (await source.next())) {
        if (gone) break;
        const i = tokens.length;
        if (i === 0) metrics.firstToken(elapsed(), gen.prompt.length);
        metrics.token();
        const token = GENERATED[i % GENERATED.length];
        tokens.push(token);
        if (!gen.stream) continue;
        if (fault === "drop-mid-stream" && i === DROP_AFTER_TOKENS) {
          // Like a crashed engine: what was sent arrives, then the connection dies unfinished.
          await new Promise((flushed) => res.write("", flushed));
          res.destroy();
          return;
        }
        if (gen.chat && i === 0)
          await emit(res, sse(chunk(gen, served, { role: "assistant", content: "" }, null)));
        await emit(res, sse(chunk(gen, served, gen.chat ? { content: token } : token, null)));
      }
      if (gone) {
        stats.aborted++;
        return;
      }
      const finish = tokens.length >= gen.maxTokens ? "length" : "stop";
      const usage = {
        prompt_tokens: gen.prompt.length,
        total_tokens: gen.prompt.length + tokens.length,
        completion_tokens: tokens.length,
        prompt_tokens_details: null,
      };
      if (gen.stream) {
        await emit(res, sse(chunk(gen, served, gen.chat ? {} : "", finish)));
        if (gen.includeUsage) {
          const object = gen.chat ? "chat.completion.chunk" : "text_completion";
          await emit(
            res,
            sse({ id: gen.id, object, created: gen.created, model: served, choices: [], usage }),
          );
        }
        res.end("data: [DONE]\n\n");
      } else {
        sendJson(res, 200, completion(gen, served, tokens.join(""), finish, usage));
      }
      metrics.finish(finish, elapsed());
    } finally {
      stats.running--;
      res.off("close", onClose);
      source.abort();
    }
  }

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  let port = options.port;
  await listen();
  port = (server.address() as AddressInfo).port;
  let listening = true;
  if (fault === "refuse") {
    await unlisten();
    listening = false;
  }
  return {
    url: `http://${host}:${port}`,
    port,
    endpoint: `${host}:${port}`,
    stats: () => ({ ...stats, ...(engine && { engine: engine.engine.stats() }) }),
    async setFault(next) {
      fault = next;
      if (next === "refuse" && listening) {
        listening = false;
        await unlisten();
      } else if (next !== "refuse" && !listening) {
        await listen();
        listening = true;
      }
    },
    async close() {
      engine?.close();
      if (listening) await unlisten();
      listening = false;
    },
  };
}

function chunk(gen: Generation, model: string, delta: Json | string, finish: string | null): Json {
  const choice = gen.chat
    ? { index: 0, delta, logprobs: null, finish_reason: finish }
    : { index: 0, text: delta, logprobs: null, finish_reason: finish, stop_reason: null };
  return {
    id: gen.id,
    object: gen.chat ? "chat.completion.chunk" : "text_completion",
    created: gen.created,
    model,
    choices: [choice],
  };
}

function completion(
  gen: Generation,
  model: string,
  text: string,
  finish: string,
  usage: Json,
): Json {
  const choice = gen.chat
    ? {
        index: 0,
        message: {
          role: "assistant",
          content: text,
          refusal: null,
          tool_calls: [],
          reasoning_content: null,
        },
        logprobs: null,
        finish_reason: finish,
        stop_reason: null,
      }
    : {
        index: 0,
        text,
        logprobs: null,
        finish_reason: finish,
        stop_reason: null,
        prompt_logprobs: null,
      };
  return {
    id: gen.id,
    object: gen.chat ? "chat.completion" : "text_completion",
    created: gen.created,
    model,
    choices: [choice],
    usage,
    ...(gen.chat ? { prompt_logprobs: null } : {}),
  };
}

function sendEmbeddings(res: http.ServerResponse, body: Json): void {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const data = inputs.map((input, index) => ({
    index,
    object: "embedding",
    embedding: Array.from(
      { length: EMBEDDING_DIMENSIONS },
      (_, d) => ((String(input).length + d) % 7) / 7,
    ),
  }));
  const tokens = inputs.reduce((n: number, i) => n + tokenize(String(i)).length, 0);
  sendJson(res, 200, {
    id: `embd-${randomUUID().replace(/-/g, "")}`,
    object: "list",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    data,
    usage: {
      prompt_tokens: tokens,
      total_tokens: tokens,
      completion_tokens: 0,
      prompt_tokens_details: null,
    },
  });
}

/**
 * The engine's parameters: `given` over the defaults, with a cache that holds at least one
 * sequence of max_model_len tokens unless its size is given. vLLM refuses to start when it is
 * smaller (kv_cache_utils.check_enough_kv_cache_memory); so does the simulator.
 */
export function engineParameters(
  given: Partial<EngineParameters>,
  maxModelLen: number,
): Partial<EngineParameters> {
  const blockSize = given.blockSize ?? ENGINE_DEFAULTS.blockSize;
  const needed = Math.ceil(maxModelLen / blockSize);
  const numGpuBlocks = given.numGpuBlocks ?? Math.max(ENGINE_DEFAULTS.numGpuBlocks, needed);
  if (numGpuBlocks < needed)
    throw new Error(
      `max model len ${maxModelLen} needs ${needed} KV-cache blocks of ${blockSize} tokens, more than the ${numGpuBlocks} blocks of the cache; lower the max model len or raise the number of blocks`,
    );
  return { ...given, numGpuBlocks };
}

function sse(value: Json): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** Writes with backpressure: waits for `drain` when the client reads slowly (resolves true then). */
function write(res: http.ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(text)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve(true);
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/** vLLM's error body (`ErrorResponse`). */
function sendError(res: http.ServerResponse, status: number, type: string, message: string): void {
  sendJson(res, status, { error: { message, type, param: null, code: status } });
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

async function readJson(req: http.IncomingMessage): Promise<Json | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
