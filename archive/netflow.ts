// NetFlow v5, v9 (RFC 3954) and IPFIX (RFC 7011) decoding, in the manner of
// nfcapd: templates are kept per exporter and observation domain (v9 source
// id), options templates are learnt so their data is recognised and skipped,
// and data that arrives before its template is held, within limits, until
// the template comes. A datagram that is not well formed throws a
// DecodeError naming what is wrong; records decoded before the fault in the
// same datagram are kept.
import { emptyRecord, type TrafficRecord } from './record.ts';

export class DecodeError extends Error {}

interface FieldSpec {
  id: number;
  length: number;
  /** IPFIX enterprise number, 0 for IANA. */
  pen: number;
}

interface Template {
  fields: FieldSpec[];
  /** Options templates: recognised, not turned into flows. */
  options: boolean;
  /** Fixed record length, or -1 when a field has variable length. */
  length: number;
}

interface Held {
  key: string;
  data: Buffer;
  context: Context;
  at: number;
}

interface Context {
  exporter: string;
  recvMs: number;
  version: 9 | 10;
  /** Export time (UTC ms) and, for v9, the exporter's uptime at export (ms). */
  exportMs: number;
  uptimeMs: number;
}

export interface DecoderStats {
  datagrams: number;
  flows: number;
  templates: number;
  held: number;
  /** Data sets dropped because their template never came (or the hold was full). */
  heldDropped: number;
  malformed: number;
  optionsRecords: number;
}

export interface DecoderOptions {
  /** At most this many data sets wait for their templates; beyond it the oldest is dropped and counted. */
  maxHeld?: number;
  /** A held data set waits this long for its template. */
  holdMs?: number;
}

const IE = {
  octets: 1,
  packets: 2,
  proto: 4,
  srcPort: 7,
  srcV4: 8,
  dstPort: 11,
  dstV4: 12,
  endUptime: 21,
  startUptime: 22,
  outOctets: 23,
  outPackets: 24,
  srcV6: 27,
  dstV6: 28,
  srcMac: 56,
  octetTotal: 85,
  packetTotal: 86,
  startSec: 150,
  endSec: 151,
  startMs: 152,
  endMs: 153,
  startUs: 154,
  endUs: 155,
  natSrcV4: 225,
  natSrcPort: 227,
  natSrcV6: 281,
  userName: 371,
} as const;

const REVERSE_PEN = 29305;

// An address as text, written into a scratch buffer and read back as one
// flat string: the write-ahead log's encoder reads addresses character by
// character, and a string made by concatenation is slow to read that way.
const scratch = Buffer.alloc(16);

function ipv4(b: Buffer, o: number): string {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const v = b[o + i]!;
    if (i > 0) scratch[n++] = 0x2e;
    if (v >= 100) scratch[n++] = 0x30 + ((v / 100) | 0);
    if (v >= 10) scratch[n++] = 0x30 + (((v / 10) | 0) % 10);
    scratch[n++] = 0x30 + (v % 10);
  }
  return scratch.toString('latin1', 0, n);
}

function ipv6(b: Buffer, o: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(o + i).toString(16));
  // Longest run of zero groups as "::", as inet_ntop writes it.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

function uint(b: Buffer, o: number, len: number): number {
  switch (len) {
    case 1:
      return b[o]!;
    case 2:
      return b.readUInt16BE(o);
    case 4:
      return b.readUInt32BE(o);
    case 8:
      return Number(b.readBigUInt64BE(o));
    default: {
      let v = 0;
      for (let i = 0; i < len; i++) v = v * 256 + b[o + i]!;
      return v;
    }
  }
}

const MAC = (b: Buffer, o: number) => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

export class FlowDecoder {
  readonly stats: DecoderStats = { datagrams: 0, flows: 0, templates: 0, held: 0, heldDropped: 0, malformed: 0, optionsRecords: 0 };
  private readonly templates = new Map<string, Template>();
  private held: Held[] = [];
  private readonly maxHeld: number;
  private readonly holdMs: number;

  constructor(o: DecoderOptions = {}) {
    this.maxHeld = o.maxHeld ?? 10_000;
    this.holdMs = o.holdMs ?? 30 * 60_000;
  }

