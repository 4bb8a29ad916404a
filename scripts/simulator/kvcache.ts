// A KV cache of fixed-size token blocks with prefix caching, after vLLM V1's BlockPool
// (vllm/v1/core/block_pool.py) and KVCacheManager (vllm/v1/core/kv_cache_manager.py):
// - a full block is identified by a chain hash of its parent block's hash and its own tokens
//   (kv_cache_utils.hash_block_tokens), so equal hashes mean equal prefixes;
// - blocks referenced by running requests are pinned; a block no request references stays
//   cached (findable by hash) until it is reused, least recently freed first;
// - usage is the fraction of blocks referenced by requests (BlockPool.get_usage: cached but
//   unreferenced blocks count as free).
import { createHash } from "node:crypto";

/** A physical block: its hash once it is full and registered, and how many requests hold it. */
export interface Block {
  hash?: string;
  refs: number;
}

/** Chain hash of a full block: the parent block's hash and this block's tokens. */
export function blockHash(parent: string, tokens: readonly string[]): string {
  return createHash("sha256").update(parent).update(JSON.stringify(tokens)).digest("hex");
}

/** The chain hashes of every full block of `tokens`, extending `hashes` (which it returns). */
export function extendBlockHashes(
  hashes: string[],
  tokens: readonly string[],
  blockSize: number,
): string[] {
  for (let j = hashes.length; (j + 1) * blockSize <= tokens.length; j++) {
    hashes.push(blockHash(hashes[j - 1] ?? "", tokens.slice(j * blockSize, (j + 1) * blockSize)));
  }
  return hashes;
}

export class BlockPool {
  /** Registered full blocks by hash. */
  private readonly cached = new Map<string, Block>();
  /** Cached blocks no request holds, least recently freed first: the eviction order. */
  private readonly evictable = new Set<Block>();
  /** Blocks that hold nothing worth keeping (never used, or freed without a hash). */
  private empty: number;
  /** Cached blocks reused for other tokens. */
  evictions = 0;

  constructor(readonly capacity: number) {
    this.empty = capacity;
  }

  /** Blocks a new allocation can take: empty ones, then evictable cached ones. */
  get free(): number {
    return this.empty + this.evictable.size;
  }

  /** Fraction of blocks held by requests, in [0, 1]. */
  get usage(): number {
    return (this.capacity - this.free) / this.capacity;
  }

  /**
   * The cached blocks of the longest leading run of `hashes`, at most `maxBlocks` of them
   * (KVCacheManager.get_computed_blocks); not yet held.
   */
  lookup(hashes: readonly string[], maxBlocks: number): Block[] {
    const hit: Block[] = [];
    for (const h of hashes.slice(0, Math.max(0, maxBlocks))) {
      const block = this.cached.get(h);
      if (!block) break;
      hit.push(block);
    }
    return hit;
  }

  /** Blocks `hit` would take out of the free pool when held (the evictable ones). */
  takenByHolding(hit: readonly Block[]): number {
    return hit.filter((b) => b.refs === 0).length;
  }

  /** Holds cached blocks (BlockPool.touch): pinned until freed. */
  hold(blocks: readonly Block[]): void {
    for (const b of blocks) {
      if (b.refs++ === 0) this.evictable.delete(b);
    }
  }

  /** New blocks; empty ones first, then the least recently freed cached ones (evicted). */
  allocate(n: number): Block[] {
    if (n > this.free) throw new Error(`allocating ${n} blocks with ${this.free} free`);
    const out: Block[] = [];
    for (let i = 0; i < n; i++) {
      if (this.empty > 0) {
        this.empty--;
        out.push({ refs: 1 });
        continue;
      }
      const victim = this.evictable.values().next().value as Block;
      this.evictable.delete(victim);
      this.cached.delete(victim.hash!);
      this.evictions++;
      out.push({ refs: 1 });
    }
    return out;
  }

  /** Registers a full block under its hash, unless another block already holds that hash. */
  register(block: Block, hash: string): void {
    if (block.hash !== undefined || this.cached.has(hash)) return;
    block.hash = hash;
    this.cached.set(hash, block);
  }

  /**
   * Releases a request's blocks. Freed in reverse order (BlockPool.free_blocks), so a sequence's
   * tail is evicted before its head, which other requests are likelier to share.
   */
  release(blocks: readonly Block[]): void {
    for (const b of [...blocks].reverse()) {
      if (--b.refs > 0) continue;
      if (b.hash !== undefined) this.evictable.add(b);
      else this.empty++;
    }
  }
}
