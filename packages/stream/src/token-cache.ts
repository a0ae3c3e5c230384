/**
 * The cache of verified tokens, bounded by entries AND by key bytes so that no sequence of
 * requests can grow it past a fixed amount of memory. Keys are canonical JWTs (see
 * `canonicalBearer`), so one signed token occupies one entry however it was spelled.
 * When full, the oldest entries are evicted first (Map iteration order is insertion order).
 */
export interface TokenCacheLimits {
  /** Most entries kept (default 10,000). */
  maxEntries: number;
  /** Most key bytes kept (default 4 MiB). */
  maxBytes: number;
}

export const DEFAULT_TOKEN_CACHE_LIMITS: Readonly<TokenCacheLimits> = Object.freeze({ maxEntries: 10_000, maxBytes: 4 * 1024 * 1024 });

export class BoundedTokenCache<V> {
  private readonly map = new Map<string, V>();
  private keyBytes = 0;

  constructor(private readonly limits: TokenCacheLimits = DEFAULT_TOKEN_CACHE_LIMITS) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    if (key.length > this.limits.maxBytes) return;
    this.delete(key);
    while (this.map.size > 0 && (this.map.size >= this.limits.maxEntries || this.keyBytes + key.length > this.limits.maxBytes)) {
      const oldest = this.map.keys().next().value as string;
      this.delete(oldest);
    }
    this.map.set(key, value);
    this.keyBytes += key.length;
  }

  delete(key: string): void {
    if (this.map.delete(key)) this.keyBytes -= key.length;
  }

  clear(): void {
    this.map.clear();
    this.keyBytes = 0;
  }

  /** Entries and key bytes held (for tests and metrics). */
  get stats(): { entries: number; bytes: number } {
    return { entries: this.map.size, bytes: this.keyBytes };
  }
}
