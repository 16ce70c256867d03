// From a log message to the network facts: time, addresses and ports,
// protocol, bytes, NAT translation, user, MAC, URL. One parser per source a
// school network has; each returns false when the message is not its kind.
// A message no parser takes is still archived whole (parser "syslog"):
// nothing received is dropped for not parsing.
import { isIP } from 'node:net';
import { parseSyslog, withoutEol, type SyslogMessage, type SyslogOptions } from './syslog.ts';
import { emptyRecord, normalMac, protoNumber, type TrafficRecord } from './record.ts';

type Parser = (text: string, msg: string, r: TrafficRecord) => boolean;

const MAC = '[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}';
const macRe = new RegExp(`^${MAC}$`);

/** "1.2.3.4:80", "[2001:db8::1]:443", "1.2.3.4" (ICMP), "10.0.0.1/1772" (Cisco). */
function endpoint(s: string, sep = ':'): { ip: string | null; port: number | null } {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { ip: v6[1]!, port: v6[2] ? Number(v6[2]) : null };
  const i = s.lastIndexOf(sep);
  if (i > 0 && isIP(s.slice(0, i)) && /^\d+$/.test(s.slice(i + 1))) return { ip: s.slice(0, i), port: Number(s.slice(i + 1)) };
  return { ip: isIP(s) ? s : null, port: null };
}

// ------------------------------------------------------------ MikroTik RouterOS

const ROS_CHAIN = /(?:^|\s)(?:(\S.*?):?\s)?(input|forward|output|prerouting|postrouting|srcnat|dstnat|[\w-]+):\s+in:(\S+) out:(.+?), /;
const ROS_FLOW = /proto (\w+)(?: \(([^)]*)\))?, (\[[0-9A-Fa-f:.]+\](?::\d+)?|[\d.]+(?::\d+)?)->(\[[0-9A-Fa-f:.]+\](?::\d+)?|[\d.]+(?::\d+)?)/;
const ROS_NAT = /NAT \((\S+?)->(\S+?)\)->(\S+?),/;
const ROS_TOPICS = /^([a-z]+(?:,[a-z]+)+)\s+/;

const mikrotikFirewall: Parser = (text, _msg, r) => {
  if (!text.includes('proto ')) return false;
  const f = ROS_FLOW.exec(text);
  if (!f || !/\bin:\S+ out:/.test(text)) return false;
  r.parser = 'mikrotik-firewall';
  r.proto = protoNumber(f[1]!);
  const src = endpoint(f[3]!);
  const dst = endpoint(f[4]!);
  r.src_ip = src.ip;
  r.src_port = src.port;
  r.dst_ip = dst.ip;
  r.dst_port = dst.port;
  const nat = ROS_NAT.exec(text);
  if (nat) {
    const to = endpoint(nat[2]!);
    r.nat_ip = to.ip;
    r.nat_port = to.port;
  }
  const mac = new RegExp(`src-mac (${MAC})`).exec(text);
  if (mac) r.mac = normalMac(mac[1]!);
  const len = /, len (\d+)/.exec(text);
  if (len) r.bytes = Number(len[1]);
  r.packets = 1;
  const chain = ROS_CHAIN.exec(text.replace(ROS_TOPICS, ''));
  if (chain) r.action = chain[1] ? `${chain[1].replace(/^\[|\]$/g, '')} ${chain[2]}` : chain[2]!;
  return true;
};

const mikrotikDhcp: Parser = (text, _msg, r) => {
  if (!text.includes('assigned ')) return false;
  const m = new RegExp(`(\\S+) (assigned|deassigned) ([\\d.]+|[0-9A-Fa-f:]+) (?:to|from|for) (${MAC})(?:\\s+(\\S+))?`).exec(text);
  if (!m || !(text.includes('dhcp') || ROS_TOPICS.test(text))) return false;
  r.parser = 'mikrotik-dhcp';
  r.client = m[5] ?? null;
  r.src_ip = m[3]!;
  r.mac = normalMac(m[4]!);
  r.action = m[2]!;
  r.app = r.app ?? m[1]!;
  return true;
};

const mikrotikHotspot: Parser = (text, _msg, r) => {
  if (!text.includes('hotspot') || !text.includes('): ')) return false;
  const m = /(?:^|\s)(\S+) \(([\d.]+|[0-9A-Fa-f:]+)\): (logged in|logged out|login failed|trying to log in by [\w-]+)(?:: (.*))?$/.exec(text);
  if (!m || !/hotspot/.test(text)) return false;
  r.parser = 'mikrotik-hotspot';
  r.user = m[1]!;
  r.src_ip = m[2]!;
  r.action = m[3]! + (m[4] ? `: ${m[4]}` : '');
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

const keaDhcp: Parser = (_text, msg, r) => {
  if (!msg.includes('DHCP4_')) return false;
  const m = new RegExp(`(DHCP4_LEASE_ALLOC|DHCP4_LEASE_ADVERT|DHCP4_RELEASE|DHCP4_DECLINE|DHCP4_LEASE_EXPIRED)\\b.*?\\[hwtype=\\d+ (${MAC})\\].*?(?:lease|address) ([\\d.]+)(?:.*? for (\\d+) seconds)?`).exec(msg);
  if (!m) return false;
  r.parser = 'kea-dhcp';
  r.action = m[1]!;
  r.mac = normalMac(m[2]!);
  r.src_ip = m[3]!;
  if (m[4] && r.dev_ms !== null) {
    r.start_ms = r.dev_ms;
    r.end_ms = r.dev_ms + Number(m[4]) * 1000;
  }
  return true;
};

// ---------------------------------------------------------------- FreeRADIUS

const radiusAuth: Parser = (_text, msg, r) => {
  if (!msg.includes('Login ') && !msg.includes('Invalid user')) return false;
  const m = /(Login OK|Login incorrect|Invalid user)(?: \([^)]*\))?: \[([^\]]*)\](?:\s*\(from client (\S+) port (\S+)(?: cli (\S+))?[^)]*\))?/.exec(msg);
  if (!m) return false;
  r.parser = 'radius';
  r.action = m[1]!;
  r.user = m[2]!;
  r.client = m[3] ?? null;
  const cli = m[5];
  if (cli) {
    if (macRe.test(cli)) r.mac = normalMac(cli);
    else if (isIP(cli)) r.src_ip = cli;
  }
  return true;
};

