// One archived traffic record: a flow or a log line, with the network facts
// the Computer Crime Act asks for (origin, destination, time, volume, type
// of service, and who). The same columns, in this order, are the write-ahead
// log's rows and the sealed Parquet segments' columns.

export interface TrafficRecord {
  /** When klaiwatch received it (UTC ms): retention counts from this. */
  recv_ms: number;
  /** The device's own time for it (UTC ms), when the message or flow carried one. */
  dev_ms: number | null;
  kind: 'flow' | 'log';
  /** What understood it: netflow-v5, netflow-v9, ipfix, mikrotik-firewall, isc-dhcp ...; "syslog" when only the header was understood. */
  parser: string;
  /** The address it came from. */
  exporter: string;
  /** The school whose device sent it (inventory address), or null. */
  school: string | null;
  src_ip: string | null;
  src_port: number | null;
  dst_ip: string | null;
  dst_port: number | null;
  /** IANA protocol number (6 TCP, 17 UDP, 1 ICMP). */
  proto: number | null;
  bytes: number | null;
  packets: number | null;
  /** A flow's first and last packet (UTC ms). */
  start_ms: number | null;
  end_ms: number | null;
  /** Source address and port after NAT. */
  nat_ip: string | null;
  nat_port: number | null;
  mac: string | null;
  user: string | null;
  /** The client's own name (DHCP host name) or the access server (RADIUS NAS). */
  client: string | null;
  url: string | null;
  /** What happened: pass, block, assigned, released, login, logout, start, stop, TCP_MISS/200 ... */
  action: string | null;
  /** Syslog host name and application, as the message named them. */
  host: string | null;
  app: string | null;
  /** The message as it arrived (logs); null for flows. Kept whole whether or not it parsed. */
  raw: string | null;
  /** What happened to the message on its way in (FLAG_*), a bitmask; null when nothing did (and in records from before this column). */
  flags: number | null;
  /** 1-in-N packet sampling the exporter applied to this flow (N; null: unsampled or not said). `packets` and `bytes` are as received; times N they estimate the traffic, as nfdump shows it. */
  sampling: number | null;
  /** RFC 8158 / IANA natEvent (IE 230): 1 create, 2 delete, 3 pool exhausted ... (null: not a NAT event). */
  nat_event: number | null;
  /** Destination address and port after NAT (IE 226/282, 228; RouterOS dst-nat, Cisco ASA mapped destination): the inside server a public destination stood for. */
  post_nat_dst_ip: string | null;
  post_nat_dst_port: number | null;
  /** The message's bytes exactly as they arrived, only when they were not valid UTF-8 (`raw` then holds them with U+FFFD for each bad sequence). */
  raw_bytes: Uint8Array | null;
}

/** The message was longer than syslog.max_message: `raw` is its first max_message bytes (archive/framer.ts). */
export const FLAG_CUT = 1;
/** Only the first PARSE_LIMIT characters were parsed (archive/parsers.ts); `raw` holds all of them. */
export const FLAG_PARSE_LIMIT = 2;
/** Parsing took longer than its time budget and was given up: the record is the header's only (set in the receive path). */
export const FLAG_SLOW = 4;
/** Reserved. */
export const FLAG_RESERVED = 8;

/** Column order and DuckDB types of the archive (WAL rows and Parquet segments). */
export const COLUMNS = [
  ['recv_ms', 'BIGINT'],
  ['dev_ms', 'BIGINT'],
  ['kind', 'VARCHAR'],
  ['parser', 'VARCHAR'],
  ['exporter', 'VARCHAR'],
  ['school', 'VARCHAR'],
  ['src_ip', 'VARCHAR'],
  ['src_port', 'INTEGER'],
  ['dst_ip', 'VARCHAR'],
  ['dst_port', 'INTEGER'],
  ['proto', 'SMALLINT'],
  ['bytes', 'BIGINT'],
  ['packets', 'BIGINT'],
  ['start_ms', 'BIGINT'],
  ['end_ms', 'BIGINT'],
  ['nat_ip', 'VARCHAR'],
  ['nat_port', 'INTEGER'],
  ['mac', 'VARCHAR'],
  ['user', 'VARCHAR'],
  ['client', 'VARCHAR'],
  ['url', 'VARCHAR'],
  ['action', 'VARCHAR'],
  ['host', 'VARCHAR'],
  ['app', 'VARCHAR'],
  ['raw', 'VARCHAR'],
  // Since layout 3 (layout.ts); a frame's column map says whether its rows have it.
  ['flags', 'INTEGER'],
  // Since layout 4: sampling, NAT events and destinations, raw bytes.
  ['sampling', 'INTEGER'],
  ['nat_event', 'SMALLINT'],
  ['post_nat_dst_ip', 'VARCHAR'],
  ['post_nat_dst_port', 'INTEGER'],
  ['raw_bytes', 'BLOB'],
] as const satisfies readonly (readonly [keyof TrafficRecord, string])[];