  /**
   * Decodes one datagram from `exporter`: its flows (with any held ones its
   * templates released) and, when it was not well formed, what was wrong;
   * the flows decoded before the fault are kept.
   */
  decode(buf: Buffer, exporter: string, recvMs: number): { flows: TrafficRecord[]; error?: string } {
    this.stats.datagrams++;
    const flows: TrafficRecord[] = [];
    let error: string | undefined;
    try {
      if (buf.length < 4) throw new DecodeError(`datagram of ${buf.length} bytes is too short for a NetFlow header`);
      const version = buf.readUInt16BE(0);
      if (version === 5) this.v5(buf, exporter, recvMs, flows);
      else if (version === 9) this.v9(buf, exporter, recvMs, flows);
      else if (version === 10) this.ipfix(buf, exporter, recvMs, flows);
      else throw new DecodeError(`version ${version} is not NetFlow v5, v9 or IPFIX (10)`);
    } catch (err) {
      if (!(err instanceof DecodeError || err instanceof RangeError)) throw err;
      this.stats.malformed++;
      error = `${exporter}: ${(err as Error).message}`;
    }
    this.stats.flows += flows.length;
    return error === undefined ? { flows } : { flows, error };
  }

  private v5(b: Buffer, exporter: string, recvMs: number, out: TrafficRecord[]): void {
    if (b.length < 24) throw new DecodeError(`NetFlow v5 header needs 24 bytes, got ${b.length}`);
    const count = b.readUInt16BE(2);
    const uptime = b.readUInt32BE(4);
    const exportMs = b.readUInt32BE(8) * 1000 + Math.floor(b.readUInt32BE(12) / 1e6);
    if (count > 30 || b.length < 24 + count * 48) throw new DecodeError(`NetFlow v5 says ${count} records, the datagram holds ${Math.floor((b.length - 24) / 48)}`);
    for (let i = 0; i < count; i++) {
      const o = 24 + i * 48;
      const r = emptyRecord('flow', 'netflow-v5', exporter, recvMs);
      r.src_ip = ipv4(b, o);
      r.dst_ip = ipv4(b, o + 4);
      r.packets = b.readUInt32BE(o + 16);
      r.bytes = b.readUInt32BE(o + 20);
      r.start_ms = exportMs - (uptime - b.readUInt32BE(o + 24));
      r.end_ms = exportMs - (uptime - b.readUInt32BE(o + 28));
      r.src_port = b.readUInt16BE(o + 32);
      r.dst_port = b.readUInt16BE(o + 34);
      r.proto = b[o + 38]!;
      r.dev_ms = r.end_ms;
      out.push(r);
    }
  }

  private v9(b: Buffer, exporter: string, recvMs: number, out: TrafficRecord[]): void {
    if (b.length < 20) throw new DecodeError(`NetFlow v9 header needs 20 bytes, got ${b.length}`);
    const ctx: Context = { exporter, recvMs, version: 9, uptimeMs: b.readUInt32BE(4), exportMs: b.readUInt32BE(8) * 1000 };
    const domain = b.readUInt32BE(16);
    this.sets(b, 20, ctx, domain, out);
  }

  private ipfix(b: Buffer, exporter: string, recvMs: number, out: TrafficRecord[]): void {
    if (b.length < 16) throw new DecodeError(`IPFIX header needs 16 bytes, got ${b.length}`);
    const length = b.readUInt16BE(2);
    if (length > b.length || length < 16) throw new DecodeError(`IPFIX message length ${length} does not fit the datagram of ${b.length} bytes`);
    const ctx: Context = { exporter, recvMs, version: 10, uptimeMs: 0, exportMs: b.readUInt32BE(4) * 1000 };
    this.sets(b.subarray(0, length), 16, ctx, b.readUInt32BE(12), out);
  }

