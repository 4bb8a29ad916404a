// 32-bit hashes for routing: cheap enough to run on every request, deterministic across router
// processes (nothing seeded per process), so every replica ranks pods the same way.

/** FNV-1a's 32-bit offset basis (draft-eastlake-fnv, "FNV Constants"). */
export const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `text[0, end)`, continuing from `hash` (a chain). */
export function fnv1a(text: string, hash = FNV_OFFSET, end = text.length): number {
  // Looping to the string's own length lets V8 drop charCodeAt's bounds check (2-3x faster
  // than looping to `end`); a slice of a flat string is a view, not a copy.
  const t = end < text.length ? text.slice(0, end) : text;
  let h = hash | 0; // int32 from the start: a double here would slow the whole loop
  for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/**
 * MurmurHash3's 32-bit finalizer (fmix32): a bijection that spreads every input bit over the
 * output, so `mix(key ^ pod)` ranks pods independently for each key (rendezvous weights).
 */
export function mix(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
