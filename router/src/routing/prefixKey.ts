// The affinity key of a request: a hash of the part of its prompt that the later requests of the
// same conversation repeat, so rendezvous hashing sends them to the pod whose prefix (KV) cache
// already holds it. Read from the JSON the router parsed anyway; at most KEY_MAX_CHARS of text
// are hashed, so the cost is bounded whatever the prompt's size.
import { FNV_OFFSET, fnv1a } from "./hash";

/** Prompts are keyed in whole blocks of this many characters (a partial last block is left out). */
export const KEY_BLOCK_CHARS = 256;
/** Text hashed per request, at most: 16 blocks (about 1,000 tokens). */
export const KEY_MAX_CHARS = 16 * KEY_BLOCK_CHARS;

/**
 * The request's affinity key, or undefined when it has no prompt text (embeddings, token
 * arrays): those are placed by load alone.
 *
 * Chat (`messages`): the messages in order up to and including the first `user` message, or
 * their first KEY_MAX_CHARS if that is shorter. A client resends the whole history on every
 * turn, so this text is the same on each turn of a conversation, and:
 * - a long shared prefix (a system prompt of 4 KB or more) is the whole key: every
 *   conversation that opens with it goes to the same pod (or, past the load bound, the next
 *   ones in its ranking), where it stays cached, and each conversation's later turns follow;
 * - after a shorter system prompt the first user message joins the key: conversations spread
 *   over the pods, each pod computes the short shared part once, and every turn goes to the
 *   pod that holds the conversation so far, the longest prefix a turn can reuse.
 *
 * Completions (`prompt`): its first 16 whole blocks; once a prompt passes 4 KB the key stays
 * the same however much is appended to it.
 */
export function affinityKey(json: Record<string, unknown>): number | undefined {
  if (Array.isArray(json.messages)) return chatKey(json.messages);
  // A batch of prompts is keyed by its first: vLLM computes them on one pod anyway.
  const prompt = Array.isArray(json.prompt) ? (json.prompt as unknown[])[0] : json.prompt;
  if (typeof prompt !== "string" || prompt === "") return undefined;
  const n = Math.min(prompt.length, KEY_MAX_CHARS);
  return fnv1a(prompt, FNV_OFFSET, n < KEY_BLOCK_CHARS ? n : n - (n % KEY_BLOCK_CHARS));
}

function chatKey(messages: unknown[]): number | undefined {
  let h = FNV_OFFSET;
  let room = KEY_MAX_CHARS;
  for (const message of messages) {
    if (room <= 0 || !message || typeof message !== "object") break;
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (typeof role === "string") h = fnv1a(role, h);
    h = fnv1a("\n", h); // separates messages: ["ab"] and ["a", "b"] differ
    if (typeof content === "string") {
      const n = Math.min(content.length, room);
      h = fnv1a(content, h, n);
      room -= n;
    } else if (Array.isArray(content)) {
      // Content parts: the text ones, in order (images and audio are not prompt text here).
      for (const part of content as unknown[]) {
        const text = (part as { text?: unknown } | null)?.text;
        if (typeof text !== "string" || room <= 0) continue;
        const n = Math.min(text.length, room);
        h = fnv1a(text, h, n);
        room -= n;
      }
    }
    if (role === "user") break;
  }
  return room < KEY_MAX_CHARS ? h : undefined;
}
