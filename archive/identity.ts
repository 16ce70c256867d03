// Who had an address at a moment: time ranges of IP ↔ MAC (DHCP leases:
// ISC, Kea, RouterOS) and IP ↔ user (RADIUS accounting, RADIUS logins,
// hotspot logins, strongSwan virtual IP assignments), built from the archived records themselves; and behind
// NAT, the inside address a public address and port stood for (RouterOS
// src-nat, Cisco ASA translations, flows with NAT fields).
import { queryArchive, type QueryResult, type SourceSegment } from './query.ts';
import type { TrafficRecord } from './record.ts';

export interface Binding {
  ip: string;
  mac: string | null;
  /** The client's own name (DHCP) or none. */
  client: string | null;
  user: string | null;
  from: number;
  /** null: still bound when the archive ends. */
  to: number | null;
  /** What the range rests on: the parser and the events. */
  source: string;
  events: number;
  exporter: string;
  school: string | null;
  /**
   * Which clock the range is on: the device's own (its records' dev_ms), or
   * klaiwatch's receive time when the device's clock is more than
   * CLOCK_TRUST_MS off (then `device_offset_ms` says by how much: the median
   * of dev_ms - recv_ms over its records).
   */
  clock?: 'device' | 'receive';
  device_offset_ms?: number | null;
}

export interface WhoAnswer {
  ip: string;
  at: number;
  /** Public address and port translated to this inside address, when the question came through NAT. */
  nat?: { public: string; port: number; inside: string; insidePort: number | null; record: TrafficRecord };
  leases: Binding[];
  sessions: Binding[];
  segments: SourceSegment[];
  fromWal: number;
  /** Segment files missing (skipped) and segments that answered but no longer match their signed hash (query.ts QueryResult). */
  missing: string[];
  altered: string[];
}

const LOOKBACK = 14 * 86_400_000;
const when = (r: TrafficRecord) => r.dev_ms ?? r.recv_ms;

/** A device whose clock is further off than this (the median over its records) is timed by receive time: an hour. */
export const CLOCK_TRUST_MS = 3_600_000;

export interface DeviceClock {
  clock: 'device' | 'receive';
  /** Median of dev_ms - recv_ms over the exporter's records (null: none gave a device time). */
  offset: number | null;
}

/** Each exporter's clock against klaiwatch's, from its records. */
export function deviceClocks(records: readonly TrafficRecord[]): Map<string, DeviceClock> {
  const offsets = new Map<string, number[]>();
  for (const r of records) {
    if (r.dev_ms === null) continue;
    const list = offsets.get(r.exporter) ?? [];
    list.push(r.dev_ms - r.recv_ms);
    offsets.set(r.exporter, list);
  }
  const out = new Map<string, DeviceClock>();
  for (const r of records) {
    if (out.has(r.exporter)) continue;
    const list = (offsets.get(r.exporter) ?? []).sort((a, b) => a - b);
    const offset = list.length ? list[Math.floor(list.length / 2)]! : null;
    out.set(r.exporter, { clock: offset !== null && Math.abs(offset) > CLOCK_TRUST_MS ? 'receive' : 'device', offset });
  }
  return out;
}

/**
 * The records of devices whose clock cannot be trusted, moved onto the
 * receive clock: event time = receive time, and a session's start and end
 * shifted by the same difference. Others as they are.
 */
export function retime(records: readonly TrafficRecord[], clocks: ReadonlyMap<string, DeviceClock>): TrafficRecord[] {
  return records.map((r) => {
    const c = clocks.get(r.exporter);
    if (!c || c.clock === 'device') return r;
    const shift = r.dev_ms !== null ? r.dev_ms - r.recv_ms : (c.offset ?? 0);
    return { ...r, dev_ms: r.recv_ms, start_ms: r.start_ms === null ? null : r.start_ms - shift, end_ms: r.end_ms === null ? null : r.end_ms - shift };
  });
}

function onClock(b: Binding, clocks: ReadonlyMap<string, DeviceClock>): Binding {
  const c = clocks.get(b.exporter);
  return { ...b, clock: c?.clock ?? 'device', device_offset_ms: c?.offset ?? null };
}

const LEASE_START = /^(DHCPACK|DHCP4_LEASE_ALLOC|assigned)$/;
const LEASE_END = /^(DHCPRELEASE|DHCPNAK|DHCPDECLINE|DHCP4_RELEASE|DHCP4_DECLINE|DHCP4_LEASE_EXPIRED|deassigned)$/;
const SESSION_START = /^(Start|Interim-Update|Alive|logged in|Login OK|assigning virtual IP)$/;
const SESSION_END = /^(Stop|logged out|lease went offline)$/;

/** Lease ranges for one address from its DHCP records, in time order. */
export function leases(records: readonly TrafficRecord[], ip: string): Binding[] {
  const out: Binding[] = [];
  let open: Binding | null = null;
  for (const r of [...records].filter((x) => x.src_ip === ip && /dhcp/.test(x.parser)).sort((a, b) => when(a) - when(b))) {
    const t = when(r);
    const action = r.action ?? '';
    if (LEASE_START.test(action)) {
      if (open && open.mac === r.mac) {
        // A renewal: the same client keeps it.
        open.events++;
        open.to = r.end_ms ?? null;
        if (r.client) open.client = r.client;
        continue;
      }
      if (open) open.to = open.to === null || open.to > t ? t : open.to;
      open = { ip, mac: r.mac, client: r.client, user: null, from: t, to: r.end_ms ?? null, source: r.parser, events: 1, exporter: r.exporter, school: r.school };
      out.push(open);
    } else if (LEASE_END.test(action) && open && (r.mac === null || r.mac === open.mac)) {
      open.to = t;
      open.events++;
      open = null;
    }
  }
  return out;
}