export type ColumnName = (typeof COLUMNS)[number][0];

/** A record with every fact empty, to fill in. */
export function emptyRecord(kind: TrafficRecord['kind'], parser: string, exporter: string, recvMs: number): TrafficRecord {
  return {
    recv_ms: recvMs,
    dev_ms: null,
    kind,
    parser,
    exporter,
    school: null,
    src_ip: null,
    src_port: null,
    dst_ip: null,
    dst_port: null,
    proto: null,
    bytes: null,
    packets: null,
    start_ms: null,
    end_ms: null,
    nat_ip: null,
    nat_port: null,
    mac: null,
    user: null,
    client: null,
    url: null,
    action: null,
    host: null,
    app: null,
    raw: null,
    flags: null,
    sampling: null,
    nat_event: null,
    post_nat_dst_ip: null,
    post_nat_dst_port: null,
    raw_bytes: null,
  };
}

/** As a row (array in COLUMNS order): how the write-ahead log stores it. */
export function toRow(r: TrafficRecord): unknown[] {
  return COLUMNS.map(([c]) => r[c]);
}

export function fromRow(row: readonly unknown[]): TrafficRecord {
  const r = {} as Record<string, unknown>;
  COLUMNS.forEach(([c], i) => (r[c] = row[i] ?? null));
  return r as unknown as TrafficRecord;
}

export const PROTOCOLS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132 };

export function protoNumber(name: string): number | null {
  const n = Number(name);
  if (Number.isInteger(n) && n >= 0 && n <= 255) return n;
  return PROTOCOLS[name.toLowerCase()] ?? null;
}

/** MAC addresses in one spelling: lower case, colons. */
export function normalMac(mac: string): string {
  return mac.toLowerCase().replace(/-/g, ':');
}

// ---------------------------------------------------------------- binary rows
// The write-ahead log's encoding of a frame: a magic byte, u32 row count,
// u32 map of the columns any row has (so a reader can leave out the empty
// ones), then per row a u32 map of its present columns and each present
// value (BIGINT as float64: milliseconds and byte counts are exact below
// 2^53; INTEGER int32; SMALLINT int16; VARCHAR u32 length + UTF-8; BLOB u32
// length + the bytes). Five
// times faster than JSON and a third of its size. Frames of the first
// versions (magic 0x42, no frame map; JSON rows, "[") are still read; so
// are frames written before a column was added (flags; sampling to
// raw_bytes): their maps lack its bit, and the column reads as null. A map
// has 32 bits: 32 columns at most (31 used).

const KIND = COLUMNS.map(([, t]) => (t === 'BIGINT' ? 0 : t === 'INTEGER' ? 1 : t === 'SMALLINT' ? 2 : t === 'BLOB' ? 4 : 3));
const NAMES = COLUMNS.map(([c]) => c);
/** Binary rows with the frame's column map. */
const ROWS_MAGIC = 0x43;
/** Binary rows without it (the first binary frames). */
const ROWS_MAGIC_V1 = 0x42;
/** Every column. */
const ALL_COLUMNS = 2 ** COLUMNS.length - 1;

/** Where a frame's rows start, and the columns they may have; null for a frame of JSON rows. */
export function frameLayout(payload: Buffer): { count: number; columns: number; rowsAt: number } | null {
  if (payload[0] === ROWS_MAGIC) return { count: payload.readUInt32LE(1), columns: payload.readUInt32LE(5), rowsAt: 9 };
  if (payload[0] === ROWS_MAGIC_V1) return { count: payload.readUInt32LE(1), columns: ALL_COLUMNS, rowsAt: 5 };
  return null;
}

// The encoder is written out column by column (not a loop over COLUMNS):
// a record's fields read by name at one site are a megamorphic look-up each,
// and this runs on the receivers' thread for every record. Its state while
// it runs (RowEncoder.encode sets it):
let out = Buffer.alloc(0);
let view = new DataView(out.buffer);
let at = 0;
let map = 0;

function room(n: number): void {
  if (at + n <= out.length) return;
  const next = Buffer.allocUnsafe(Math.max(out.length * 2, at + n + 1024));
  out.copy(next, 0, 0, at);
  out = next;
  view = new DataView(out.buffer, out.byteOffset, out.length);
}

function f64(v: number | null, bit: number): void {
  if (v === null || v === undefined) return;
  map |= bit;
  view.setFloat64(at, v, true);
  at += 8;
}

function i32(v: number | null, bit: number): void {
  if (v === null || v === undefined) return;
  map |= bit;
  view.setInt32(at, v, true);
  at += 4;
}

function i16(v: number | null, bit: number): void {
  if (v === null || v === undefined) return;
  map |= bit;
  view.setInt16(at, v, true);
  at += 2;
}

