// A thin promise layer over one net-snmp session, counting what it sends so
// that a poll's cost (PDUs, timeouts) is part of its result, and naming what
// came back when no usable answer did: net-snmp drops a datagram it cannot
// decode (an 'error' event) and lets the request time out, so the session
// watches its own socket and says "undecodable", "truncated" or "unmatched"
// instead of "timeout" whenever something did come back.
import snmp, { type Varbind, type Session } from 'net-snmp';
import type { SnmpCredentials } from '../../config/load.ts';
import { SnmpError, SnmpTimeoutError, clip } from './errors.ts';

export { SnmpError, SnmpTimeoutError } from './errors.ts';

export interface SessionOptions {
  timeoutMs: number;
  retries: number;
}

export interface SnmpStats {
  pdus: number;
  timeouts: number;
}

// net-snmp's ResponseInvalidCode numbers.
const E_COULD_NOT_DECRYPT = 4;
const E_AUTH_FAILURE = 5;
const E_VERSION_NO_MATCH = 9;
const E_COMMUNITY_NO_MATCH = 10;
const E_NOT_IN_TIME_WINDOW = 14;

const VERSION_NAMES: Record<string, string> = { '0': 'SNMPv1', '1': 'SNMPv2c', '3': 'SNMPv3' };

/** What came back while the current request was out, other than its answer. */
interface Noise {
  undecodable: number;
  lastDecodeError: string;
  truncated: number;
  truncatedDetail: string;
  unmatched: number;
}

export class SnmpSession {
  /** What this session sent since the last resetStats() (a poll's cost). */
  stats: SnmpStats = { pdus: 0, timeouts: 0 };
  readonly version: 1 | 2 | 3;
  private readonly session: Session;
  private readonly opts: SessionOptions;
  private noise: Noise = { undecodable: 0, lastDecodeError: '', truncated: 0, truncatedDetail: '', unmatched: 0 };
  /** Set while net-snmp handles one datagram: whether it is shorter than its BER length, and what decoding it threw. */
  private inMessage = false;
  private messageTruncated = false;
  private messageError: Error | undefined;
  private messageSettled = false;
  /** Request ids of the last replies that answered a request (v1/v2c): a late duplicate of one is not noise. */
  private readonly answeredIds = [NaN, NaN, NaN, NaN];
  private answeredSlot = 0;

  constructor(address: string, port: number, creds: SnmpCredentials, opts: SessionOptions) {
    this.opts = opts;
    this.version = creds.version;
    const common = {
      port,
      retries: opts.retries,
      timeout: opts.timeoutMs,
      backoff: 1,
      transport: address.includes(':') ? ('udp6' as const) : ('udp4' as const),
      // Some agents answer GETBULK with OIDs out of order at a table's end
      // (RouterOS 6 among them); the walker checks order itself.
      backwardsGetNexts: true,
      reportOidMismatchErrors: false,
    };
    if (creds.version === 3) {
      const user: snmp_User = {
        name: creds.username ?? '',
        level: snmp.SecurityLevel[creds.level],
      };
      if (creds.authKey) {
        user.authProtocol = snmp.AuthProtocols[creds.authProtocol ?? 'sha'];
        user.authKey = creds.authKey.reveal();
      }
      if (creds.privKey) {
        user.privProtocol = snmp.PrivProtocols[creds.privProtocol ?? 'aes'];
        user.privKey = creds.privKey.reveal();
      }
      this.session = snmp.createV3Session(address, user, { ...common, version: snmp.Version3, ...(creds.context ? { context: creds.context } : {}) });
    } else {
      this.session = snmp.createSession(address, creds.community?.reveal() ?? '', {
        ...common,
        version: creds.version === 1 ? snmp.Version1 : snmp.Version2c,
      });
    }
    // net-snmp emits 'error' for a datagram it cannot decode (and would
    // otherwise throw it as an unhandled event): remember it for the request.
    this.session.on('error', (err) => {
      if (this.inMessage) this.messageError = err;
    });
    // Every datagram passes through here around net-snmp's own handler.
    const dgram = this.session.dgram;
    const handlers = dgram.listeners('message');
    if (handlers.length === 1) {
      const onMsg = handlers[0] as (buf: Buffer, rinfo: unknown) => void;
      dgram.removeListener('message', onMsg);
      dgram.on('message', (buf: Buffer, rinfo: unknown) => this.onDatagram(buf, rinfo, onMsg));
    }
  }

  get(oids: string[], what: string): Promise<Varbind[]> {
    this.begin();
    return new Promise((resolve, reject) => {
      this.session.get(oids, (err, vbs) => this.settle(err, what, reject) || resolve(vbs));
    });
  }