/** Login sessions (RADIUS accounting or logins, hotspot, strongSwan virtual IPs) on one address. */
export function sessions(records: readonly TrafficRecord[], ip: string): Binding[] {
  const out: Binding[] = [];
  const open = new Map<string, Binding>();
  const vpn = (x: TrafficRecord) => x.parser === 'strongswan';
  for (const r of [...records].filter((x) => x.src_ip === ip && (x.user || vpn(x)) && /radius|hotspot|strongswan/.test(x.parser)).sort((a, b) => when(a) - when(b))) {
    const action = (r.action ?? '').replace(/: .*$/, '');
    // A VPN's virtual address is one peer's at a time: its release (no user named), or its assignment to another peer, ends the holder's session.
    if (vpn(r) && (action === 'DHCP RELEASE' || (SESSION_START.test(action) && !open.has(r.user ?? '')))) {
      for (const [k, s] of open) {
        if (s.source !== 'strongswan') continue;
        s.to = when(r);
        s.events++;
        open.delete(k);
      }
    }
    if (!r.user) continue;
    const key = r.user;
    if (SESSION_START.test(action)) {
      const s = open.get(key);
      if (s) {
        s.events++;
        continue;
      }
      const b: Binding = { ip, mac: r.mac, client: r.client, user: r.user, from: r.start_ms ?? when(r), to: null, source: r.parser, events: 1, exporter: r.exporter, school: r.school };
      open.set(key, b);
      out.push(b);
    } else if (SESSION_END.test(action)) {
      const s = open.get(key);
      const end = r.end_ms ?? when(r);
      if (s) {
        s.to = end;
        s.events++;
        open.delete(key);
      } else out.push({ ip, mac: r.mac, client: r.client, user: r.user, from: r.start_ms ?? end, to: end, source: r.parser, events: 1, exporter: r.exporter, school: r.school });
    }
  }
  return out;
}

const covers = (b: Binding, t: number) => b.from <= t && (b.to === null || t < b.to);

/** Who had `ip` at `at`; with `port`, `ip` is a public (NAT) address and the inside address is found first. */
export async function whoHad(dir: string, ip: string, at: number, port?: number): Promise<WhoAnswer> {
  let inside = ip;
  let nat: WhoAnswer['nat'];
  const used: QueryResult[] = [];
  if (port !== undefined) {
    // Either side: a source translated to ip:port (src-nat), or ip:port as a destination forwarded inside (dst-nat: post_nat_dst_*).
    const q = await queryArchive(dir, { ip, side: 'either', from: at - 15 * 60_000, to: at + 15 * 60_000 });
    used.push(q);
    const inner = (r: TrafficRecord) => (r.nat_ip === ip && r.nat_port === port && r.src_ip ? { ip: r.src_ip, port: r.src_port } : r.dst_ip === ip && r.dst_port === port && r.post_nat_dst_ip && r.post_nat_dst_ip !== ip ? { ip: r.post_nat_dst_ip, port: r.post_nat_dst_port } : null);
    // A NAT session's delete event (RFC 8158 natEvent 2, 5, 7, 9) before the moment: that translation had ended by then.
    const ended = (r: TrafficRecord) => r.nat_event !== null && [2, 5, 7, 9].includes(r.nat_event) && when(r) < at;
    const t = retime(q.rows, deviceClocks(q.rows)).filter((r) => inner(r) !== null && !ended(r)).sort((a, b) => Math.abs(when(a) - at) - Math.abs(when(b) - at))[0];
    if (t) {
      const i = inner(t)!;
      inside = i.ip;
      nat = { public: ip, port, inside, insidePort: i.port, record: t };
    }
  }
  const q = await queryArchive(dir, { ip: inside, side: 'src', from: at - LOOKBACK, to: at + 86_400_000 });
  used.push(q);
  const clocks = deviceClocks(q.rows);
  const rows = retime(q.rows, clocks);
  const l = leases(rows, inside).filter((b) => covers(b, at)).map((b) => onClock(b, clocks));
  const s = sessions(rows, inside).filter((b) => covers(b, at)).map((b) => onClock(b, clocks));
  // A login that named no address but the lease's MAC (RADIUS Calling-Station-Id) answers too.
  for (const mac of new Set(l.map((b) => b.mac).filter((m): m is string => m !== null))) {
    const m = await queryArchive(dir, { mac, from: at - LOOKBACK, to: at + 86_400_000 });
    used.push(m);
    const macClocks = deviceClocks(m.rows);
    const byMac = retime(m.rows, macClocks).filter((r) => r.src_ip === null).map((r) => ({ ...r, src_ip: inside }));
    for (const b of sessions(byMac, inside)) if (covers(b, at) && !s.some((x) => x.user === b.user && x.from === b.from)) s.push(onClock(b, macClocks));
  }
  const segments = new Map<string, SourceSegment>();
  for (const r of used) for (const g of r.segments) segments.set(g.file, g);
  return { ip: inside, at, ...(nat ? { nat } : {}), leases: l, sessions: s, segments: [...segments.values()], fromWal: used.reduce((n, r) => n + r.fromWal, 0), missing: [...new Set(used.flatMap((r) => r.missing))], altered: [...new Set(used.flatMap((r) => r.altered))] };
}
