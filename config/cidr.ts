// IPv4 and IPv6 addresses and prefixes as numbers, without regular
// expressions: the configuration's CIDRs (traffic.allow.cidrs) are parsed
// here once, and the archive's sender filter parses every sender's address
// with the same code, so the two cannot disagree.

/** An address: IPv4 as a 32-bit number, IPv6 as a 128-bit bigint. IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4. */
export type Address = { v: 4; n: number } | { v: 6; n: bigint };

export interface Prefix {
  v: 4 | 6;
  /** The network's address (host bits zero). */
  n: number | bigint;
  bits: number;
}

/** Dotted-quad IPv4 in s[from, to), or -1. Four decimal parts 0-255, no leading zeros (they read as octal elsewhere). */
function parseV4(s: string, from: number, to: number): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** IPv6 in s[from, to) as a bigint, or null (RFC 4291 section 2.2 text forms, with an IPv4 tail). */
function parseV6(s: string, from: number, to: number): bigint | null {
  if (to - from > 45 || to - from < 2) return null;
  const groups: number[] = [];
  let gap = -1;
  let i = from;
  if (s.charCodeAt(i) === 0x3a) {
    if (s.charCodeAt(i + 1) !== 0x3a) return null;
    gap = 0;
    i += 2;
  }
  while (i < to) {
    let j = i;
    let v = 0;
    while (j < to && j - i < 5) {
      const d = hexDigit(s.charCodeAt(j));
      if (d < 0) break;
      v = v * 16 + d;
      j++;
    }
    if (j < to && s.charCodeAt(j) === 0x2e) {
      // An IPv4 tail: the last 32 bits.
      const v4 = parseV4(s, i, to);
      if (v4 < 0 || groups.length > 6) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
      i = to;
      break;
    }
    if (j === i || j - i > 4) return null;
    groups.push(v);
    if (groups.length > 8) return null;
    i = j;
    if (i === to) break;
    if (s.charCodeAt(i) !== 0x3a) return null;
    i++;
    if (s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return null;
      gap = groups.length;
      i++;
    } else if (i === to) return null; // a trailing single colon
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return null;
  const full = gap < 0 ? groups : [...groups.slice(0, gap), ...new Array<number>(8 - groups.length).fill(0), ...groups.slice(gap)];
  let n = 0n;
  for (const g of full) n = (n << 16n) | BigInt(g);
  return n;
}

/** A sender's address as the socket gave it (a zone such as %eth0 is ignored), or null when it is not one. */
export function parseAddress(s: string): Address | null {
  let to = s.length;
  if (to === 0 || to > 64) return null;
  if (s.charCodeAt(0) !== 0x3a && to <= 15) {
    const v4 = parseV4(s, 0, to);
    if (v4 >= 0) return { v: 4, n: v4 };
  }
  const zone = s.indexOf('%');
  if (zone >= 0) to = zone;
  const n = parseV6(s, 0, to);
  if (n === null) return null;
  if (n >> 32n === 0xffffn) return { v: 4, n: Number(n & 0xffffffffn) };
  return { v: 6, n };
}

/**
 * A configured address or prefix ("10.36.0.0/16", "2001:db8::/32",
 * "10.36.1.1"): the prefix, or a message saying what is wrong with it.
 * Host bits set under the prefix are refused rather than silently cleared.
 */
export function parsePrefix(text: string): Prefix | string {
  const slash = text.indexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  if (addr.includes('%')) return `an address with a zone (${addr}) cannot be allowed; give the address alone`;
  const a = parseAddress(addr);
  if (!a) return `${JSON.stringify(addr)} is not an IPv4 or IPv6 address`;
  // An IPv4-mapped prefix is written as IPv6 and counted in IPv6 bits.
  const mappedOffset = a.v === 4 && addr.includes(':') ? 96 : 0;
  const max = a.v === 4 ? 32 + mappedOffset : 128;
  let bits = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    bits = p.length > 0 && p.length <= 3 && [...p].every((c) => c >= '0' && c <= '9') ? Number(p) : NaN;
    if (!(bits >= 0 && bits <= max)) return `prefix length ${JSON.stringify(p)} must be 0 to ${max}`;
    if (mappedOffset && bits < 96) return `an IPv4-mapped prefix must be /96 or longer; got /${bits}`;
  }
  bits -= mappedOffset;
  if (a.v === 4) {
    const host = bits === 0 ? 0xffffffff : bits === 32 ? 0 : (2 ** (32 - bits) - 1);
    if ((a.n & host) >>> 0 !== 0) return `${text} has bits set after the first ${bits}; write the network, ${formatV4((a.n - (a.n % 2 ** (32 - bits))) >>> 0)}/${bits}`;
    return { v: 4, n: a.n, bits };
  }
  const host = (1n << BigInt(128 - bits)) - 1n;
  if ((a.n & host) !== 0n) return `${text} has bits set after the first ${bits}; write the network address`;
  return { v: 6, n: a.n, bits };
}

function formatV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
