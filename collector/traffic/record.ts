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
