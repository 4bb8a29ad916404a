// The simulator's stand-in for a tokenizer and a chat template: deterministic, dependency-free,
// and prefix-preserving, so a conversation's next turn starts with the previous turn's tokens
// (what makes prefix caching pay off for multi-turn chat in vLLM).

/**
 * A token is a ChatML special token, a word piece of up to 8 letters (with its leading space),
 * up to 3 digits, one other character, or a run of whitespace: roughly a BPE tokenizer's count
 * for English text (about 4 characters a token).
 */
const TOKEN = /<\|[a-z_]+\|>| ?\p{L}{1,8}| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]|\s+/gu;

/** What the simulator "generates", a token at a time: short words, so text length tracks tokens. */
export const GENERATED = [
  "The",
  " quick",
  " brown",
  " fox",
  " jumps",
  " over",
  " the",
  " lazy",
  " dog",
  ".",
] as const;

export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

interface ChatMessage {
  role?: unknown;
  content?: unknown;
}

/** A message's text: a string, or the text parts of OpenAI's content-part array. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((p) =>
        (p as { type?: unknown }).type === "text"
          ? String((p as { text?: unknown }).text ?? "")
          : "",
      )
      .join("");
  return content == null ? "" : JSON.stringify(content);
}

/**
 * Messages flattened the way a ChatML chat template renders them (Qwen2.5's tokenizer_config
 * `chat_template`: `<|im_start|>{role}\n{content}<|im_end|>\n` per message), plus the generation
 * prompt `<|im_start|>assistant\n`, which vLLM adds by default (ChatCompletionRequest
 * `add_generation_prompt` defaults to true in vllm/entrypoints/openai/protocol.py).
 */
export function chatTemplate(messages: readonly ChatMessage[]): string {
  const turns = messages.map(
    (m) => `<|im_start|>${String(m.role ?? "user")}\n${contentText(m.content)}<|im_end|>\n`,
  );
  return `${turns.join("")}<|im_start|>assistant\n`;
}

/**
 * A request's prompt tokens: chat messages through the template; a completion prompt as text, or
 * as given when it is already token ids (vLLM accepts `prompt: number[]`).
 */
export function promptTokens(body: Record<string, unknown>): string[] {
  if (Array.isArray(body.messages)) return tokenize(chatTemplate(body.messages as ChatMessage[]));
  const prompt = body.prompt;
  if (typeof prompt === "string") return tokenize(prompt);
  if (Array.isArray(prompt) && prompt.every((t) => Number.isInteger(t)))
    return prompt.map((t) => `#${String(t)}`);
  return tokenize(JSON.stringify(prompt ?? ""));
}
