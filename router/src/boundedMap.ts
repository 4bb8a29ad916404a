// A Map with a ceiling on entries and on (estimated) bytes that evicts the least recently used
// entry first. Every cache the router fills from requests uses one, so no stream of distinct
// names can grow its memory without bound.

export class BoundedMap<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private total = 0;

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
    /** Estimated bytes an entry holds, key included. */
    private readonly sizeOf: (key: K, value: V) => number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** Estimated bytes held by all entries. */
  get bytes(): number {
    return this.total;
  }

  /** The value, marked as most recently used. */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (!slot) return undefined;
    this.map.delete(key);
    this.map.set(key, slot);
    return slot.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Stores the value, evicting the least recently used entries to stay within both bounds. */
  set(key: K, value: V): void {
    this.delete(key);
    const bytes = this.sizeOf(key, value);
    if (bytes > this.maxBytes) return; // could never fit: not cached at all
    this.map.set(key, { value, bytes });
    this.total += bytes;
    for (const [oldest, slot] of this.map) {
      if (this.map.size <= this.maxEntries && this.total <= this.maxBytes) break;
      this.map.delete(oldest);
      this.total -= slot.bytes;
    }
  }

  delete(key: K): void {
    const slot = this.map.get(key);
    if (!slot) return;
    this.map.delete(key);
    this.total -= slot.bytes;
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }

  /** Values from least to most recently used. */
  *values(): IterableIterator<V> {
    for (const slot of this.map.values()) yield slot.value;
  }
}
