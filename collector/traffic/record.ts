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
}

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
// The write-ahead log's encoding: per row a null bitmap, then each present
// value (BIGINT as float64: milliseconds and byte counts are exact below
// 2^53; INTEGER int32; SMALLINT int16; VARCHAR u32 length + UTF-8). Five
// times faster than JSON and a third of its size.

const KIND = COLUMNS.map(([, t]) => (t === 'BIGINT' ? 0 : t === 'INTEGER' ? 1 : t === 'SMALLINT' ? 2 : 3));
const NAMES = COLUMNS.map(([c]) => c);
export const BINARY_MAGIC = 0x42;

export function encodeRecords(records: readonly TrafficRecord[]): Buffer {
  let buf = Buffer.allocUnsafe(64 + records.length * 160);
  let o = 0;
  const ensure = (n: number) => {
    if (o + n <= buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(buf.length * 2, o + n + 1024));
    buf.copy(next, 0, 0, o);
    buf = next;
  };
  buf[o++] = BINARY_MAGIC;
  buf.writeUInt32LE(records.length, o);
  o += 4;
  for (const r of records) {
    ensure(4 + 25 * 8);
    const mapAt = o;
    o += 4;
    let map = 0;
    for (let i = 0; i < NAMES.length; i++) {
      const v = r[NAMES[i]!];
      if (v === null || v === undefined) continue;
      map |= 1 << i;
      switch (KIND[i]) {
        case 0:
          ensure(8);
          buf.writeDoubleLE(v as number, o);
          o += 8;
          break;
        case 1:
          ensure(4);
          buf.writeInt32LE(v as number, o);
          o += 4;
          break;
        case 2:
          ensure(2);
          buf.writeInt16LE(v as number, o);
          o += 2;
          break;
        default: {
          const s = v as string;
          ensure(4 + s.length * 3);
          const n = buf.write(s, o + 4, 'utf8');
          buf.writeUInt32LE(n, o);
          o += 4 + n;
        }
      }
    }
    buf.writeUInt32LE(map >>> 0, mapAt);
  }
  return buf.subarray(0, o);
}

export function decodeRecords(buf: Buffer): TrafficRecord[] {
  let o = 1;
  const count = buf.readUInt32LE(o);
  o += 4;
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
