// Data sets waiting for their template (NetFlow v9 / IPFIX), bounded in
// count and bytes. One FIFO over everything (oldest first, for the caps and
// for expiry) and, per template key, a queue of that key's sets in arrival
// order, so that a template releases only its own sets and nothing is
// scanned: every operation is O(1) per set. Both are intrusive lists through
// the sets themselves; the oldest set overall is always also the oldest of
// its key, so dropping it from the front of both lists is O(1).

export interface HeldSet<C> {
  /** exporter | domain key | template id */
  key: string;
  data: Buffer;
  /** Where the set's header was in its datagram (for error messages); its records follow 4 bytes on. */
  offset: number;
  context: C;
  at: number;
  prev: HeldSet<C> | null;
  next: HeldSet<C> | null;
  keyNext: HeldSet<C> | null;
}

interface KeyQueue<C> {
  head: HeldSet<C>;
  tail: HeldSet<C>;
}

export class HeldSets<C> {
  private head: HeldSet<C> | null = null;
  private tail: HeldSet<C> | null = null;
  private readonly byKey = new Map<string, KeyQueue<C>>();
  count = 0;
  bytes = 0;

  add(h: HeldSet<C>): void {
    h.prev = this.tail;
    h.next = null;
    h.keyNext = null;
    if (this.tail) this.tail.next = h;
    else this.head = h;
    this.tail = h;
    const q = this.byKey.get(h.key);
    if (q) {
      q.tail.keyNext = h;
      q.tail = h;
    } else this.byKey.set(h.key, { head: h, tail: h });
    this.count++;
    this.bytes += h.data.length;
  }

  /** The oldest set, without removing it. */
  oldest(): HeldSet<C> | null {
    return this.head;
  }

  /** Removes and returns the oldest set. */
  dropOldest(): HeldSet<C> | null {
    const h = this.head;
    if (!h) return null;
    this.unlink(h);
    const q = this.byKey.get(h.key)!;
    // The oldest overall is the oldest of its key.
    if (h.keyNext) q.head = h.keyNext;
    else this.byKey.delete(h.key);
    h.keyNext = null;
    return h;
  }

  /** Removes and returns, oldest first, every set waiting for `key`. */
  take(key: string): HeldSet<C>[] {
    const q = this.byKey.get(key);
    if (!q) return [];
    this.byKey.delete(key);
    const out: HeldSet<C>[] = [];
    for (let h: HeldSet<C> | null = q.head; h; ) {
      const next: HeldSet<C> | null = h.keyNext;
      this.unlink(h);
      h.keyNext = null;
      out.push(h);
      h = next;
    }
    return out;
  }

  private unlink(h: HeldSet<C>): void {
    if (h.prev) h.prev.next = h.next;
    else this.head = h.next;
    if (h.next) h.next.prev = h.prev;
    else this.tail = h.prev;
    h.prev = h.next = null;
    this.count--;
    this.bytes -= h.data.length;
  }
}
