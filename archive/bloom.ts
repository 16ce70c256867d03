// An address filter per segment: a Bloom filter over the addresses a
// segment holds in its unsorted address columns (destination and NAT).
// Segments are sorted by source address, so the Parquet reader skips row
// groups for a source address by their min/max statistics; for the other
// columns only a filter like this one can say "not in this segment" without
// reading the column. It is kept in the segment's own Parquet footer (key
// `klaiwatch_addr_bloom`), so the segment's SHA-256 in the manifest covers
// it: a filter altered to hide rows is an altered segment.
//
// Layout (base64): "v1:<k>:<bits>:" then the bit array. Hashes: FNV-1a
// (32-bit) with two offset bases, combined by double hashing
// (Kirsch and Mitzenmacher).
export const BLOOM_KEY = 'klaiwatch_addr_bloom';
/** The columns whose addresses the filter holds: those a segment is not sorted by. */
export const BLOOM_COLUMNS = ['dst_ip', 'nat_ip'] as const;
const BITS_PER_ADDRESS = 8;
const HASHES = 6;

function fnv1a(s: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function positions(s: string, k: number, bits: number, out: Uint32Array): void {
  const h1 = fnv1a(s, 0x811c9dc5);
  const h2 = fnv1a(s, 0x050c5d1f) | 1;
  for (let i = 0; i < k; i++) out[i] = ((h1 + Math.imul(i, h2)) >>> 0) % bits;
}

export function buildBloom(addresses: Iterable<string>, count: number): string {
  const bits = Math.max(64, Math.ceil((count * BITS_PER_ADDRESS) / 8) * 8);
  const arr = new Uint8Array(bits / 8);
  const pos = new Uint32Array(HASHES);
  for (const a of addresses) {
    positions(a, HASHES, bits, pos);
    for (const p of pos) arr[p >>> 3]! |= 1 << (p & 7);
  }
  return `v1:${HASHES}:${bits}:${Buffer.from(arr).toString('base64')}`;
}

export interface Bloom {
  has(address: string): boolean;
}

/** null when the text is not a filter this code wrote (then nothing may be skipped). */
export function parseBloom(text: string): Bloom | null {
  const m = /^v1:(\d+):(\d+):(.*)$/s.exec(text);
  if (!m) return null;
  const k = Number(m[1]);
  const bits = Number(m[2]);
  const arr = Buffer.from(m[3]!, 'base64');
  if (k < 1 || k > 32 || bits < 8 || arr.length * 8 !== bits) return null;
  const pos = new Uint32Array(k);
  return {
    has(address: string): boolean {
      positions(address, k, bits, pos);
      for (const p of pos) if (!(arr[p >>> 3]! & (1 << (p & 7)))) return false;
      return true;
    },
  };
}
