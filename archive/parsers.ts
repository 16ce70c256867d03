// From a log message to the network facts: time, addresses and ports,
// protocol, bytes, NAT translation, user, MAC, URL. One parser per source a
// school network has; each returns false when the message is not its kind.
// A message no parser takes is still archived whole (parser "syslog"):
// nothing received is dropped for not parsing.
//
// Every expression here runs in time linear in the message (issue 13: one
// crafted 64 KB datagram froze the process for seconds by backtracking):
// no two quantifiers that overlap on the same characters follow each other
// unbounded, each unanchored expression starts with a literal, and what
// could not be written so is tokenised by hand (indexOf, char codes). Only
// the first PARSE_LIMIT characters of a message are parsed (the facts are
// at its start); `raw` keeps all of it, and the record's flags say so.
// test/fixtures/hostile/syslog holds an input built against each pattern.
import { isIP } from 'node:net';
import { parseSyslog, withoutEol, isSpace, isBreak, type SyslogMessage, type SyslogOptions } from './syslog.ts';
import { emptyRecord, normalMac, protoNumber, FLAG_PARSE_LIMIT, type TrafficRecord } from './record.ts';

/** Characters of a message the parsers read (UTF-16 units; the header and the facts come first). */
export const PARSE_LIMIT = 4096;

type Parser = (text: string, msg: string, r: TrafficRecord) => boolean;

const MAC = '[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}';
const macRe = new RegExp(`^${MAC}$`);

// ------------------------------------------------------------ hand tokenising

const isWord = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
const isLetter = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
/** [\w-] */
const isName = (c: number) => isWord(c) || c === 0x2d;
/** [\d.] */
const isDotted = (c: number) => isDigit(c) || c === 0x2e;
/** [0-9A-Fa-f:] */
const isColoned = (c: number) => isHex(c) || c === 0x3a;

/** The end of the run of characters `ok` takes from i on. */
function run(s: string, i: number, ok: (c: number) => boolean, end = s.length): number {
  while (i < end && ok(s.charCodeAt(i))) i++;
  return i;
}

/** The start of the run of characters `ok` takes that ends at i (not before `from`). */
function runBack(s: string, i: number, ok: (c: number) => boolean, from = 0): number {
  while (i > from && ok(s.charCodeAt(i - 1))) i--;
  return i;
}

const notSpace = (c: number) => !isSpace(c);

/** A MAC address (the MAC pattern: six hex pairs, ":" or "-" between) at s[i, i + 17). */
function macAt(s: string, i: number): boolean {
  if (i + 17 > s.length) return false;
  for (let k = 0; k < 17; k++) {
    const c = s.charCodeAt(i + k);
    if (k % 3 === 2 ? c !== 0x3a && c !== 0x2d : !isHex(c)) return false;
  }
  return true;
}

/**
 * indexOf for a caller whose starting points only grow: a stretch of the
 * text is searched once however many times it is asked about (asking for
 * ", " after each of many candidates would search the same text again each
 * time: quadratic).
 */
class Seek {
  private readonly s: string;
  private readonly needle: string;
  private from = -1;
  private at = -1;
  constructor(s: string, needle: string) {
    this.s = s;
    this.needle = needle;
  }
  next(from: number): number {
    if (from >= this.from && (this.at < 0 ? this.from >= 0 : this.at >= from)) return this.at;
    this.from = from;
    this.at = this.s.indexOf(this.needle, from);
    return this.at;
  }
}

/** The next line break (where "." stops) at or after i, or the end; remembered like Seek. */
class Breaks {
  private readonly s: string;
  private from = Infinity;
  private at = -1;
  constructor(s: string) {
    this.s = s;
  }
  next(i: number): number {
    if (i >= this.from && this.at >= i) return this.at;
    let k = i;
    while (k < this.s.length && !isBreak(this.s.charCodeAt(k))) k++;
    this.from = i;
    this.at = k;
    return k;
  }
}

/** Where the last line starts (after the last line break): what "(.*)$" can match in. */
function lastLine(s: string): number {
  let i = s.length;
  while (i > 0 && !isBreak(s.charCodeAt(i - 1))) i--;
  return i;
}

/** "1.2.3.4:80", "[2001:db8::1]:443", "1.2.3.4" (ICMP), "10.0.0.1/1772" (Cisco). */
function endpoint(s: string, sep = ':'): { ip: string | null; port: number | null } {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { ip: v6[1]!, port: v6[2] ? Number(v6[2]) : null };
  const i = s.lastIndexOf(sep);
  if (i > 0 && isIP(s.slice(0, i)) && /^\d+$/.test(s.slice(i + 1))) return { ip: s.slice(0, i), port: Number(s.slice(i + 1)) };
  return { ip: isIP(s) ? s : null, port: null };
}

// ------------------------------------------------------------ MikroTik RouterOS

// Bounded: an address with its port is at most 47 characters, a protocol's flags a few dozen.
const ROS_ADDR = '\\[[0-9A-Fa-f:.]{1,45}\\](?::\\d{1,5})?|[\\d.]{1,15}(?::\\d{1,5})?';
const ROS_FLOW = new RegExp(`proto (\\w{1,16})(?: \\(([^)]{0,64})\\))?, (${ROS_ADDR})->(${ROS_ADDR})`);
const ROS_TOPICS = /^([a-z]+(?:,[a-z]+)+)\s+/;
const ROS_MAC = new RegExp(`src-mac (${MAC})`);
const ROS_LEN = /, len (\d{1,10})/;

/**
 * The rule's chain and label: "[label] chain: in:IF out:IF, " (the label
 * optional), the first such in the text; what
 * /(?:^|\s)(?:(\S.*?):?\s)?([\w-]+):\s+in:(\S+) out:(.+?), / took, by hand:
 * that expression took 4 seconds on 50 KB.
 */
function rosChain(t: string): { label: string | null; chain: string } | null {
  const comma = new Seek(t, ', ');
  const breaks = new Breaks(t);
  for (let q = t.indexOf('in:'); q >= 0; q = t.indexOf('in:', q + 1)) {
    // "chain:", white space, then "in:"; the chain a word of its own.
    const c = runBack(t, q, isSpace);
    if (c === q || c === 0 || t.charCodeAt(c - 1) !== 0x3a) continue;
    const w = runBack(t, c - 1, isName);
    if (w === c - 1 || (w > 0 && !isSpace(t.charCodeAt(w - 1)))) continue;
    // "in:IF out:" then something, then ", " on the same line.
    const e = run(t, q + 3, notSpace);
    if (e === q + 3 || !t.startsWith(' out:', e)) continue;
    const end = comma.next(e + 6);
    if (end < 0) return null;
    if (breaks.next(e + 5) < end) continue;
    // The label: the line's text before the chain, without the ":" that may end it.
    const from = run(t, runBack(t, w, (k) => !isBreak(k)), isSpace);
    let label = from < w - 1 ? t.slice(from, w - 1) : null;
    if (label && label.length > 1 && label.endsWith(':')) label = label.slice(0, -1);
    return { label, chain: t.slice(w, c - 1) };
  }
  return null;
}

