// 32-bit hashes for routing: cheap enough to run on every request, deterministic across router
// processes (nothing seeded per process), so every replica ranks pods the same way.

/** FNV-1a's 32-bit offset basis (draft-eastlake-fnv, "FNV Constants"). */
export const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `text[0, end)`, continuing from `hash` (a chain). */
export function fnv1a(text: string, hash = FNV_OFFSET, end = text.length): number {
  let h = hash;
  for (let i = 0; i < end; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
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
