// The collector's clock against an NTP server (SNTP, RFC 4330 §5): offset =
// ((T2 − T1) + (T3 − T4)) / 2. The traffic-log rules (2007 notification,
// item 9) want clocks within 10 ms of a reference; this measures how far ours is.
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

const NTP_EPOCH_OFFSET_S = 2_208_988_800; // 1900-01-01 to 1970-01-01

export interface NtpMeasurement {
  server: string;
  /** Local clock minus server clock, ms (positive: we are ahead). */
  offsetMs: number;
  roundTripMs: number;
  stratum: number;
}

// The offset is measured against Date.now(): the clock that stamps every
// record and log line. (performance.timeOrigin + performance.now() is the
// wall clock at start plus monotonic time since: after any step of the
// system clock it describes no clock in use.) T1 is Date.now() when the
// request leaves; T4 is T1 plus the round trip on the monotonic clock, so
// the round trip keeps sub-millisecond resolution and a step between send
// and answer cannot make it negative.

function writeTimestamp(buf: Buffer, at: number, ms: number): void {
  const seconds = Math.floor(ms / 1000) + NTP_EPOCH_OFFSET_S;
  const fraction = Math.floor(((ms % 1000) / 1000) * 2 ** 32);
  buf.writeUInt32BE(seconds >>> 0, at);
  buf.writeUInt32BE(fraction >>> 0, at + 4);
}

function readTimestamp(buf: Buffer, at: number): number {
  const seconds = buf.readUInt32BE(at) - NTP_EPOCH_OFFSET_S;
  return seconds * 1000 + (buf.readUInt32BE(at + 4) / 2 ** 32) * 1000;
}

export function measureOffset(server: string, port = 123, timeoutMs = 2000): Promise<NtpMeasurement> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(server) ? 'udp6' : 'udp4');
    const req = Buffer.alloc(48);
    req[0] = (0 << 6) | (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    let t1 = 0;
    let sentAt = 0;
    let sent: Buffer | undefined;
    const timer = setTimeout(() => finish(new Error(`ntp ${server}:${port}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error, m?: NtpMeasurement) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(m!);
    };
    sock.on('error', (err) => finish(new Error(`ntp ${server}:${port}: ${err.message}`)));
    sock.on('message', (msg) => {
      const t4 = t1 + (performance.now() - sentAt);
      if (msg.length < 48) return finish(new Error(`ntp ${server}:${port}: short reply (${msg.length} bytes)`));
      const mode = msg[0]! & 7;
      const stratum = msg[1]!;
      if (mode !== 4) return finish(new Error(`ntp ${server}:${port}: reply mode ${mode}, expected 4 (server)`));
      if (stratum === 0) return finish(new Error(`ntp ${server}:${port}: kiss-o'-death ${msg.subarray(12, 16).toString('latin1')}`));
      if (!sent || !msg.subarray(24, 32).equals(sent)) return finish(new Error(`ntp ${server}:${port}: reply does not answer our request`));
      const t2 = readTimestamp(msg, 32);
      const t3 = readTimestamp(msg, 40);
      const serverOffset = (t2 - t1 + (t3 - t4)) / 2;
      finish(undefined, { server, offsetMs: -serverOffset, roundTripMs: t4 - t1 - (t3 - t2), stratum });
    });
    // Bind first, so that T1 is taken when the request really leaves, not
    // before the socket exists (a first bind costs a millisecond or more).
    sock.bind(0, () => {
      t1 = Date.now();
      sentAt = performance.now();
      writeTimestamp(req, 40, t1);
      sent = Buffer.from(req.subarray(40, 48));
      sock.send(req, port, server);
    });
  });
}

/**
 * Several exchanges, keeping the one with the shortest round trip: its
 * offset is the least disturbed by queueing on either side (ntpdate and
 * chrony choose the same way).
 */
export async function measureClock(server: string, port = 123, samples = 4, timeoutMs = 2000): Promise<NtpMeasurement> {
  let best: NtpMeasurement | undefined;
  let lastError: Error | undefined;
  for (let i = 0; i < samples; i++) {
    try {
      const m = await measureOffset(server, port, timeoutMs);
      if (!best || m.roundTripMs < best.roundTripMs) best = m;
    } catch (err) {
      lastError = err as Error;
    }
  }
  if (!best) throw lastError ?? new Error(`ntp ${server}:${port}: no sample`);
  return best;
}