/** /\bin:\S+ out:/, by hand: a " out:" whose word before it holds "in:" at a word's start and something after. */
function rosInOut(t: string): boolean {
  for (let o = t.indexOf(' out:'); o >= 0; o = t.indexOf(' out:', o + 1)) {
    for (let k = runBack(t, o, notSpace); k + 3 < o; k++) {
      if (t.charCodeAt(k) === 0x69 && t.startsWith('in:', k) && (k === 0 || !isWord(t.charCodeAt(k - 1)))) return true;
    }
  }
  return false;
}

/** The end of a RouterOS address at s[i] ("1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:443"), or -1: what ROS_ADDR takes, by hand. */
function rosAddrEnd(s: string, i: number): number {
  let e: number;
  if (s.charCodeAt(i) === 0x5b) {
    e = run(s, i + 1, (c) => isColoned(c) || c === 0x2e, Math.min(s.length, i + 46));
    if (e === i + 1 || s.charCodeAt(e) !== 0x5d) return -1;
    e++;
  } else {
    e = run(s, i, isDotted, Math.min(s.length, i + 15));
    if (e === i) return -1;
  }
  if (s.charCodeAt(e) === 0x3a) {
    const p = run(s, e + 1, isDigit, Math.min(s.length, e + 6));
    if (p > e + 1) e = p;
  }
  return e;
}

/** "A->B" at s[i] (both RouterOS addresses): their ends, or null. */
function rosPair(s: string, i: number): [number, number] | null {
  const a = rosAddrEnd(s, i);
  if (a < 0 || !s.startsWith('->', a)) return null;
  const b = rosAddrEnd(s, a + 2);
  return b < 0 ? null : [a, b];
}

interface RosNat {
  src: string;
  /** The source after src-nat. */
  srcTo: string | null;
  dst: string;
  /** The destination after dst-nat. */
  dstTo: string | null;
}

/**
 * The connection's NAT, the first "NAT SRC->DST," in the text where either
 * side is "(BEFORE->AFTER)": "NAT (10.0.0.2:5000->100.64.0.1:6000)->1.1.1.1:443"
 * (src-nat), "NAT 203.0.113.9:51522->(198.51.100.2:8080->10.36.1.20:80)"
 * (dst-nat), both at once. Each try reads at most two addresses a side.
 */
function rosNat(t: string): RosNat | null {
  for (let i = t.indexOf('NAT '); i >= 0; i = t.indexOf('NAT ', i + 4)) {
    let p = i + 4;
    let src: string;
    let srcTo: string | null = null;
    if (t.charCodeAt(p) === 0x28) {
      const pr = rosPair(t, p + 1);
      if (!pr || t.charCodeAt(pr[1]) !== 0x29) continue;
      src = t.slice(p + 1, pr[0]);
      srcTo = t.slice(pr[0] + 2, pr[1]);
      p = pr[1] + 1;
    } else {
      const e = rosAddrEnd(t, p);
      if (e < 0) continue;
      src = t.slice(p, e);
      p = e;
    }
    if (!t.startsWith('->', p)) continue;
    p += 2;
    let dst: string;
    let dstTo: string | null = null;
    if (t.charCodeAt(p) === 0x28) {
      const pr = rosPair(t, p + 1);
      if (!pr || t.charCodeAt(pr[1]) !== 0x29) continue;
      dst = t.slice(p + 1, pr[0]);
      dstTo = t.slice(pr[0] + 2, pr[1]);
      p = pr[1] + 1;
    } else {
      const e = rosAddrEnd(t, p);
      if (e < 0) continue;
      dst = t.slice(p, e);
      p = e;
    }
    if ((srcTo === null && dstTo === null) || (p < t.length && t.charCodeAt(p) !== 0x2c)) continue;
    return { src, srcTo, dst, dstTo };
  }
  return null;
}

const mikrotikFirewall: Parser = (text, _msg, r) => {
  if (!text.includes('proto ')) return false;
  const f = ROS_FLOW.exec(text);
  if (!f || !rosInOut(text)) return false;
  r.parser = 'mikrotik-firewall';
  r.proto = protoNumber(f[1]!);
  const src = endpoint(f[3]!);
  const dst = endpoint(f[4]!);
  r.src_ip = src.ip;
  r.src_port = src.port;
  r.dst_ip = dst.ip;
  r.dst_port = dst.port;
  const nat = text.includes('NAT ') ? rosNat(text) : null;
  if (nat) {
    // The connection as it was first addressed: the source before src-nat, the destination before dst-nat.
    const from = endpoint(nat.src);
    const to = endpoint(nat.dst);
    if (from.ip) [r.src_ip, r.src_port] = [from.ip, from.port];
    if (to.ip) [r.dst_ip, r.dst_port] = [to.ip, to.port];
    if (nat.srcTo !== null) {
      const e = endpoint(nat.srcTo);
      [r.nat_ip, r.nat_port] = [e.ip, e.port];
    }
    if (nat.dstTo !== null) {
      const e = endpoint(nat.dstTo);
      [r.post_nat_dst_ip, r.post_nat_dst_port] = [e.ip, e.port];
    }
  }
  const mac = ROS_MAC.exec(text);
  if (mac) r.mac = normalMac(mac[1]!);
  const len = ROS_LEN.exec(text);
  if (len) r.bytes = Number(len[1]);
  r.packets = 1;
  const chain = rosChain(text.replace(ROS_TOPICS, ''));
  if (chain) r.action = chain.label ? `${chain.label.replace(/^\[|\]$/g, '')} ${chain.chain}` : chain.chain;
  return true;
};

/**
 * "SERVER assigned|deassigned ADDR to|from|for MAC [CLIENT]", the first in
 * the text: what /(\S+) (assigned|deassigned) ([\d.]+|[0-9A-Fa-f:]+)
 * (?:to|from|for) (MAC)(?:\s+(\S+))?/ took, by hand (it took 15 seconds on 64 KB).
 */