  private sets(b: Buffer, start: number, ctx: Context, domain: number, out: TrafficRecord[]): void {
    const v9 = ctx.version === 9;
    let o = start;
    while (o + 4 <= b.length) {
      const id = b.readUInt16BE(o);
      const len = b.readUInt16BE(o + 2);
      if (len < 4 || o + len > b.length) throw new DecodeError(`set ${id} at byte ${o} says ${len} bytes, ${b.length - o} remain`);
      const body = b.subarray(o + 4, o + len);
      const key = `${ctx.exporter}|${domain}`;
      if ((v9 && id === 0) || (!v9 && id === 2)) this.readTemplates(body, key, false, v9, out);
      else if ((v9 && id === 1) || (!v9 && id === 3)) this.readTemplates(body, key, true, v9, out);
      else if (id >= 256) {
        const tkey = `${key}|${id}`;
        const t = this.templates.get(tkey);
        if (t) this.readData(body, t, ctx, out);
        else this.hold({ key: tkey, data: Buffer.from(body), context: ctx, at: ctx.recvMs });
      }
      // Ids 4-255 are reserved: skipped, as RFC 7011 asks.
      o += len;
    }
  }

  private readTemplates(b: Buffer, key: string, options: boolean, v9: boolean, out: TrafficRecord[]): void {
    let o = 0;
    while (o + 4 <= b.length) {
      const id = b.readUInt16BE(o);
      const count = b.readUInt16BE(o + 2);
      if (id === 0 && count === 0) break; // padding
      if (id < 256) throw new DecodeError(`template id ${id} is below 256`);
      o += 4;
      let fieldCount = count;
      if (options) {
        if (v9) {
          // v9 options template: scope length and option length in bytes, then the fields.
          const scopeLen = count;
          if (o + 2 > b.length) throw new DecodeError(`options template ${id} is cut short`);
          const optLen = b.readUInt16BE(o);
          o += 2;
          fieldCount = (scopeLen + optLen) / 4;
          if (!Number.isInteger(fieldCount)) throw new DecodeError(`options template ${id}: lengths ${scopeLen}+${optLen} are not whole fields`);
        } else {
          if (o + 2 > b.length) throw new DecodeError(`options template ${id} is cut short`);
          o += 2; // scope field count
        }
      }
      if (fieldCount === 0) {
        // A withdrawal (IPFIX): forget the template.
        this.templates.delete(`${key}|${id}`);
        continue;
      }
      const fields: FieldSpec[] = [];
      let length = 0;
      for (let i = 0; i < fieldCount; i++) {
        if (o + 4 > b.length) throw new DecodeError(`template ${id} ends after ${i} of ${fieldCount} fields`);
        let fid = b.readUInt16BE(o);
        const flen = b.readUInt16BE(o + 2);
        o += 4;
        let pen = 0;
        if (!v9 && fid & 0x8000) {
          if (o + 4 > b.length) throw new DecodeError(`template ${id}: enterprise field cut short`);
          pen = b.readUInt32BE(o);
          fid &= 0x7fff;
          o += 4;
        }
        fields.push({ id: fid, length: flen, pen });
        length = length < 0 || flen === 0xffff ? -1 : length + flen;
      }
      const tkey = `${key}|${id}`;
      this.templates.set(tkey, { fields, options, length });
      this.stats.templates++;
      this.release(tkey, out);
    }
  }

