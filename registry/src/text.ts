// Registry values shown to people. A value can come from any writer of the table (or straight
// from SQL), so before it reaches a terminal every character that could move the cursor, erase
// or reorder text is written out visibly: C0 controls (newline, ESC of ANSI sequences), DEL, C1
// controls, the line/paragraph separators, and the bidirectional marks, embeddings, overrides
// and isolates of Unicode UAX #9 (the "Trojan Source" set, CVE-2021-42574).

const UNSAFE =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]";
/** Matches a character that is never shown raw. */
export const UNSAFE_TEXT = new RegExp(UNSAFE);
const UNSAFE_ALL = new RegExp(UNSAFE, "g");

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escaped(c: string): string {
  const code = c.charCodeAt(0);
  return (
    NAMED[c] ??
    (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`)
  );
}

/**
 * `text` with every unsafe character escaped (`\n`, `\x1b`, `\u202e`). `keepNewlines` keeps
 * line breaks of a message composed of lines whose values were escaped already.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(UNSAFE_ALL, (c) => (keepNewlines && c === "\n" ? c : escaped(c)));
}

/** A value as an error message echoes it: quoted, escaped, and cut after `max` characters. */
export function quoted(value: unknown, max = 64): string {
  const chars = Array.from(String(value ?? ""));
  const shown = chars.length > max ? `${chars.slice(0, max).join("")}…` : chars.join("");
  return `'${printable(shown)}'`;
}