  getNext(oids: string[], what: string): Promise<Varbind[]> {
    this.begin();
    return new Promise((resolve, reject) => {
      this.session.getNext(oids, (err, vbs) => this.settle(err, what, reject) || resolve(vbs));
    });
  }

  /** GETBULK with no non-repeaters: one list of varbinds per requested OID. */
  getBulk(oids: string[], maxRepetitions: number, what: string): Promise<Varbind[][]> {
    this.begin();
    return new Promise((resolve, reject) => {
      this.session.getBulk(oids, 0, maxRepetitions, (err, vbs) => this.settle(err, what, reject) || resolve(vbs.map((v) => (Array.isArray(v) ? v : [v]))));
    });
  }

  resetStats(): void {
    this.stats = { pdus: 0, timeouts: 0 };
  }

  close(): void {
    try {
      this.session.close();
    } catch {
      // already closed
    }
  }

  private begin(): void {
    this.stats.pdus++;
    const n = this.noise;
    n.undecodable = 0;
    n.truncated = 0;
    n.unmatched = 0;
  }

  /** True when the request failed (rejected with its named error); false lets the caller resolve. A truncated reply is never trusted. */
  private settle(err: Error | null, what: string, reject: (e: Error) => void): boolean {
    const truncated = this.inMessage && this.messageTruncated;
    if (this.inMessage) this.messageSettled = true;
    if (truncated) {
      reject(new SnmpError('truncated_reply', what, `the reply is ${this.noise.truncatedDetail}: cut short, not used`));
      return true;
    }
    if (!err) return false;
    reject(this.wrap(err, what));
    return true;
  }

  private onDatagram(buf: Buffer, rinfo: unknown, onMsg: (buf: Buffer, rinfo: unknown) => void): void {
    const pending = this.session.reqCount;
    const declared = declaredLength(buf);
    this.inMessage = true;
    this.messageTruncated = declared > buf.length;
    if (this.messageTruncated) this.noise.truncatedDetail = `${buf.length} of the ${declared === Infinity ? '?' : declared} bytes its length says`;
    this.messageError = undefined;
    this.messageSettled = false;
    try {
      onMsg(buf, rinfo);
    } catch (err) {
      // net-snmp past its own decoding (odd but decodable input): the same as undecodable.
      this.messageError = err as Error;
    } finally {
      this.inMessage = false;
    }
    if (this.messageSettled) {
      this.rememberAnswered(buf);
      return;
    }
    const n = this.noise;
    if (this.messageTruncated) n.truncated++;
    else if (this.messageError) {
      n.undecodable++;
      n.lastDecodeError = clip(this.messageError.message, 120);
    } else if (this.session.reqCount < pending) {
      // It answered a request that goes on (SNMPv3 discovery, then the real request).
    } else if (!this.answeredIds.includes(requestId(buf))) n.unmatched++;
  }

  private rememberAnswered(buf: Buffer): void {
    const id = requestId(buf);
    if (Number.isNaN(id)) return;
    this.answeredIds[this.answeredSlot] = id;
    this.answeredSlot = (this.answeredSlot + 1) & 3;
  }

