// The routing benchmark's workload: multi-turn chats over a few long shared system prompts,
// conversations arriving open-loop (Poisson, seeded, the same schedule for every routing mode),
// each turn resending the history, the previous assistant reply included, plus a new user
// message; and a streaming client that times the first content chunk of each turn.
import * as http from "node:http";

/** A seeded PRNG (mulberry32): the same seed gives the same workload in every mode and run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface WorkloadOptions {
  seed: number;
  /** Distinct system prompts the conversations share. */
  systemPrompts: number;
  /** Words per system prompt (the simulator's tokenizer makes a word of up to 8 letters one token). */
  systemPromptWords: number;
  /** Conversations starting per second (Poisson arrivals). */
  rate: number;
  /** Conversations start during this many seconds. */
  seconds: number;
  turns: number;
  /** Words per user message. */
  userWords: number;
  /** max_tokens of each turn. */
  maxTokens: number;
  /** Mean pause between a reply and the next turn (exponential), ms. */
  thinkMs: number;
}

export interface Conversation {
  id: number;
  /** Offset from the phase's start, ms. */
  startMs: number;
  system: number;
  /** The user message of each turn. */
  users: string[];
  /** Pause before each turn after the first, ms. */
  thinkMs: number[];
}

export interface Workload {
  systemPrompts: string[];
  conversations: Conversation[];
}

function words(random: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 3 + Math.floor(random() * 6);
    let w = "";
    for (let j = 0; j < len; j++) w += String.fromCharCode(97 + Math.floor(random() * 26));
    out.push(w);
  }
  return out.join(" ");
}

export function buildWorkload(o: WorkloadOptions): Workload {
  const random = mulberry32(o.seed);
  const exp = (mean: number) => -Math.log(1 - random()) * mean;
  // Each prompt differs from its first token, so no two share a cached block.
  const systemPrompts = Array.from(
    { length: o.systemPrompts },
    (_, i) => `You are assistant ${i}. ${words(random, o.systemPromptWords)}`,
  );
  const conversations: Conversation[] = [];
  for (let t = exp(1000 / o.rate), id = 0; t < o.seconds * 1000; t += exp(1000 / o.rate), id++)
    conversations.push({
      id,
      startMs: t,
      system: Math.floor(random() * o.systemPrompts),
      users: Array.from({ length: o.turns }, () => words(random, o.userWords)),
      thinkMs: Array.from({ length: o.turns }, () => exp(o.thinkMs)),
    });
  return { systemPrompts, conversations };
}

export interface TurnResult {
  /** The x-request-id the turn was sent with (the replicas log it). */
  requestId: string;
  conversation: number;
  turn: number;
  /** Which router (index) it went through. */
  router: number;
  /** Epoch ms. */
  sentAt: number;
  /** Until the first content chunk, ms; undefined if none came. */
  ttftMs?: number;
  /** Epoch ms of each content chunk. */
  tokenTimes: number[];
  status: number;
  completed: boolean;
  /** The assistant's reply, for the next turn. */
  reply: string;
}

/** One streaming chat turn; resolves when the stream ends, fails or `signal` aborts it. */
export function streamTurn(
  base: URL,
  agent: http.Agent,
  body: object,
  requestId: string,
  signal: AbortSignal,
): Promise<Omit<TurnResult, "conversation" | "turn" | "router">> {
  const payload = JSON.stringify(body);
  const sentAt = Date.now();
  const started = performance.now();
  const r = {
    requestId,
    sentAt,
    ttftMs: undefined as number | undefined,
    tokenTimes: [] as number[],
    status: 0,
    completed: false,
    reply: "",
  };
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: "/v1/chat/completions",
        method: "POST",
        agent,
        signal,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          "x-request-id": requestId,
        },
      },
      (res) => {
        r.status = res.statusCode ?? 0;
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          buf += d;
          let i: number;
          while ((i = buf.indexOf("\n\n")) !== -1) {
            const event = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!event.startsWith("data: ")) continue;
            const data = event.slice(6);
            if (data === "[DONE]") {
              r.completed = true;
              continue;
            }
            const content = (JSON.parse(data) as { choices?: { delta?: { content?: string } }[] })
              .choices?.[0]?.delta?.content;
            if (!content) continue; // the role chunk, the usage chunk
            r.ttftMs ??= performance.now() - started;
            r.tokenTimes.push(Date.now());
            r.reply += content;
          }
        });
        res.once("end", () => resolve(r));
        res.once("error", () => resolve(r));
      },
    );
    req.once("error", () => resolve(r));
    req.end(payload);
  });
}
