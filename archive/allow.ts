// Who may send traffic logs and flows (traffic.allow). UDP senders can be
// spoofed and anyone who can reach the port could otherwise fill the
// archive, push the real exporters' templates out of the decoder's cache or
// make the evidence say what they like; the receivers drop datagrams and
// connections from everyone else before decoding them.
import type { Config } from '../config/load.ts';
import { parseAddress, parsePrefix, type Prefix } from '../config/cidr.ts';

/**
 * A test of a sender's address (as the socket gives it: IPv4, IPv6,
 * IPv4-mapped IPv6), or null when traffic.allow is not set and everyone may
 * send. Allowed: every inventory device's address (unless
 * `inventory: false`; devices given by host name are not resolved) and
 * every address under `cidrs`. Work per call: one parse and one set lookup
 * per distinct prefix length, no regular expression.
 */
export function senderFilter(config: Config): ((address: string) => boolean) | null {
  const allow = config.settings.traffic?.allow;
  if (!allow) return null;
  const prefixes: Prefix[] = [];
  if (allow.inventory) {
    for (const d of config.devices) {
      const p = parsePrefix(d.address);
      if (typeof p !== 'string') prefixes.push(p);
    }
  }
  for (const c of allow.cidrs) {
    const p = parsePrefix(c);
    // The schema checked them; a failure here is a bug, not the operator's.
    if (typeof p === 'string') throw new Error(`traffic.allow.cidrs: ${p}`);
    prefixes.push(p);
  }
  return allowList(prefixes);
}

/** The test for a list of prefixes: a set of networks per prefix length, longest first. */
export function allowList(prefixes: readonly Prefix[]): (address: string) => boolean {
  const v4 = new Map<number, Set<number>>();
  const v6 = new Map<number, Set<bigint>>();
  for (const p of prefixes) {
    if (p.v === 4) {
      let s = v4.get(p.bits);
      if (!s) v4.set(p.bits, (s = new Set()));
      s.add(p.n as number);
    } else {
      let s = v6.get(p.bits);
      if (!s) v6.set(p.bits, (s = new Set()));
      s.add(p.n as bigint);
    }
  }
  const v4Sets = [...v4.entries()].sort((a, b) => b[0] - a[0]).map(([bits, set]) => ({ div: 2 ** (32 - bits), set }));
  const v6Sets = [...v6.entries()].sort((a, b) => b[0] - a[0]).map(([bits, set]) => ({ shift: BigInt(128 - bits), set }));
  return (address: string): boolean => {
    const a = parseAddress(address);
    if (!a) return false;
    if (a.v === 4) {
      for (const { div, set } of v4Sets) if (set.has(a.n - (a.n % div))) return true;
      return false;
    }
    for (const { shift, set } of v6Sets) if (set.has((a.n >> shift) << shift)) return true;
    return false;
  };
}