  private wrap(err: Error, what: string): Error {
    if (err instanceof snmp.RequestTimedOutError || err.name === 'RequestTimedOutError') {
      // A timeout only when nothing came back; otherwise say what did.
      const n = this.noise;
      const replies = (k: number) => (k === 1 ? '1 reply' : `${k} replies`);
      if (n.truncated > 0) return new SnmpError('truncated_reply', what, `${replies(n.truncated)} came back cut short (${n.truncatedDetail}), no complete one`);
      if (n.undecodable > 0) return new SnmpError('undecodable_reply', what, `${replies(n.undecodable)} came back that cannot be decoded as SNMP (${n.lastDecodeError}), no usable one`);
      if (n.unmatched > 0) return new SnmpError('unmatched_reply', what, `${replies(n.unmatched)} came back with a request id of no request sent (damaged, or meant for another manager), none to this request`);
      this.stats.timeouts++;
      return new SnmpTimeoutError(what, this.opts.timeoutMs, this.opts.retries);
    }
    if (err instanceof snmp.RequestFailedError) {
      return new SnmpError('agent_error', what, `the agent answered ${err.message}`, err.status);
    }
    if (err instanceof snmp.ResponseInvalidError) {
      switch (err.code) {
        case E_COMMUNITY_NO_MATCH:
          // Never the communities themselves: they are secrets.
          return new SnmpError('wrong_community', what, 'the reply carries another community than the request (an agent or a proxy answering for another device?)');
        case E_VERSION_NO_MATCH: {
          const [, asked, got] = /'(\d+)'[^']*'(\d+)'/.exec(err.message) ?? [];
          const name = (v: string | undefined) => (v === undefined ? 'another version' : (VERSION_NAMES[v] ?? `version field ${v}`));
          return new SnmpError('wrong_version', what, `asked in ${name(asked)}, the reply is ${name(got)}`);
        }
        case E_AUTH_FAILURE:
        case E_COULD_NOT_DECRYPT:
        case E_NOT_IN_TIME_WINDOW:
          return new SnmpError('auth_failed', what, /digest/i.test(err.message) ? "the reply's authentication digest does not match (wrong auth key or protocol?)" : clip(err.message));
        default:
          return new SnmpError('invalid_reply', what, `the reply does not answer the request: ${clip(err.message)}`);
      }
    }
    return new SnmpError('local_error', what, clip(err.message));
  }
}

/**
 * The length an SNMP message (a BER SEQUENCE) says it has, header included;
 * Infinity when a SEQUENCE's header itself is cut; -1 for anything that does
 * not start as a SEQUENCE (not SNMP at all: undecodable, not truncated).
 */
export function declaredLength(buf: Buffer): number {
  if (buf.length === 0 || buf[0] !== 0x30) return -1;
  if (buf.length < 2) return Infinity;
  const first = buf[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4) return -1;
  if (buf.length < 2 + n) return Infinity;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[2 + i]!;
  return 2 + n + len;
}

// The length of the TLV header last read by tlv().
let tlvLength = 0;

/** Offset of the contents of the TLV at `o` (tag checked unless undefined), its length in tlvLength; -1 when it cannot be read. */
function tlv(buf: Buffer, o: number, tag: number | undefined): number {
  if (o < 0 || o + 2 > buf.length || (tag !== undefined && buf[o] !== tag)) return -1;
  const b = buf[o + 1]!;
  let p = o + 2;
  if (b < 0x80) tlvLength = b;
  else {
    const k = b & 0x7f;
    if (k === 0 || k > 4 || p + k > buf.length) return -1;
    tlvLength = 0;
    for (let i = 0; i < k; i++) tlvLength = tlvLength * 256 + buf[p++]!;
  }
  return p;
}

/** The request id of an SNMPv1/v2c message, read in place without decoding the rest; NaN when there is none to read (or SNMPv3). */
export function requestId(buf: Buffer): number {
  let o = tlv(buf, 0, 0x30);
  o = tlv(buf, o, 0x02); // version
  if (o < 0 || tlvLength !== 1 || buf[o] === 3) return NaN; // SNMPv3 keeps its request id inside the scoped PDU
  o = tlv(buf, o + 1, 0x04); // community
  if (o < 0) return NaN;
  o = tlv(buf, o + tlvLength, undefined); // the PDU
  o = tlv(buf, o, 0x02); // request-id
  if (o < 0 || tlvLength < 1 || tlvLength > 5 || o + tlvLength > buf.length) return NaN;
  let id = buf[o]! & 0x80 ? -1 : 0;
  for (let i = 0; i < tlvLength; i++) id = id * 256 + buf[o + i]!;
  return id;
}

type snmp_User = import('net-snmp').User;

export const ObjectType = snmp.ObjectType;
export const ErrorStatus = snmp.ErrorStatus;
export const isVarbindError = snmp.isVarbindError;
/** The ASN.1 types klaiwatch checks for by number (SNMPv2-SMI, RFC 3416). */
export const TYPE = { OID: 6, TimeTicks: 67, NoSuchObject: 128, NoSuchInstance: 129, EndOfMibView: 130 } as const;

/** A varbind's value as a JavaScript value: bigint for Counter64, number for other integers, string for text and OIDs. */
export function varbindValue(vb: Varbind): number | bigint | string | undefined {
  if (isVarbindError(vb)) return undefined;
  const v = vb.value;
  switch (vb.type) {
    case ObjectType.Counter64:
      if (Buffer.isBuffer(v)) {
        let n = 0n;
        for (const byte of v) n = (n << 8n) | BigInt(byte);
        return n;
      }
      return typeof v === 'number' ? BigInt(v) : undefined;
    case ObjectType.OctetString:
    case ObjectType.Opaque:
      return Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : undefined;
    case ObjectType.OID:
    case ObjectType.IpAddress:
      return String(v);
    case ObjectType.Null:
      return undefined;
    default:
      return typeof v === 'number' ? v : undefined;
  }
}

const TYPE_NAMES: Record<number, string> = {
  1: 'Boolean', 2: 'Integer', 3: 'BitString', 4: 'OctetString', 5: 'Null', 6: 'OID', 64: 'IpAddress', 65: 'Counter32',
  66: 'Gauge32', 67: 'TimeTicks', 68: 'Opaque', 70: 'Counter64', 128: 'noSuchObject', 129: 'noSuchInstance', 130: 'endOfMibView',
};

/** A varbind's ASN.1 type as SNMP names it, for messages. */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}
