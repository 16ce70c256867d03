// A thin promise layer over one net-snmp session, counting what it sends so
// that a poll's cost (PDUs, timeouts) is part of its result.
import snmp, { type Varbind, type Session } from 'net-snmp';
import type { SnmpCredentials } from '../../config/load.ts';

export interface SessionOptions {
  timeoutMs: number;
  retries: number;
}

export interface SnmpStats {
  pdus: number;
  timeouts: number;
}

export class SnmpTimeoutError extends Error {
  constructor(what: string, timeoutMs: number, retries: number) {
    super(`${what}: timeout after ${retries + 1} ${retries === 0 ? 'try' : 'tries'} of ${timeoutMs} ms`);
    this.name = 'SnmpTimeoutError';
  }
}

export class SnmpSession {
  /** What this session sent since the last resetStats() (a poll's cost). */
  stats: SnmpStats = { pdus: 0, timeouts: 0 };
  readonly version: 1 | 2 | 3;
  private readonly session: Session;
  private readonly opts: SessionOptions;

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
    // A socket error (ICMP port unreachable surfaces as a timeout, but EACCES,
    // ENETUNREACH do not) must not become an unhandled 'error' event.
    this.session.on('error', () => {});
  }

  get(oids: string[], what: string): Promise<Varbind[]> {
    this.stats.pdus++;
    return new Promise((resolve, reject) => {
      this.session.get(oids, (err, vbs) => (err ? reject(this.wrap(err, what)) : resolve(vbs)));
    });
  }

  getNext(oids: string[], what: string): Promise<Varbind[]> {
    this.stats.pdus++;
    return new Promise((resolve, reject) => {
      this.session.getNext(oids, (err, vbs) => (err ? reject(this.wrap(err, what)) : resolve(vbs)));
    });
  }

  /** GETBULK with no non-repeaters: one list of varbinds per requested OID. */
  getBulk(oids: string[], maxRepetitions: number, what: string): Promise<Varbind[][]> {
    this.stats.pdus++;
    return new Promise((resolve, reject) => {
      this.session.getBulk(oids, 0, maxRepetitions, (err, vbs) =>
        err ? reject(this.wrap(err, what)) : resolve(vbs.map((v) => (Array.isArray(v) ? v : [v]))),
      );
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

  private wrap(err: Error, what: string): Error {
    if (err instanceof snmp.RequestTimedOutError || err.name === 'RequestTimedOutError') {
      this.stats.timeouts++;
      return new SnmpTimeoutError(what, this.opts.timeoutMs, this.opts.retries);
    }
    const e = new Error(`${what}: ${err.message}`);
    (e as Error & { status?: number }).status = (err as Error & { status?: number }).status;
    return e;
  }
}

type snmp_User = import('net-snmp').User;

export const ObjectType = snmp.ObjectType;
export const ErrorStatus = snmp.ErrorStatus;
export const isVarbindError = snmp.isVarbindError;

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
      return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
    case ObjectType.OID:
    case ObjectType.IpAddress:
      return String(v);
    case ObjectType.Null:
      return undefined;
    default:
      return typeof v === 'number' ? v : undefined;
  }
}
