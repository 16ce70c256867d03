// A UDP relay between the collector and a real agent (snmpsimd serving a
// recording) that rewrites the agent's replies the ways broken agents and
// networks do: OIDs that do not increase, a value of the wrong type,
// noSuchObject, another community or version, a cut-short datagram, flipped
// bytes, or bytes that are not SNMP at all. SNMPv1/v2c messages are decoded
// and encoded here by hand (BER is small); anything else passes as bytes.
import { createSocket, type Socket } from 'node:dgram';

export interface Varbind {
  oid: string;
  /** The ASN.1 tag of the value (4 OctetString, 65 Counter32, 70 Counter64, 128 noSuchObject, …). */
  type: number;
  /** The value's content bytes, as on the wire. */
  value: Buffer;
}

export interface SnmpMessage {
  /** 0 = SNMPv1, 1 = SNMPv2c. */
  version: number;
  community: Buffer;
  /** 0xa0 get, 0xa1 getnext, 0xa2 response, 0xa5 getbulk. */
  pduType: number;
  requestId: number;
  errorStatus: number;
  errorIndex: number;
  varbinds: Varbind[];
}

export const PDU = { get: 0xa0, getNext: 0xa1, response: 0xa2, getBulk: 0xa5 } as const;
export const TYPE = { Integer: 2, OctetString: 4, Null: 5, OID: 6, Counter32: 65, Gauge32: 66, TimeTicks: 67, Counter64: 70, NoSuchObject: 128, NoSuchInstance: 129, EndOfMibView: 130 } as const;

// ---------------------------------------------------------------- BER