  private readData(b: Buffer, t: Template, ctx: Context, out: TrafficRecord[]): void {
    let o = 0;
    const min = t.length > 0 ? t.length : t.fields.length;
    while (o + min <= b.length && min > 0) {
      const r = t.options ? null : emptyRecord('flow', ctx.version === 9 ? 'netflow-v9' : 'ipfix', ctx.exporter, ctx.recvMs);
      let startUp: number | null = null;
      let endUp: number | null = null;
      for (const f of t.fields) {
        let len = f.length;
        if (len === 0xffff) {
          if (o + 1 > b.length) throw new DecodeError('variable-length field cut short');
          len = b[o]!;
          o++;
          if (len === 255) {
            if (o + 2 > b.length) throw new DecodeError('variable-length field cut short');
            len = b.readUInt16BE(o);
            o += 2;
          }
        }
        if (o + len > b.length) throw new DecodeError(`record cut short in field ${f.id} (${len} bytes at ${o} of ${b.length})`);
        // RFC 5103 biflows (reverse counters under PEN 29305): one record whose bytes and packets are both directions', as nfdump counts them.
        if (r && f.pen === REVERSE_PEN && (f.id === IE.octets || f.id === IE.packets)) {
          if (f.id === IE.octets) r.bytes = (r.bytes ?? 0) + uint(b, o, len);
          else r.packets = (r.packets ?? 0) + uint(b, o, len);
        } else if (r && f.pen === 0) {
          switch (f.id) {
            case IE.octets:
            case IE.octetTotal:
              r.bytes = (r.bytes ?? 0) + uint(b, o, len);
              break;
            case IE.packets:
            case IE.packetTotal:
              r.packets = (r.packets ?? 0) + uint(b, o, len);
              break;
            case IE.proto:
              r.proto = b[o]!;
              break;
            case IE.srcPort:
              r.src_port = uint(b, o, len);
              break;
            case IE.dstPort:
              r.dst_port = uint(b, o, len);
              break;
            case IE.srcV4:
              if (len === 4) r.src_ip = ipv4(b, o);
              break;
            case IE.dstV4:
              if (len === 4) r.dst_ip = ipv4(b, o);
              break;
            case IE.srcV6:
              if (len === 16) r.src_ip = ipv6(b, o);
              break;
            case IE.dstV6:
              if (len === 16) r.dst_ip = ipv6(b, o);
              break;
            case IE.natSrcV4:
              if (len === 4) r.nat_ip = ipv4(b, o);
              break;
            case IE.natSrcV6:
              if (len === 16) r.nat_ip = ipv6(b, o);
              break;
            case IE.natSrcPort:
              r.nat_port = uint(b, o, len);
              break;
            case IE.srcMac:
              if (len === 6) r.mac = MAC(b, o);
              break;
            case IE.startUptime:
              startUp = uint(b, o, len);
              break;
            case IE.endUptime:
              endUp = uint(b, o, len);
              break;
            case IE.startSec:
              r.start_ms = uint(b, o, len) * 1000;
              break;
            case IE.endSec:
              r.end_ms = uint(b, o, len) * 1000;
              break;
            case IE.startMs:
              r.start_ms = uint(b, o, len);
              break;
            case IE.endMs:
              r.end_ms = uint(b, o, len);
              break;
            case IE.startUs:
              r.start_ms = ntpMs(b, o);
              break;
            case IE.endUs:
              r.end_ms = ntpMs(b, o);
              break;
            case IE.userName:
              r.user = b.toString('utf8', o, o + len) || null;
              break;
          }
        }
        o += len;
      }
      if (!r) {
        this.stats.optionsRecords++;
        continue;
      }
      // v9 and some IPFIX exporters time flows by the exporter's uptime.
      if (startUp !== null && r.start_ms === null) r.start_ms = ctx.exportMs - (ctx.uptimeMs - startUp);
      if (endUp !== null && r.end_ms === null) r.end_ms = ctx.exportMs - (ctx.uptimeMs - endUp);
      r.dev_ms = r.end_ms ?? ctx.exportMs;
      out.push(r);
    }
  }

  private hold(h: Held): void {
    const now = h.at;
    this.held = this.held.filter((x) => {
      if (now - x.at <= this.holdMs) return true;
      this.stats.heldDropped++;
      return false;
    });
    if (this.held.length >= this.maxHeld) {
      this.held.shift();
      this.stats.heldDropped++;
    }
    this.held.push(h);
    this.stats.held = this.held.length;
  }

  private release(key: string, out: TrafficRecord[]): void {
    if (this.held.length === 0) return;
    const t = this.templates.get(key)!;
    const keep: Held[] = [];
    for (const h of this.held) {
      if (h.key === key) this.readData(h.data, t, h.context, out);
      else keep.push(h);
    }
    this.held = keep;
    this.stats.held = keep.length;
  }

  /** Data sets waiting for a template. */
  get pending(): number {
    return this.held.length;
  }
}

/** IPFIX dateTimeMicroseconds: NTP format (seconds since 1900, fraction). */
function ntpMs(b: Buffer, o: number): number {
  const sec = b.readUInt32BE(o) - 2_208_988_800;
  const frac = b.readUInt32BE(o + 4);
  return sec * 1000 + Math.floor((frac / 2 ** 32) * 1000);
}