function str(v: string | null, bit: number): void {
  if (v === null || v === undefined) return;
  map |= bit;
  const n = v.length;
  room(4 + n * 3);
  // Short ASCII (addresses, names, actions) byte by byte; anything else through the UTF-8 encoder.
  let ascii = n <= 64;
  if (ascii) {
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      out[at + 4 + i] = c;
    }
  }
  const len = ascii ? n : out.write(v, at + 4, 'utf8');
  view.setUint32(at, len, true);
  at += 4 + len;
}

function blob(v: Uint8Array | null, bit: number): void {
  if (v === null || v === undefined) return;
  map |= bit;
  room(4 + v.length);
  view.setUint32(at, v.length, true);
  out.set(v, at + 4);
  at += 4 + v.length;
}

/**
 * Encodes frames into a buffer it keeps: a fresh multi-megabyte buffer per
 * frame costs more than the encoding (the allocation, and the garbage
 * collection it brings on). What `encode` returns is valid until its next
 * call; the write-ahead log writes each frame before it encodes the next.
 */
export class RowEncoder {
  private buf = Buffer.allocUnsafe(1 << 20);

  encode(records: readonly TrafficRecord[]): Buffer {
    out = this.buf;
    view = new DataView(out.buffer, out.byteOffset, out.length);
    at = 0;
    room(9);
    out[at++] = ROWS_MAGIC;
    view.setUint32(at, records.length, true);
    let columns = 0;
    at += 8;
    for (const r of records) {
      // Fixed-size fields ask for room before each run of them; strings ask for their own.
      room(24);
      const mapAt = at;
      at += 4;
      map = 0;
      f64(r.recv_ms, 1 << 0);
      f64(r.dev_ms, 1 << 1);
      str(r.kind, 1 << 2);
      str(r.parser, 1 << 3);
      str(r.exporter, 1 << 4);
      str(r.school, 1 << 5);
      str(r.src_ip, 1 << 6);
      room(4);
      i32(r.src_port, 1 << 7);
      str(r.dst_ip, 1 << 8);
      room(40);
      i32(r.dst_port, 1 << 9);
      i16(r.proto, 1 << 10);
      f64(r.bytes, 1 << 11);
      f64(r.packets, 1 << 12);
      f64(r.start_ms, 1 << 13);
      f64(r.end_ms, 1 << 14);
      str(r.nat_ip, 1 << 15);
      room(4);
      i32(r.nat_port, 1 << 16);
      str(r.mac, 1 << 17);
      str(r.user, 1 << 18);
      str(r.client, 1 << 19);
      str(r.url, 1 << 20);
      str(r.action, 1 << 21);
      str(r.host, 1 << 22);
      str(r.app, 1 << 23);
      str(r.raw, 1 << 24);
      room(4);
      i32(r.flags, 1 << 25);
      room(10);
      i32(r.sampling, 1 << 26);
      i16(r.nat_event, 1 << 27);
      str(r.post_nat_dst_ip, 1 << 28);
      room(4);
      i32(r.post_nat_dst_port, 1 << 29);
      blob(r.raw_bytes, 1 << 30);
      view.setUint32(mapAt, map >>> 0, true);
      columns |= map;
    }
    view.setUint32(5, columns >>> 0, true);
    // A buffer grown for one huge frame is not kept.
    this.buf = out.length > 64 << 20 ? Buffer.allocUnsafe(1 << 20) : out;
    return out.subarray(0, at);
  }
}

/** Records as one frame, in a buffer of its own. */
export function encodeRecords(records: readonly TrafficRecord[]): Buffer {
  return Buffer.from(new RowEncoder().encode(records));
}

/** A frame's records (any of the layouts a write-ahead log may hold). */
export function decodeFrame(buf: Buffer): TrafficRecord[] {
  const layout = frameLayout(buf);
  if (!layout) return (JSON.parse(buf.toString('utf8')) as unknown[][]).map(fromRow);
  let o = layout.rowsAt;
  const count = layout.count;
  const out: TrafficRecord[] = new Array(count);
  for (let k = 0; k < count; k++) {
    const map = buf.readUInt32LE(o);
    o += 4;
    const r = {} as Record<string, unknown>;
    for (let i = 0; i < NAMES.length; i++) {
      if (!(map & (1 << i))) {
        r[NAMES[i]!] = null;
        continue;
      }
      switch (KIND[i]) {
        case 0:
          r[NAMES[i]!] = buf.readDoubleLE(o);
          o += 8;
          break;
        case 1:
          r[NAMES[i]!] = buf.readInt32LE(o);
          o += 4;
          break;
        case 2:
          r[NAMES[i]!] = buf.readInt16LE(o);
          o += 2;
          break;
        case 4: {
          const n = buf.readUInt32LE(o);
          r[NAMES[i]!] = Buffer.from(buf.subarray(o + 4, o + 4 + n));
          o += 4 + n;
          break;
        }
        default: {
          const n = buf.readUInt32LE(o);
          r[NAMES[i]!] = buf.toString('utf8', o + 4, o + 4 + n);
          o += 4 + n;
        }
      }
    }
    out[k] = r as unknown as TrafficRecord;
  }
  return out;
}