function rosLease(t: string): { server: string; action: string; ip: string; mac: string; client: string | null } | null {
  for (let a = t.indexOf('assigned '); a >= 0; a = t.indexOf('assigned ', a + 1)) {
    const de = a >= 2 && t.startsWith('de', a - 2);
    const sp = de ? a - 3 : a - 1;
    if (sp < 1 || t.charCodeAt(sp) !== 0x20) continue;
    const s = runBack(t, sp, notSpace);
    if (s === sp) continue;
    const b = a + 9;
    let e = run(t, b, isDotted);
    if (e === b || t.charCodeAt(e) !== 0x20) e = run(t, b, isColoned);
    if (e === b || t.charCodeAt(e) !== 0x20) continue;
    const word = t.startsWith('to ', e + 1) ? 3 : t.startsWith('from ', e + 1) ? 5 : t.startsWith('for ', e + 1) ? 4 : 0;
    const m = e + 1 + word;
    if (word === 0 || !macAt(t, m)) continue;
    const ws = run(t, m + 17, isSpace);
    const ce = ws > m + 17 ? run(t, ws, notSpace) : ws;
    return { server: t.slice(s, sp), action: de ? 'deassigned' : 'assigned', ip: t.slice(b, e), mac: t.slice(m, m + 17), client: ce > ws ? t.slice(ws, ce) : null };
  }
  return null;
}

const mikrotikDhcp: Parser = (text, _msg, r) => {
  if (!text.includes('assigned ')) return false;
  const m = rosLease(text);
  if (!m || !(text.includes('dhcp') || ROS_TOPICS.test(text))) return false;
  r.parser = 'mikrotik-dhcp';
  r.client = m.client;
  r.src_ip = m.ip;
  r.mac = normalMac(m.mac);
  r.action = m.action;
  r.app = r.app ?? m.server;
  return true;
};

const HOTSPOT_EVENTS = ['logged in', 'logged out', 'login failed'];

/**
 * "USER (ADDR): EVENT[: DETAIL]" ending the text: what
 * /(?:^|\s)(\S+) \(([\d.]+|[0-9A-Fa-f:]+)\): (logged in|logged out|login failed|trying to log in by [\w-]+)(?:: (.*))?$/
 * took, by hand (each "): " made it read to the end again).
 */
function rosHotspot(t: string): { user: string; ip: string; action: string } | null {
  const line = lastLine(t);
  for (let c = t.indexOf('): ', line); c >= 0; c = t.indexOf('): ', c + 1)) {
    const a = runBack(t, c, (k) => isDotted(k) || isColoned(k), line);
    if (a === c || a < 2 || t.charCodeAt(a - 1) !== 0x28 || t.charCodeAt(a - 2) !== 0x20) continue;
    if (run(t, a, isDotted, c) !== c && run(t, a, isColoned, c) !== c) continue;
    const u = runBack(t, a - 2, notSpace);
    if (u === a - 2) continue;
    const p = c + 3;
    let end = -1;
    for (const ev of HOTSPOT_EVENTS) if (t.startsWith(ev, p)) end = p + ev.length;
    if (end < 0 && t.startsWith('trying to log in by ', p)) {
      end = run(t, p + 20, isName);
      if (end === p + 20) end = -1;
    }
    if (end < 0 || (end < t.length && !t.startsWith(': ', end))) continue;
    // "(.*)" is the rest of the line; an empty one adds nothing.
    const rest = end + 2 < t.length ? t.slice(end + 2) : '';
    return { user: t.slice(u, a - 2), ip: t.slice(a, c), action: t.slice(p, end) + (rest ? `: ${rest}` : '') };
  }
  return null;
}

const mikrotikHotspot: Parser = (text, _msg, r) => {
  if (!text.includes('hotspot') || !text.includes('): ')) return false;
  const m = rosHotspot(text);
  if (!m) return false;
  r.parser = 'mikrotik-hotspot';
  r.user = m.user;
  r.src_ip = m.ip;
  r.action = m.action;
  return true;
};

/**
 * RouterOS logins to the router itself: "login failure for user X from A via
 * S" (system,error,critical; X may be empty), "user X logged in|out from A via
 * S" (system,info,account); S is winbox, ssh, telnet, web, api, ftp ... The
 * first such in the text; each candidate reads one word either side.
 */
function rosLogin(t: string): { user: string; ip: string; action: string } | null {
  const tail = (u: string, at: number, event: string) => {
    const a = run(t, at, notSpace);
    if (a === at || !t.startsWith(' via ', a) || !isIP(t.slice(at, a))) return null;
    const v = run(t, a + 5, isName);
    if (v === a + 5) return null;
    return { user: u, ip: t.slice(at, a), action: `${event} via ${t.slice(a + 5, v)}` };
  };
  for (let i = t.indexOf('login failure for user '); i >= 0; i = t.indexOf('login failure for user ', i + 1)) {
    const u = run(t, i + 23, notSpace);
    if (!t.startsWith(' from ', u)) continue;
    const m = tail(t.slice(i + 23, u), u + 6, 'login failure');
    if (m) return m;
  }
  for (const event of ['logged in', 'logged out']) {
    const key = ` ${event} from `;
    for (let i = t.indexOf(key); i >= 0; i = t.indexOf(key, i + 1)) {
      const u = runBack(t, i, notSpace);
      if (u === i || u < 5 || !t.startsWith('user ', u - 5) || (u > 5 && !isSpace(t.charCodeAt(u - 6)))) continue;
      const m = tail(t.slice(u, i), i + key.length, event);
      if (m) return m;
    }
  }
  return null;
}

const mikrotikLogin: Parser = (text, _msg, r) => {
  if (!text.includes(' from ') || !(text.includes('login failure for user ') || text.includes(' logged in from ') || text.includes(' logged out from '))) return false;
  const m = rosLogin(text);
  if (!m) return false;
  r.parser = 'mikrotik-login';
  r.user = m.user === '' ? null : m.user;
  r.src_ip = m.ip;
  r.action = m.action;
  return true;
};

// ---------------------------------------------------------------- ISC / Kea DHCP

const iscDhcp: Parser = (_text, msg, r) => {
  const m = /^(DHCP[A-Z]+) (?:(on|for|of) ([\d.]+) (?:\(([\d.]+)\) )?(?:to|from) (\S+)|from (\S+))(?: \(([^)]*)\))?(?: via (\S+))?/.exec(msg);
  if (!m) return false;
  r.parser = 'isc-dhcp';
  r.action = m[1]!;
  if (m[3]) r.src_ip = m[3];
  const who = m[5] ?? m[6]!;
  if (macRe.test(who)) r.mac = normalMac(who);
  else if (isIP(who)) r.src_ip = r.src_ip ?? who;
  if (m[7]) r.client = m[7];
  const lease = /lease-duration (\d+)/.exec(msg);
  if (lease && r.dev_ms !== null) {
    r.start_ms = r.dev_ms;
    r.end_ms = r.dev_ms + Number(lease[1]) * 1000;
  }
  return true;
};