function readTlv(buf: Buffer, at: number): { tag: number; start: number; end: number } {
  if (at + 2 > buf.length) throw new Error(`BER: no header at ${at}`);
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error(`BER: bad length form at ${at}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start++]!;
  }
  if (start + len > buf.length) throw new Error(`BER: length ${len} at ${at} past the end`);
  return { tag, start, end: start + len };
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const head = n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : [tag, 0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from(head), content]);
}

function readInt(buf: Buffer, start: number, end: number): number {
  let v = buf[start]! & 0x80 ? -1 : 0;
  for (let i = start; i < end; i++) v = v * 256 + buf[i]!;
  return v;
}

function encInt(tag: number, v: number): Buffer {
  const bytes: number[] = [];
  let x = v;
  do {
    bytes.unshift(((x % 256) + 256) % 256);
    x = Math.floor(x / 256);
  } while (x !== 0 && x !== -1);
  if (v >= 0 && bytes[0]! & 0x80) bytes.unshift(0);
  if (v < 0 && !(bytes[0]! & 0x80)) bytes.unshift(0xff);
  return tlv(tag, Buffer.from(bytes));
}

function readOid(buf: Buffer, start: number, end: number): string {
  const arcs: number[] = [];
  let v = 0;
  for (let i = start; i < end; i++) {
    v = v * 128 + (buf[i]! & 0x7f);
    if (!(buf[i]! & 0x80)) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

function encOid(oid: string): Buffer {
  const arcs = oid.split('.').map(Number);
  const out: number[] = [];
  const push = (n: number) => {
    const b = [n & 0x7f];
    for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) b.unshift((n & 0x7f) | 0x80);
    out.push(...b);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(TYPE.OID, Buffer.from(out));
}

/** An SNMPv1/v2c message; throws on anything else. */
export function decodeMessage(buf: Buffer): SnmpMessage {
  const msg = readTlv(buf, 0);
  const ver = readTlv(buf, msg.start);
  const com = readTlv(buf, ver.end);
  const pdu = readTlv(buf, com.end);
  const id = readTlv(buf, pdu.start);
  const es = readTlv(buf, id.end);
  const ei = readTlv(buf, es.end);
  const list = readTlv(buf, ei.end);
  const varbinds: Varbind[] = [];
  for (let at = list.start; at < list.end; ) {
    const vb = readTlv(buf, at);
    const o = readTlv(buf, vb.start);
    const v = readTlv(buf, o.end);
    varbinds.push({ oid: readOid(buf, o.start, o.end), type: v.tag, value: Buffer.from(buf.subarray(v.start, v.end)) });
    at = vb.end;
  }
  return {
    version: readInt(buf, ver.start, ver.end),
    community: Buffer.from(buf.subarray(com.start, com.end)),
    pduType: pdu.tag,
    requestId: readInt(buf, id.start, id.end),
    errorStatus: readInt(buf, es.start, es.end),
    errorIndex: readInt(buf, ei.start, ei.end),
    varbinds,
  };
}

export function encodeMessage(m: SnmpMessage): Buffer {
  const list = tlv(0x30, Buffer.concat(m.varbinds.map((vb) => tlv(0x30, Buffer.concat([encOid(vb.oid), tlv(vb.type, vb.value)])))));
  const pdu = tlv(m.pduType, Buffer.concat([encInt(2, m.requestId), encInt(2, m.errorStatus), encInt(2, m.errorIndex), list]));
  return tlv(0x30, Buffer.concat([encInt(2, m.version), tlv(4, m.community), pdu]));
}

// ---------------------------------------------------------------- rewrites

/** What the relay does to one reply: the bytes to send back (several, or none to drop it). */
export type Rewrite = (reply: Buffer, request: Buffer) => Buffer | Buffer[] | null;

const under = (prefix: string, oid: string) => oid === prefix || oid.startsWith(prefix + '.');

/** Decodes, edits, encodes; replies it cannot decode pass unchanged. */
function edit(fn: (reply: SnmpMessage, request: SnmpMessage) => void): Rewrite {
  return (reply, request) => {
    let m: SnmpMessage;
    let q: SnmpMessage;
    try {
      m = decodeMessage(reply);
      q = decodeMessage(request);
    } catch {
      return reply;
    }
    fn(m, q);
    return encodeMessage(m);
  };
}

/**
 * GETBULK replies to a walk of `column`: its 3rd varbind (counted across the
 * replies of one walk, in the column's own slot of the reply) is replaced by
 * an earlier one: the 1st (`reorder`: …1, …2, …1, OIDs going back) or the 2nd
 * (`repeat`: …1, …2, …2, the same OID twice).
 */
function disorder(column: string, from: 1 | 2): Rewrite {
  const seen: Varbind[] = [];
  return edit((m, q) => {
    if (q.pduType !== PDU.getBulk) return;
    const n = q.varbinds.length;
    const slot = q.varbinds.findIndex((vb) => vb.oid === column || under(column, vb.oid));
    if (slot < 0) return;
    if (q.varbinds[slot]!.oid === column) seen.length = 0; // a new walk of the column
    for (let i = slot; i < m.varbinds.length; i += n) {
      const vb = m.varbinds[i]!;
      if (!under(column, vb.oid)) return;
      if (seen.length === 2) {
        m.varbinds[i] = { ...seen[from - 1]! };
        seen.push(vb);
        return;
      }
      if (seen.length < 2) seen.push({ ...vb });
    }
  });
}

export const reorderColumn = (column: string): Rewrite => disorder(column, 1);
export const repeatColumn = (column: string): Rewrite => disorder(column, 2);

/** GETBULK replies keep only their first `n` varbinds (an agent at its size limit, RFC 3416 4.2.3; 0: none at all). */
export function keepVarbinds(n: number): Rewrite {
  return edit((m, q) => {
    if (q.pduType === PDU.getBulk) m.varbinds = m.varbinds.slice(0, n);
  });
}

/** Every varbind under `prefix` gets another type and value (e.g. OctetString "n/a" where a counter was). */
export function retype(prefix: string, type: number, value: Buffer): Rewrite {
  return edit((m) => {
    for (const vb of m.varbinds) {
      if (under(prefix, vb.oid)) {
        vb.type = type;
        vb.value = value;
      }
    }
  });
}

/** Every varbind under `prefix` becomes noSuchObject (or another exception type). */
export function noSuch(prefix: string, type: number = TYPE.NoSuchObject): Rewrite {
  return retype(prefix, type, Buffer.alloc(0));
}

export function setCommunity(community: string): Rewrite {
  return edit((m) => {
    m.community = Buffer.from(community);
  });
}

export function setVersion(version: number): Rewrite {
  return edit((m) => {
    m.version = version;
  });
}

/** The datagram cut to `keep` bytes (a fraction of its length when below 1). */
export function truncate(keep: number): Rewrite {
  return (reply) => reply.subarray(0, keep < 1 ? Math.floor(reply.length * keep) : keep);
}

/** Bytes at the given offsets (modulo the length) XOR-ed with `mask`. */
export function flipBytes(offsets: number[], mask = 0xff): Rewrite {
  return (reply) => {
    const out = Buffer.from(reply);
    for (const o of offsets) out[o % out.length]! ^= mask;
    return out;
  };
}

/** Rewrites one after the other (each on every datagram the one before gave). */
export function chain(...rewrites: Rewrite[]): Rewrite {
  return (reply, request) => {
    let out: Buffer[] = [reply];
    for (const r of rewrites) out = out.flatMap((b) => r(b, request) ?? []);
    return out;
  };
}

/** Only replies to requests of this PDU type are rewritten. */
export function onlyFor(pduType: number, rewrite: Rewrite): Rewrite {
  return (reply, request) => {
    try {
      if (decodeMessage(request).pduType !== pduType) return reply;
    } catch {
      return reply;
    }
    return rewrite(reply, request);
  };
}

// ---------------------------------------------------------------- relay

export interface SnmpRelay {
  address: string;
  port: number;
  /** What happens to the agent's replies; change it between polls. */
  rewrite: Rewrite | undefined;
  /** Datagrams relayed each way. */
  stats: { requests: number; replies: number };
  close(): Promise<void>;
}

/** A relay on `address` (port chosen by the kernel) in front of the agent at `agent`. One upstream socket per client, at most 64. */
export async function startSnmpRelay(address: string, agent: { address: string; port: number }, rewrite?: Rewrite): Promise<SnmpRelay> {
  const down = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    down.once('error', reject);
    down.bind(0, address, () => resolve());
  });
  const upstreams = new Map<string, { socket: Socket; lastRequest: Buffer }>();
  const relay: SnmpRelay = {
    address,
    port: down.address().port,
    rewrite,
    stats: { requests: 0, replies: 0 },
    close: async () => {
      for (const u of upstreams.values()) u.socket.close();
      upstreams.clear();
      await new Promise<void>((r) => down.close(() => r()));
    },
  };
  down.on('message', (request, client) => {
    const key = `${client.address}:${client.port}`;
    let up = upstreams.get(key);
    if (!up) {
      if (upstreams.size >= 64) {
        const [oldest, u] = upstreams.entries().next().value!;
        u.socket.close();
        upstreams.delete(oldest);
      }
      const socket = createSocket('udp4');
      const entry = { socket, lastRequest: request };
      socket.on('message', (reply) => {
        const out = relay.rewrite ? relay.rewrite(reply, entry.lastRequest) : reply;
        for (const b of out === null ? [] : Array.isArray(out) ? out : [out]) {
          relay.stats.replies++;
          down.send(b, client.port, client.address);
        }
      });
      socket.on('error', () => {});
      up = entry;
      upstreams.set(key, up);
    }
    up.lastRequest = request;
    relay.stats.requests++;
    up.socket.send(request, agent.port, agent.address);
  });
  down.on('error', () => {});
  return relay;
}
