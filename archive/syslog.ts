// Syslog headers as devices really send them: RFC 5424; RFC 3164 with its
// variants (no priority, an ISO time instead of the BSD one, a year in the
// BSD time as Cisco writes it, no host name as pfSense writes it, two host
// tokens as Infoblox writes it, no header at all as RouterOS may). What is
// not header is the message, which the parsers read.
//
// Linear in the line's length, whatever it holds: every expression is
// anchored at the start and bounded, or tokenised by hand (the test for a
// "tag[pid]:" token, as /\[[^\]]*\]:?$/, took 2 seconds on a 50 KB token
// of "["). parsers.ts parses only a message's first PARSE_LIMIT characters.

export interface SyslogMessage {
  pri: number | null;
  /** The device's time for the message (UTC ms), or null when it gave none. */
  time: number | null;
  host: string | null;
  app: string | null;
  pid: string | null;
  /** RFC 5424 MSGID and structured data, as text. */
  msgid: string | null;
  sd: string | null;
  /** The message after the tag ("app[pid]: "). */
  msg: string;
  /** Everything after the host (the tag included): for messages whose "tag" is not one (RouterOS topics). */
  text: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ISO = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?\s+/;
const BSD = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s+/;
const TAG = /^([^\s[\]:]{1,64})(?:\[([^\]\s]{0,32})\])?: ?/;
const HOSTLIKE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,252}|\[?[0-9A-Fa-f:.]+\]?)$/;

export interface SyslogOptions {
  /** The receive time (UTC ms): the year of a BSD time comes from it. */
  recvMs: number;
  /** Offset of the devices' local time, for times written without one (Asia/Bangkok: +420 minutes). */
  utcOffsetMinutes: number;
}

/**
 * An ISO time as ISO matched it ("2026-06-03T09:41:05.123456", zone "Z",
 * "+07:00", "+0700" or none: the devices' local offset) in UTC ms; null for
 * a date that does not exist. Worked out by hand: Date.parse took a third
 * of a message's parsing. The device's microseconds are cut, not rounded.
 */
function isoTime(text: string, zone: string | undefined, offsetMinutes: number): number | null {
  const n = (a: number, b: number) => Number(text.slice(a, b));
  const [year, month, day, hh, mm, ss] = [n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19)];
  const ms = text.length > 20 ? Number(text.slice(20, 23).padEnd(3, '0')) : 0;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  if (month < 1 || month > 12 || day < 1 || day > days || hh > 23 || mm > 59 || ss > 59) return null;
  let offset = offsetMinutes;
  if (zone === 'Z') offset = 0;
  else if (zone) {
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(zone.length - 2));
    if (zh > 23 || zm > 59) return null;
    offset = (zone[0] === '-' ? -1 : 1) * (zh * 60 + zm);
  }
  const t = new Date(Date.UTC(year, month - 1, day, hh, mm, ss, ms));
  // Date.UTC reads years 0-99 as 1900-1999.
  if (year < 100) t.setUTCFullYear(year);
  return t.getTime() - offset * 60_000;
}

/** JavaScript's \s: what "\s" and "\S" in the expressions mean, for code that tokenises by hand. */
export function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x80 && (c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff));
}

/** A line terminator: where "." stops. */
export function isBreak(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
}

/** A token ending in "[...]" or "[...]:" (a tag with its pid): /\[[^\]]*\]:?$/ without trying each "[". */
function pidTag(token: string): boolean {
  let end = token.length - 1;
  if (token.charCodeAt(end) === 0x3a) end--;
  if (end < 1 || token.charCodeAt(end) !== 0x5d) return false;
  // A "[" after the last "]" before this one.
  return token.lastIndexOf('[', end - 1) > token.lastIndexOf(']', end - 1);
}

/** The line without its line ending (a framer may leave CR or LF on it). */
export function withoutEol(line: string): string {
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 10 || line.charCodeAt(end - 1) === 13)) end--;
  return end === line.length ? line : line.slice(0, end);
}

