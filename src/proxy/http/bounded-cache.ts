/**
 * A Map with a size bound that evicts the oldest insertion first. The gateway's verification
 * caches are read on every request and written rarely; a plain insertion-ordered Map makes the
 * read a single hash lookup, where a recency-tracking LRU would reorder on every hit. Entries
 * carry their own expiry, checked by the caller.
 */
export class BoundedCache<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  set(key: K, value: V): void {
    if (this.#map.size >= this.#max && !this.#map.has(key)) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
    this.#map.set(key, value);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }
}