const KEA_EVENTS = ['DHCP4_LEASE_ALLOC', 'DHCP4_LEASE_ADVERT', 'DHCP4_RELEASE', 'DHCP4_DECLINE', 'DHCP4_LEASE_EXPIRED'];

/**
 * "EVENT ... [hwtype=N MAC] ... lease|address ADDR [... for N seconds]" on
 * one line: what /(EVENT)\b.*?\[hwtype=\d+ (MAC)\].*?(?:lease|address)
 * ([\d.]+)(?:.*? for (\d+) seconds)?/ took, by hand (its lazy ".*?"s
 * within each other took 13 seconds on 64 KB).
 */
function keaLease(t: string): { action: string; mac: string; ip: string; seconds: string | null } | null {
  const hw = new Seek(t, '[hwtype=');
  const lease = new Seek(t, 'lease ');
  const address = new Seek(t, 'address ');
  const forS = new Seek(t, ' for ');
  const breaks = new Breaks(t);
  for (let i = t.indexOf('DHCP4_'); i >= 0; ) {
    const action = KEA_EVENTS.find((a) => t.startsWith(a, i) && !isWord(t.charCodeAt(i + a.length)));
    if (!action) {
      i = t.indexOf('DHCP4_', i + 1);
      continue;
    }
    const eol = breaks.next(i);
    // The first [hwtype=N MAC] after it on the line; had a later one led to a match, so would this one.
    let d = -1;
    for (let h = hw.next(i + action.length); h >= 0 && h < eol; h = hw.next(h + 1)) {
      const n = run(t, h + 8, isDigit, eol);
      if (n > h + 8 && t.charCodeAt(n) === 0x20 && macAt(t, n + 1) && t.charCodeAt(n + 18) === 0x5d) {
        d = n;
        break;
      }
    }
    if (d >= 0) {
      const mac = t.slice(d + 1, d + 18);
      // The first "lease ADDR" or "address ADDR" after it.
      let x = d + 19;
      while (x < eol) {
        const l = lease.next(x);
        const ad = address.next(x);
        const at = l < 0 ? ad : ad < 0 ? l : Math.min(l, ad);
        if (at < 0 || at >= eol) break;
        const b = at + (at === l ? 6 : 8);
        const e = run(t, b, isDotted, eol);
        if (e > b) {
          // Then, optionally, the first " for N seconds" after the address.
          let seconds: string | null = null;
          for (let f = forS.next(e); f >= 0 && f < eol; f = forS.next(f + 1)) {
            const n = run(t, f + 5, isDigit, eol);
            if (n > f + 5 && t.startsWith(' seconds', n)) {
              seconds = t.slice(f + 5, n);
              break;
            }
          }
          return { action, mac, ip: t.slice(b, e), seconds };
        }
        x = at + 1;
      }
    }
    // Nothing on this line: a later event on it would find nothing either.
    i = eol < t.length ? t.indexOf('DHCP4_', eol) : -1;
  }
  return null;
}

const keaDhcp: Parser = (_text, msg, r) => {
  if (!msg.includes('DHCP4_')) return false;
  const m = keaLease(msg);
  if (!m) return false;
  r.parser = 'kea-dhcp';
  r.action = m.action;
  r.mac = normalMac(m.mac);
  r.src_ip = m.ip;
  if (m.seconds && r.dev_ms !== null) {
    r.start_ms = r.dev_ms;
    r.end_ms = r.dev_ms + Number(m.seconds) * 1000;
  }
  return true;
};

// ---------------------------------------------------------------- FreeRADIUS

const RADIUS_EVENTS = ['Login OK', 'Login incorrect', 'Invalid user'];

/**
 * "EVENT[ (WHY)]: [USER][ (from client NAS port N[ cli STATION]...)]": what
 * /(Login OK|Login incorrect|Invalid user)(?: \([^)]*\))?: \[([^\]]*)\](?:\s*\(from client (\S+)
 * port (\S+)(?: cli (\S+))?[^)]*\))?/ took, by hand (each "[" without its "]" made it read to the end again).
 */
function radiusLogin(t: string): { action: string; user: string; client: string | null; cli: string | null } | null {
  const close = new Seek(t, ')');
  const bracket = new Seek(t, ']');
  const login = new Seek(t, 'Login ');
  const invalid = new Seek(t, 'Invalid user');
  for (let i = 0; ; ) {
    const l = login.next(i);
    const v = invalid.next(i);
    const at = l < 0 ? v : v < 0 ? l : Math.min(l, v);
    if (at < 0) return null;
    i = at + 1;
    const action = RADIUS_EVENTS.find((e) => t.startsWith(e, at));
    if (!action) continue;
    let p = at + action.length;
    if (t.startsWith(' (', p)) {
      const c = close.next(p + 2);
      if (c < 0 || !t.startsWith(': [', c + 1)) continue;
      p = c + 4;
    } else if (t.startsWith(': [', p)) p += 3;
    else continue;
    const b = bracket.next(p);
    if (b < 0) return null;
    const m = { action, user: t.slice(p, b), client: null as string | null, cli: null as string | null };
    // The optional "(from client NAS port N[ cli STATION] ...)": it needs a ")" after the port.
    const f = run(t, b + 1, isSpace);
    if (!t.startsWith('(from client ', f)) return m;
    const n = run(t, f + 13, notSpace);
    if (n === f + 13 || !t.startsWith(' port ', n)) return m;
    const pe = run(t, n + 6, notSpace);
    const last = t.lastIndexOf(')');
    if (pe === n + 6) return m;
    if (t.startsWith(' cli ', pe)) {
      const ce = Math.min(run(t, pe + 5, notSpace), last);
      if (ce > pe + 5) return { ...m, client: t.slice(f + 13, n), cli: t.slice(pe + 5, ce) };
    }
    // Without the station: a ")" after the port's first character.
    if (last > n + 6) m.client = t.slice(f + 13, n);
    return m;
  }
}

const radiusAuth: Parser = (_text, msg, r) => {
  if (!msg.includes('Login ') && !msg.includes('Invalid user')) return false;
  const m = radiusLogin(msg);
  if (!m) return false;
  r.parser = 'radius';
  r.action = m.action;
  r.user = m.user;
  r.client = m.client;
  const cli = m.cli;
  if (cli) {
    if (macRe.test(cli)) r.mac = normalMac(cli);
    else if (isIP(cli)) r.src_ip = cli;
  }
  return true;
};