function bsdTime(m: RegExpExecArray, o: SyslogOptions): number | null {
  const month = MONTHS.indexOf(m[1]!);
  const day = Number(m[2]);
  const [hh, mm, ss] = [Number(m[4]), Number(m[5]), Number(m[6])];
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const offset = o.utcOffsetMinutes * 60_000;
  let year = m[3] ? Number(m[3]) : new Date(o.recvMs + offset).getUTCFullYear();
  let t = Date.UTC(year, month, day, hh, mm, ss, ms) - offset;
  // No year in the message: a time more than a month ahead is last year's (a December line read in January).
  if (!m[3] && t > o.recvMs + 31 * 86_400_000) {
    year -= 1;
    t = Date.UTC(year, month, day, hh, mm, ss, ms) - offset;
  }
  return Number.isNaN(t) ? null : t;
}

export function parseSyslog(line: string, o: SyslogOptions): SyslogMessage {
  let s = withoutEol(line);
  let pri: number | null = null;
  const p = /^<(\d{1,3})>/.exec(s);
  if (p && Number(p[1]) <= 191) {
    pri = Number(p[1]);
    s = s.slice(p[0].length);
  }
  const v5424 = /^1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(s);
  if (v5424) return rfc5424(s, v5424, pri, o);

  let time: number | null = null;
  let stamped = false;
  const iso = ISO.exec(s);
  const bsd = iso ? null : BSD.exec(s);
  if (iso) {
    time = isoTime(iso[1]!, iso[2], o.utcOffsetMinutes);
    s = s.slice(iso[0].length);
    stamped = true;
  } else if (bsd) {
    time = bsdTime(bsd, o);
    s = s.slice(bsd[0].length);
    stamped = true;
  }
  // A host follows a time (RFC 3164); pfSense leaves it out, Infoblox writes two.
  let host: string | null = null;
  if (stamped) {
    for (let k = 0; k < 2; k++) {
      const sp = s.indexOf(' ');
      if (sp <= 0) break;
      const token = s.slice(0, sp);
      // The tag itself ("dhcpd[7024]:", "filterlog:"): no host was written.
      if (token.endsWith(':') || pidTag(token)) break;
      if (!HOSTLIKE.test(token) || token.includes(',')) break;
      // A second host token only when a tag follows it (Infoblox: "name 10.0.0.1 dhcpd[7024]: ...").
      if (k === 1) {
        const rest = s.slice(sp + 1);
        const t = TAG.exec(rest);
        if (!t || !t[0].includes(':')) break;
        host = `${host} ${token}`;
      } else host = token;
      s = s.slice(sp + 1);
    }
  }
  const text = s;
  let app: string | null = null;
  let pid: string | null = null;
  const t = TAG.exec(s);
  if (t && t[0].includes(':')) {
    app = t[1]!;
    pid = t[2] ?? null;
    s = s.slice(t[0].length);
  }
  return { pri, time, host, app, pid, msgid: null, sd: null, msg: s, text };
}

function rfc5424(s: string, m: RegExpExecArray, pri: number | null, o: SyslogOptions): SyslogMessage {
  const nil = (v: string | undefined) => (v === undefined || v === '-' ? null : v);
  let rest = s.slice(m[0].length);
  let sd: string | null = null;
  if (rest.startsWith('-')) rest = rest.slice(rest.startsWith('- ') ? 2 : 1);
  else if (rest.startsWith('[')) {
    // Structured data: [id k="v" ...][...]; "]" inside a value is escaped as \].
    let i = 0;
    while (rest[i] === '[') {
      i++;
      while (i < rest.length && rest[i] !== ']') i += rest[i] === '\\' ? 2 : rest[i] === '"' ? skipQuoted(rest, i) : 1;
      i++;
    }
    sd = rest.slice(0, i);
    rest = rest.slice(i).replace(/^ /, '');
  }
  if (rest.startsWith('\ufeff')) rest = rest.slice(1);
  const ts = nil(m[1]);
  const iso = ts ? ISO.exec(`${ts} `) : null;
  return {
    pri,
    time: iso ? isoTime(iso[1]!, iso[2], o.utcOffsetMinutes) : null,
    host: nil(m[2]),
    app: nil(m[3]),
    pid: nil(m[4]),
    msgid: nil(m[5]),
    sd,
    msg: rest,
    text: rest,
  };
}

function skipQuoted(s: string, i: number): number {
  let j = i + 1;
  while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
  return j - i + 1;
}