/** Accounting attributes, as a detail-file record or a linelog line: `Name = value`, one per line or separated by commas. */
const radiusAccounting: Parser = (text, _msg, r) => {
  if (!/\bAcct-Status-Type\s*=/.test(text)) return false;
  const attrs = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\n\t]*)/g)) attrs.set(m[1]!, m[2]!.trim().replace(/^"|"$/g, ''));
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
  const m = /^(\S+) \S+ (\S+) \[(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] "(\S+) (\S+)[^"]*" (\d{3}) (\d+|-)/.exec(msg);
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
  const f = msg.trim().split(',');
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

/** Cisco ASA: translations (305011/305012) and connections (302013-302016). */
const ciscoAsa: Parser = (_text, msg, r) => {
  if (!msg.includes('%ASA-')) return false;
  const id = /%ASA-\d-(\d{6}): (.*)$/.exec(msg);
  if (!id) return false;
  const body = id[2]!;
  const xlate = /(Built|Teardown) (?:dynamic|static) (TCP|UDP|ICMP) translation from \S+?:(\S+) to \S+?:(\S+)/.exec(body);
  const conn = /(Built|Teardown) (?:(inbound|outbound) )?(TCP|UDP) connection \d+ for \S+?:(\S+?)(?: \(\S+\))? to \S+?:(\S+?)(?: \(\S+\))?(?: |$)/.exec(body);
  r.parser = 'cisco-asa';
  r.action = `${id[1]} ${body.split(' ').slice(0, 2).join(' ')}`;
  if (xlate) {
    const from = endpoint(xlate[3]!, '/');
    const to = endpoint(xlate[4]!, '/');
    r.proto = protoNumber(xlate[2]!);
    [r.src_ip, r.src_port, r.nat_ip, r.nat_port] = [from.ip, from.port, to.ip, to.port];
  } else if (conn) {
    const a = endpoint(conn[4]!, '/');
    const b = endpoint(conn[5]!, '/');
    r.proto = protoNumber(conn[3]!);
    // "outbound ... for outside:X to inside:Y": Y started it.
    const [src, dst] = conn[2] === 'inbound' ? [a, b] : [b, a];
    [r.src_ip, r.src_port, r.dst_ip, r.dst_port] = [src.ip, src.port, dst.ip, dst.port];
    const bytes = /bytes (\d+)/.exec(body);
    if (bytes) r.bytes = Number(bytes[1]);
  }
  return true;
};

// ------------------------------------------------------------ mail

const postfix: Parser = (_text, msg, r) => {
  if (!/^(?:[0-9A-F]{6,}: |connect from|disconnect from|NOQUEUE)/.test(msg)) return false;
  r.parser = 'postfix';
  const client = /(?:client=|from )\S*?\[([0-9A-Fa-f:.]+)\]/.exec(msg);
  if (client && isIP(client[1]!)) r.src_ip = client[1]!;
  const user = /sasl_username=([^,\s]+)/.exec(msg);
  if (user) r.user = user[1]!;
  const status = /status=(\w+)/.exec(msg);
  const to = /to=<([^>]*)>/.exec(msg);
  const from = /from=<([^>]*)>/.exec(msg);
  const id = /message-id=<([^>]*)>/.exec(msg);
  r.action = status ? `${status[1]}${to ? ` to ${to[1]}` : ''}` : from ? `from ${from[1]}` : id ? `message-id ${id[1]}` : msg.split(':')[0]!.split(' ')[0]!;
  if (to && !r.user) r.url = `mailto:${to[1]}`;
  return true;
};

const BY_APP: [RegExp, Parser[]][] = [
  [/^dhcpd$/, [iscDhcp]],
  [/^kea-dhcp4$/, [keaDhcp]],
  [/^(freeradius|radiusd|radius)$/, [radiusAuth, radiusAccounting]],
  [/^(squid|squid-access)$/, [squid]],
  [/^filterlog$/, [filterlog]],
  [/^(nginx|apache2?|httpd)$/, [webAccess]],
  [/^postfix\//, [postfix]],
  [/^(CiscoASA|%ASA.*)$/, [ciscoAsa]],
];
const ANY: Parser[] = [mikrotikFirewall, mikrotikDhcp, mikrotikHotspot, iscDhcp, keaDhcp, radiusAuth, radiusAccounting, squid, filterlog, webAccess, ciscoAsa];

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
    Object.assign(r, emptyRecord('log', 'syslog', ctx.exporter, ctx.recvMs), { raw: r.raw, dev_ms: m.time, host: m.host, app: m.app });
    return false;
  }
}

/** A syslog message (or a bare log line) as an archive record: parsed when a parser knows it, raw always. */
export function parseLogLine(line: string, ctx: ParseContext): TrafficRecord {
  const r = emptyRecord('log', 'syslog', ctx.exporter, ctx.recvMs);
  r.raw = withoutEol(line);
  let m;
  try {
    m = parseSyslog(r.raw, ctx);
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