/**
 * "Ignoring request to TYPE address A port N [bound to server S] from unknown
 * client C port P [proto X]" (FreeRADIUS 3; version 2 wrote "to TYPE port N"):
 * a NAS the server does not know sent a request, which was dropped. Read word
 * by word from the first "Ignoring request to ".
 */
function radiusUnknownClient(t: string): { type: string; address: string | null; port: string | null; client: string; clientPort: string | null; proto: string | null } | null {
  const i = t.indexOf('Ignoring request to ');
  if (i < 0) return null;
  const word = (at: number) => t.slice(at, run(t, at, notSpace));
  const type = word(i + 20);
  if (type === '') return null;
  let p = i + 20 + type.length;
  let address: string | null = null;
  if (t.startsWith(' address ', p)) {
    address = word(p + 9);
    p += 9 + address.length;
  }
  let port: string | null = null;
  if (t.startsWith(' port ', p)) {
    port = word(p + 6);
    p += 6 + port.length;
  }
  const f = t.indexOf(' from unknown client ', p);
  if (f < 0) return null;
  const client = word(f + 21);
  if (!isIP(client)) return null;
  p = f + 21 + client.length;
  let clientPort: string | null = null;
  if (t.startsWith(' port ', p)) {
    clientPort = word(p + 6);
    p += 6 + clientPort.length;
  }
  const proto = t.startsWith(' proto ', p) ? word(p + 7) : null;
  return { type, address, port, client, clientPort, proto };
}

const radiusUnknown: Parser = (_text, msg, r) => {
  if (!msg.includes('from unknown client ')) return false;
  const m = radiusUnknownClient(msg);
  if (!m) return false;
  r.parser = 'radius';
  r.action = `unknown client (${m.type})`;
  r.src_ip = m.client;
  r.src_port = m.clientPort && /^\d{1,5}$/.test(m.clientPort) ? Number(m.clientPort) : null;
  r.dst_ip = m.address && isIP(m.address) ? m.address : null;
  r.dst_port = m.port && /^\d{1,5}$/.test(m.port) ? Number(m.port) : null;
  if (m.proto) r.proto = protoNumber(m.proto);
  return true;
};

/**
 * `Name = value` pairs, in order: what /([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\n\t]*)/g
 * took, by hand from each "=" (that expression tried a name at each letter
 * of a long word: 3.7 seconds on 64 KB).
 */
function radiusAttributes(t: string): Map<string, string> {
  const attrs = new Map<string, string>();
  let pos = 0;
  for (let e = t.indexOf('='); e >= 0; e = t.indexOf('=', Math.max(pos, e + 1))) {
    // The name: from the first letter of the word before "=" (white space between allowed).
    const j = runBack(t, e, isSpace, pos);
    const k = runBack(t, j, isName, pos);
    let s = k;
    while (s < j && !isLetter(t.charCodeAt(s))) s++;
    if (s === j) continue;
    const v = run(t, e + 1, isSpace);
    let end = t.charCodeAt(v) === 0x22 ? quotedEnd(t, v) : -1;
    if (end < 0) {
      end = v;
      while (end < t.length) {
        const c = t.charCodeAt(end);
        if (c === 0x2c || c === 0x0a || c === 0x09) break;
        end++;
      }
    }
    attrs.set(t.slice(s, j), t.slice(v, end).trim().replace(/^"|"$/g, ''));
    pos = end;
  }
  return attrs;
}

/** The end (after the closing quote) of the quoted string at s[i], backslash escapes honoured; -1 when it has none. */
function quotedEnd(s: string, i: number): number {
  for (let k = i + 1; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 0x22) return k + 1;
    if (c === 0x5c) {
      if (k + 1 >= s.length || isBreak(s.charCodeAt(k + 1))) return -1;
      k++;
    }
  }
  return -1;
}

/** Accounting attributes, as a detail-file record or a linelog line: `Name = value`, one per line or separated by commas. */
const radiusAccounting: Parser = (text, _msg, r) => {
  if (!/\bAcct-Status-Type\s*=/.test(text)) return false;
  const attrs = radiusAttributes(text);
  r.parser = 'radius-acct';
  r.action = attrs.get('Acct-Status-Type') ?? null;
  r.user = attrs.get('User-Name') ?? null;
  r.src_ip = attrs.get('Framed-IP-Address') ?? null;
  const calling = attrs.get('Calling-Station-Id');
  if (calling && macRe.test(calling)) r.mac = normalMac(calling);
  r.client = attrs.get('NAS-Identifier') ?? attrs.get('NAS-IP-Address') ?? null;
  const octets = (name: string) => Number(attrs.get(name) ?? 0) + Number(attrs.get(name.replace('Octets', 'Gigawords')) ?? 0) * 2 ** 32;
  if (attrs.has('Acct-Input-Octets') || attrs.has('Acct-Output-Octets')) r.bytes = octets('Acct-Input-Octets') + octets('Acct-Output-Octets');
  const ts = Number(attrs.get('Event-Timestamp') ?? attrs.get('Timestamp'));
  if (Number.isFinite(ts) && ts > 0) r.dev_ms = ts * 1000;
  const session = Number(attrs.get('Acct-Session-Time'));
  if (r.dev_ms !== null && Number.isFinite(session) && session >= 0 && attrs.has('Acct-Session-Time')) {
    r.start_ms = r.dev_ms - session * 1000;
    r.end_ms = r.dev_ms;
  }
  return true;
};

// ------------------------------------------------------------------ web proxies

const squid: Parser = (_text, msg, r) => {
  const c = msg.charCodeAt(0);
  if (!(c >= 0x30 && c <= 0x39) && c !== 0x20) return false;
  const m = /^(\d{9,10}\.\d{1,3})\s+(\d+) (\S+) ([A-Z_]+)\/(\d{3}) (\d+) (\S+) (\S+) (\S+) ([A-Z_]+)\/(\S+)(?: (\S+))?/.exec(msg.trim());
  if (!m || !isIP(m[3]!)) return false;
  r.parser = 'squid';
  r.dev_ms = Math.round(Number(m[1]) * 1000);
  r.start_ms = r.dev_ms - Number(m[2]);
  r.end_ms = r.dev_ms;
  r.src_ip = m[3]!;
  r.action = `${m[7]} ${m[4]}/${m[5]}`;
  r.bytes = Number(m[6]);
  r.url = m[8]!;
  r.user = m[9] === '-' ? null : m[9]!;
  if (isIP(m[11]!)) r.dst_ip = m[11]!;
  const port = /^[a-z]+:\/\/[^/]*?:(\d+)/i.exec(m[8]!) ?? /^[^/:]+:(\d+)$/.exec(m[8]!);
  r.dst_port = port ? Number(port[1]) : /^https:/i.test(m[8]!) ? 443 : /^http:/i.test(m[8]!) ? 80 : null;
  r.proto = 6;
  return true;
};

const MONTH3: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

/** nginx and Apache "combined" / "common" access logs. */
const webAccess: Parser = (_text, msg, r) => {
  if (!msg.includes('] "')) return false;
  // The URL ends at white space or a quote (nginx and Apache write a quote in it as \x22): "(\S+)[^"]*" read it again for each length.
  const m = /^(\S+) \S+ (\S+) \[(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] "(\S+) ([^\s"]+)(?:\s[^"]*)?" (\d{3}) (\d+|-)/.exec(msg);
  if (!m || !isIP(m[1]!)) return false;
  r.parser = 'web-access';
  r.src_ip = m[1]!;
  r.user = m[2] === '-' ? null : m[2]!;
  const off = (Number(m[9]!.slice(1, 3)) * 60 + Number(m[9]!.slice(3))) * (m[9]![0] === '-' ? -1 : 1);
  r.dev_ms = Date.UTC(Number(m[5]), MONTH3[m[4]!] ?? 0, Number(m[3]), Number(m[6]), Number(m[7]), Number(m[8])) - off * 60_000;
  r.action = `${m[10]} ${m[12]}`;
  r.url = m[11]!;
  r.bytes = m[13] === '-' ? 0 : Number(m[13]);
  r.proto = 6;
  return true;
};

// ------------------------------------------------------------ firewalls

/** pfSense / OPNsense filterlog: comma-separated, https://docs.netgate.com/pfsense/en/latest/monitoring/logs/raw-filter-format.html */
const filterlog: Parser = (_text, msg, r) => {
  if (!msg.includes(',match,') && !/,(pass|block|reject),/.test(msg)) return false;
  // The fields read are the first 22 (an IPv4 TCP line's ports).
  const f = msg.trim().split(',', 32);
  if (f.length < 9 || !/^(pass|block|reject)$/.test(f[6]!) || !/^[46]$/.test(f[8]!)) return false;
  const src = f[f[8] === '4' ? 18 : 15];
  if (src !== undefined && !isIP(src)) return false;
  r.parser = 'filterlog';
  r.action = `${f[6]} ${f[7]} ${f[4]}`;
  let i: number;
  let protoName: string;
  if (f[8] === '4') {
    // tos, ecn, ttl, id, offset, flags, protonum, protoname, length, src, dst
    r.proto = Number(f[15]);
    protoName = f[16] ?? '';
    r.bytes = Number(f[17]);
    r.src_ip = f[18] ?? null;
    r.dst_ip = f[19] ?? null;
    i = 20;
  } else {
    // class, flowlabel, hoplimit, protoname, protonum, length, src, dst
    protoName = f[12] ?? '';
    r.proto = Number(f[13]);
    r.bytes = Number(f[14]);
    r.src_ip = f[15] ?? null;
    r.dst_ip = f[16] ?? null;
    i = 17;
  }
  if (/^(tcp|udp)$/i.test(protoName)) {
    r.src_port = Number(f[i]) || null;
    r.dst_port = Number(f[i + 1]) || null;
  }
  r.packets = 1;
  return true;
};

/** "%ASA-L-NNNNNN: BODY" on the last line: what /%ASA-\d-(\d{6}): (.*)$/ took, by hand (it read every line to its end for each "%ASA-"). */
function asaId(t: string): { id: string; body: string } | null {
  for (let i = t.indexOf('%ASA-', lastLine(t)); i >= 0; i = t.indexOf('%ASA-', i + 1)) {
    if (isDigit(t.charCodeAt(i + 5)) && t.charCodeAt(i + 6) === 0x2d && run(t, i + 7, isDigit, i + 13) === i + 13 && t.startsWith(': ', i + 13)) return { id: t.slice(i + 7, i + 13), body: t.slice(i + 15) };
  }
  return null;
}

interface AsaSide {
  real: { ip: string | null; port: number | null };
  /** The address the other side saw (the parenthesised one), when given. */
  mapped: { ip: string | null; port: number | null } | null;
  /** An identity-firewall user, "(LOCAL\\jdoe)", when given. */
  user: string | null;
}

/**
 * "Built|Teardown [inbound|outbound] TCP|UDP connection ID for IF:ADDR/PORT
 * [(MAPPED/PORT)][(USER)] to IF:ADDR/PORT [(MAPPED/PORT)][(USER)] ..." read
 * word by word (a message's first 64 words at most).
 */
function asaConnection(body: string): { event: string; dir: string | null; proto: string; a: AsaSide; b: AsaSide } | null {
  const w = body.split(' ', 64);
  let k = 0;
  const event = w[k++]!;
  if (event !== 'Built' && event !== 'Teardown') return null;
  const dir = w[k] === 'inbound' || w[k] === 'outbound' ? w[k++]! : null;
  const proto = w[k++];
  if ((proto !== 'TCP' && proto !== 'UDP') || w[k++] !== 'connection' || !/^\d{1,12}$/.test(w[k++] ?? '') || w[k++] !== 'for') return null;
  const side = (): AsaSide | null => {
    const tok = w[k++] ?? '';
    const c = tok.indexOf(':');
    if (c <= 0) return null;
    const real = endpoint(tok.slice(c + 1), '/');
    if (!real.ip) return null;
    const s: AsaSide = { real, mapped: null, user: null };
    // "(MAPPED)", "(USER)", or both as one word "(MAPPED)(USER)".
    while (k < w.length && w[k]!.startsWith('(') && w[k]!.endsWith(')')) {
      for (const part of w[k++]!.slice(1, -1).split(')(', 4)) {
        const m = endpoint(part, '/');
        if (m.ip && !s.mapped && !s.user) s.mapped = m;
        else if (!m.ip && part !== '' && !s.user) s.user = part;
      }
    }
    return s;
  };
  const a = side();
  if (!a || w[k++] !== 'to') return null;
  const b = side();
  return b ? { event, dir, proto, a, b } : null;
}

/** Cisco ASA: translations (305011/305012) and connections (302013-302016). */
const ciscoAsa: Parser = (text, msg, r) => {
  if (!text.includes('%ASA-')) return false;
  // A message with no header of its own ("%ASA-6-302013: ...") has its id read as the syslog tag: look in the whole text.
  const id = asaId(msg) ?? asaId(text);
  if (!id) return false;
  const body = id.body;
  // "\S[^\s:]*:" is "\S+?:" (the interface, up to the first colon) without trying every later colon.
  const xlate = /(Built|Teardown) (?:dynamic|static) (TCP|UDP|ICMP) translation from \S[^\s:]*:(\S+) to \S[^\s:]*:(\S+)/.exec(body);
  const conn = xlate ? null : asaConnection(body);
  r.parser = 'cisco-asa';
  r.action = `${id.id} ${body.split(' ', 2).join(' ')}`;
  if (xlate) {
    const from = endpoint(xlate[3]!, '/');
    const to = endpoint(xlate[4]!, '/');
    r.proto = protoNumber(xlate[2]!);
    [r.src_ip, r.src_port, r.nat_ip, r.nat_port] = [from.ip, from.port, to.ip, to.port];
  } else if (conn) {
    r.proto = protoNumber(conn.proto);
    // "outbound ... for outside:X to inside:Y": Y started it; "inbound": X did.
    const [init, resp] = conn.dir === 'inbound' ? [conn.a, conn.b] : [conn.b, conn.a];
    const same = (x: AsaSide['real'], y: AsaSide['real']) => x.ip === y.ip && x.port === y.port;
    [r.src_ip, r.src_port] = [init.real.ip, init.real.port];
    // The initiator's mapped address is its source after NAT; the responder's is the destination as the initiator addressed it, its real one the destination after NAT.
    if (init.mapped && !same(init.mapped, init.real)) [r.nat_ip, r.nat_port] = [init.mapped.ip, init.mapped.port];
    const dst = resp.mapped ?? resp.real;
    [r.dst_ip, r.dst_port] = [dst.ip, dst.port];
    if (resp.mapped && !same(resp.mapped, resp.real)) [r.post_nat_dst_ip, r.post_nat_dst_port] = [resp.real.ip, resp.real.port];
    r.user = init.user ?? resp.user;
    const bytes = /bytes (\d+)/.exec(body);
    if (bytes) r.bytes = Number(bytes[1]);
  }
  return true;
};

// ------------------------------------------------------------ strongSwan (charon)

/** "HOST[ID]" at t[i] (an IKE endpoint and its identity, as charon's %H[%Y] prints them), the ID ending at `idEnd`. */
function ikeEnd(t: string, i: number, idEnd: number): { ip: string; id: string } | null {
  const h = run(t, i, (c) => isColoned(c) || c === 0x2e, Math.min(t.length, i + 45));
  if (h === i || t.charCodeAt(h) !== 0x5b || idEnd <= h + 1) return null;
  const ip = t.slice(i, h);
  return isIP(ip) ? { ip, id: t.slice(h + 1, idEnd) } : null;
}

/** "NAME[N] [established ]between LOCAL[ID]...REMOTE[ID]" from t[i] on (to the end of the line). */
function ikeSa(t: string, i: number, lead: string): { name: string; local: { ip: string; id: string }; remote: { ip: string; id: string } } | null {
  const b = t.indexOf(lead, i);
  if (b < 0) return null;
  const line = new Breaks(t).next(b);
  const dots = t.indexOf(']...', b + lead.length);
  const close = t.lastIndexOf(']', line - 1);
  if (dots < 0 || dots >= line || close <= dots + 4) return null;
  const local = ikeEnd(t, b + lead.length, dots);
  const remote = ikeEnd(t, dots + 4, close);
  return local && remote ? { name: t.slice(i, b), local, remote } : null;
}

/** The quoted identity from t[i] ("'ID'" up to the quote before `after`). */
function quotedId(t: string, i: number, after: string): { id: string; end: number } | null {
  if (t.charCodeAt(i) !== 0x27) return null;
  const e = t.indexOf(`'${after}`, i + 1);
  return e < 0 ? null : { id: t.slice(i + 1, e), end: e + 1 + after.length };
}

/**
 * charon's identity facts (format strings of strongSwan's libcharon):
 * "IKE_SA %s[%d] established between %H[%Y]...%H[%Y]", "deleting IKE_SA
 * %s[%d] between ...", "assigning virtual IP %H to peer '%Y'", "lease %H by
 * '%Y' went offline" (address pools), "sending DHCP RELEASE for %H to %H"
 * (the dhcp plugin), "authentication of '%Y' with %N successful" (the peer's;
 * "(myself)" is ours and not taken). The first marker found decides; each is
 * read once, from its place.
 */
const strongswan: Parser = (_text, msg, r) => {
  if (!msg.includes('[IKE] ') && !msg.includes('[CFG] ')) return false;
  const set = (action: string) => {
    r.parser = 'strongswan';
    r.action = action;
    return true;
  };
  let i = msg.indexOf('IKE_SA ');
  if (i >= 0) {
    const deleting = i >= 9 && msg.startsWith('deleting ', i - 9);
    const sa = ikeSa(msg, i + 7, deleting ? ' between ' : ' established between ');
    if (sa && /^[^\s[\]]{1,64}\[\d{1,10}\]$/.test(sa.name)) {
      // The peer (the remote end) reached the gateway (the local end).
      [r.src_ip, r.dst_ip, r.user] = [sa.remote.ip, sa.local.ip, sa.remote.id];
      return set(`IKE_SA ${sa.name} ${deleting ? 'deleting' : 'established'}`);
    }
  }
  i = msg.indexOf('assigning virtual IP ');
  if (i >= 0) {
    const a = run(msg, i + 21, (c) => isColoned(c) || c === 0x2e, Math.min(msg.length, i + 66));
    const q = msg.startsWith(' to peer ', a) ? quotedId(msg, a + 9, '') : null;
    if (q && isIP(msg.slice(i + 21, a))) {
      [r.src_ip, r.user] = [msg.slice(i + 21, a), q.id];
      return set('assigning virtual IP');
    }
  }
  i = msg.indexOf('lease ');
  if (i >= 0 && msg.includes('went offline')) {
    const a = run(msg, i + 6, (c) => isColoned(c) || c === 0x2e, Math.min(msg.length, i + 51));
    const q = msg.startsWith(' by ', a) ? quotedId(msg, a + 4, ' went offline') : null;
    if (q && isIP(msg.slice(i + 6, a))) {
      [r.src_ip, r.user] = [msg.slice(i + 6, a), q.id];
      return set('lease went offline');
    }
  }
  i = msg.indexOf('sending DHCP RELEASE for ');
  if (i >= 0) {
    const a = run(msg, i + 25, (c) => isColoned(c) || c === 0x2e, Math.min(msg.length, i + 70));
    if (isIP(msg.slice(i + 25, a))) {
      r.src_ip = msg.slice(i + 25, a);
      if (msg.startsWith(' to ', a)) {
        const s = msg.slice(a + 4, run(msg, a + 4, (c) => isColoned(c) || c === 0x2e, Math.min(msg.length, a + 49)));
        if (isIP(s)) r.dst_ip = s;
      }
      return set('DHCP RELEASE');
    }
  }
  i = msg.indexOf('authentication of ');
  if (i >= 0) {
    const q = quotedId(msg, i + 18, ' with ');
    const e = q ? msg.indexOf(' successful', q.end) : -1;
    if (q && e > q.end && e - q.end <= 64) {
      r.user = q.id;
      return set(`authentication with ${msg.slice(q.end, e)} successful`);
    }
  }
  return false;
};

// ------------------------------------------------------------ mail

/** What follows `key` up to the next ">": /key([^>]*)>/ without reading to the end again for each key. */
function angled(t: string, key: string): string | null {
  const i = t.indexOf(key);
  if (i < 0) return null;
  const e = t.indexOf('>', i + key.length);
  return e < 0 ? null : t.slice(i + key.length, e);
}

/** The message's first word before any colon. */
function firstWord(t: string): string {
  let e = t.indexOf(':');
  if (e < 0) e = t.length;
  const sp = t.indexOf(' ');
  return t.slice(0, sp >= 0 && sp < e ? sp : e);
}

/**
 * The client's address: "client=NAME[ADDR]" or "from NAME[ADDR]", the first:
 * what /(?:client=|from )\S*?\[([0-9A-Fa-f:.]+)\]/ took, by hand (it read a
 * long word again from each "client=" in it).
 */
function postfixClient(t: string): string | null {
  const client = new Seek(t, 'client=');
  const from = new Seek(t, 'from ');
  let done = 0;
  for (let i = 0; ; ) {
    const c = client.next(i);
    const f = from.next(i);
    const at = c < 0 ? f : f < 0 ? c : Math.min(c, f);
    if (at < 0) return null;
    i = at + 1;
    const s = at + (at === c ? 7 : 5);
    // A word already searched to its end: a later start in it finds nothing either.
    if (s < done) continue;
    const end = run(t, s, notSpace);
    for (let b = s; b < end; b++) {
      if (t.charCodeAt(b) !== 0x5b) continue;
      const e = run(t, b + 1, (k) => isColoned(k) || k === 0x2e, end);
      if (e > b + 1 && t.charCodeAt(e) === 0x5d) return t.slice(b + 1, e);
    }
    done = end;
  }
}

const postfix: Parser = (_text, msg, r) => {
  if (!/^(?:[0-9A-F]{6,}: |connect from|disconnect from|NOQUEUE)/.test(msg)) return false;
  r.parser = 'postfix';
  const client = postfixClient(msg);
  if (client && isIP(client)) r.src_ip = client;
  const user = /sasl_username=([^,\s]+)/.exec(msg);
  if (user) r.user = user[1]!;
  const status = /status=(\w+)/.exec(msg);
  const to = angled(msg, 'to=<');
  const from = angled(msg, 'from=<');
  const id = angled(msg, 'message-id=<');
  r.action = status ? `${status[1]}${to !== null ? ` to ${to}` : ''}` : from !== null ? `from ${from}` : id !== null ? `message-id ${id}` : firstWord(msg);
  if (to !== null && !r.user) r.url = `mailto:${to}`;
  return true;
};

const BY_APP: [RegExp, Parser[]][] = [
  [/^dhcpd$/, [iscDhcp]],
  [/^kea-dhcp4$/, [keaDhcp]],
  [/^(freeradius|radiusd|radius)$/, [radiusAuth, radiusUnknown, radiusAccounting]],
  [/^(squid|squid-access)$/, [squid]],
  [/^filterlog$/, [filterlog]],
  [/^(nginx|apache2?|httpd)$/, [webAccess]],
  [/^postfix\//, [postfix]],
  [/^(CiscoASA|%ASA.*)$/, [ciscoAsa]],
  [/^(charon|charon-systemd|ipsec|strongswan)$/, [strongswan]],
];
const ANY: Parser[] = [mikrotikFirewall, mikrotikDhcp, mikrotikHotspot, mikrotikLogin, iscDhcp, keaDhcp, radiusAuth, radiusUnknown, radiusAccounting, squid, filterlog, webAccess, ciscoAsa, strongswan];

export interface ParseContext extends SyslogOptions {
  exporter: string;
}

/**
 * Parsers fill the record only once they know the message is theirs; one
 * that throws part-way is undone by starting the record again from the header.
 */
function attempt(p: Parser, m: SyslogMessage, r: TrafficRecord, ctx: ParseContext): boolean {
  try {
    return p(m.text, m.msg, r);
  } catch {
    Object.assign(r, emptyRecord('log', 'syslog', ctx.exporter, ctx.recvMs), { raw: r.raw, flags: r.flags, dev_ms: m.time, host: m.host, app: m.app });
    return false;
  }
}

/**
 * A syslog message (or a bare log line) as an archive record: parsed when a
 * parser knows it, raw always. `flags` (record.ts FLAG_*) are the framer's
 * for this message (FLAG_CUT); FLAG_PARSE_LIMIT is added here when only the
 * first PARSE_LIMIT characters were parsed. The record's flags stay null
 * when none is set.
 */
export function parseLogLine(line: string, ctx: ParseContext, flags = 0): TrafficRecord {
  const r = emptyRecord('log', 'syslog', ctx.exporter, ctx.recvMs);
  r.raw = withoutEol(line);
  let head = r.raw;
  if (head.length > PARSE_LIMIT) {
    // Not between the two halves of a surrogate pair.
    const c = head.charCodeAt(PARSE_LIMIT - 1);
    head = head.slice(0, c >= 0xd800 && c <= 0xdbff ? PARSE_LIMIT - 1 : PARSE_LIMIT);
    flags |= FLAG_PARSE_LIMIT;
  }
  if (flags !== 0) r.flags = flags;
  let m;
  try {
    m = parseSyslog(head, ctx);
  } catch {
    return r;
  }
  r.dev_ms = m.time;
  r.host = m.host;
  r.app = m.app;
  let tried: Parser[] | undefined;
  if (m.app) {
    for (const [re, ps] of BY_APP) {
      if (!re.test(m.app)) continue;
      tried = ps;
      for (const p of ps) if (attempt(p, m, r, ctx)) return r;
    }
  }
  for (const p of ANY) if (!tried?.includes(p) && attempt(p, m, r, ctx)) return r;
  r.parser = 'syslog';
  return r;
}
