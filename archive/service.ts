// The traffic-log receivers (`klaiwatch archive serve`, a process of its own
// under `klaiwatch run`): syslog over UDP, TCP (RFC 6587 octet counting and
// newline framing) and TLS (RFC 5425), NetFlow v5/v9 and IPFIX over UDP, all
// into the archive's write-ahead log; a seal every `seal_interval` or
// `seal_records`. This thread only receives and frames: parsing and flow
// decoding run in worker threads (ingest.ts), which hand back encoded
// write-ahead-log frames. TCP and TLS senders are paused, not dropped, while
// the disk or the parsing threads are behind (a paused sender is not idle:
// its idle timer waits with it); UDP cannot be paused, so what the kernel
// drops is read from /proc/net/udp and reported, and what the full queue to
// the threads refuses is counted. While the write-ahead log cannot write
// (disk full), what was already received is kept in memory (up to
// max_pending) and written when it can again.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import type { TrafficInput } from '../config/schema.ts';
import { Archive } from './archive.ts';
import { loadPrivateKey } from './manifest.ts';
import { purge } from './retention.ts';
import { startDailyAnchors } from './anchor.ts';
import { FLAG_CUT, type TrafficRecord } from './record.ts';
import { SyslogFramer, type FrameSink } from './framer.ts';
import { Ingest, type IngestStats } from './ingest.ts';
import { senderFilter } from './allow.ts';
import type { IngestResult } from './ingest-worker.ts';
import type { ExporterStats } from './netflow.ts';
import { describeErrno, bindReason, tryBind } from '../config/preflight.ts';

export { SyslogFramer };

/** The receive buffer a UDP receiver asks for: about a second of 100,000 flows/s. */
const UDP_BUFFER = 8 * 1024 * 1024;

export interface TrafficStats extends IngestStats {
  syslog_received: number;
  flows_received: number;
  flow_datagrams: number;
  /** Datagrams or frames that could not be read (bad NetFlow, bad octet count). */
  malformed: number;
  /** Messages cut at max_message. */
  truncated: number;
  /** Bytes dropped from messages cut at max_message (the rest of each, up to its newline or the end of its count or datagram). */
  discarded: number;
  /** Log lines that no parser understood (kept raw). */
  unparsed: number;
  /** Records fsynced into the write-ahead log. */
  stored: number;
  /** Records whose write failed (disk error): they were not acknowledged. */
  write_failed: number;
  /** Datagrams the kernel dropped on our UDP sockets (buffer full). */
  udp_drops: number;
  /** Times a TCP/TLS sender was paused because the disk was behind. */
  paused: number;
  flows_held: number;
  flows_held_dropped: number;
  segments: number;
  archive_bytes: number;
  wal_bytes: number;
  seal_failures: number;
  /** TCP/TLS connections refused: over syslog.max_connections, or a sender not on the allow-list (UDP datagrams too). */
  refused: number;
  /** TCP/TLS connections closed after syslog.idle_timeout without a byte. */
  idle_closed: number;
  /** TCP/TLS connections open now (a TLS one from its first byte, before its handshake ends). */
  connections: number;
  /** TLS connections closed because their handshake failed or did not end within traffic.syslog.tls.handshake_timeout. */
  handshake_failed: number;
  // The flow decoder's figures (netflow.ts DecoderStats; since the service started, across restarts of its thread).
  /** Gaps and jumps in exporters' sequence numbers. */
  sequence_errors: number;
  /** Flows (v5, v9: datagrams for v9's sequence) the gaps in sequence numbers say were lost on the way. */
  lost_flows: number;
  lost_datagrams: number;
  /** Templates known now. */
  templates: number;
  /** Templates dropped to make room (traffic.flow limits), and dropped as too old. */
  templates_evicted: number;
  templates_expired: number;
  /** Bytes of data sets waiting for their template now. */
  held_bytes: number;
  /** Held data sets dropped after waiting traffic.flow.hold, and held ones that failed to decode once their template came. */
  held_expired: number;
  held_failed: number;
}

/** The decoder's counters that only grow (kept across restarts of its thread), and the figures it reports as they are now. */
const DECODER_COUNTERS = ['sequence_errors', 'lost_flows', 'lost_datagrams', 'templates_evicted', 'templates_expired', 'held_expired', 'held_failed', 'heldDropped'] as const;

/** A receiver that could not listen: one line naming the setting, its address and the reason. */
export class ReceiverError extends Error {}

/** The setting each listener comes from. */
const SETTING: Record<string, string> = {
  'syslog-udp': 'traffic.syslog.udp',
  'syslog-tcp': 'traffic.syslog.tcp',
  'syslog-tls': 'traffic.syslog.tls.listen',
  'flow-udp': 'traffic.flow.udp',
};

/**
 * The receivers' listen addresses (and traffic.http when `http`) that cannot
 * be bound now, each as one line naming the setting: checked before the
 * archive is opened, so that a busy port stops the start before anything
 * is written.
 */
export async function listenProblems(t: TrafficInput, http: boolean): Promise<string[]> {
  const wanted: [string, string, 'tcp' | 'udp'][] = [];
  if (http) wanted.push(['traffic.http', t.http, 'tcp']);
  if (t.syslog.udp) wanted.push([SETTING['syslog-udp']!, t.syslog.udp, 'udp']);
  if (t.syslog.tcp) wanted.push([SETTING['syslog-tcp']!, t.syslog.tcp, 'tcp']);
  if (t.syslog.tls) wanted.push([SETTING['syslog-tls']!, t.syslog.tls.listen, 'tcp']);
  if (t.flow.udp) wanted.push([SETTING['flow-udp']!, t.flow.udp, 'udp']);
  const out: string[] = [];
  for (const [setting, listen, proto] of wanted) {
    const { host, port } = split(listen);
    const code = await tryBind(proto, host, port, 3000);
    if (code) out.push(`${setting} ${listen} cannot be listened on (${proto.toUpperCase()}): ${bindReason(code, host, port)}`);
  }
  return out;
}

/** One line for a listener that failed to bind. */
function listenFailure(name: string, listen: string, err: unknown): ReceiverError {
  const e = err as NodeJS.ErrnoException;
  const { host, port } = split(listen);
  return new ReceiverError(`${SETTING[name] ?? name} ${listen} cannot be listened on: ${e?.code ? bindReason(e.code, host, port) : describeErrno(undefined)}`);
}

/** What the write-ahead log refused while it could not write, kept to be written when it can. */
type Kept = { frame: Buffer; n: number; bytes: number } | { records: TrafficRecord[]; n: number; bytes: number };

/** The write-ahead log's disk state (wal.ts), when the log has one: what /healthz shows. */
export interface WalHealth {
  ok: boolean;
  error?: string;
  since?: number;
  failures?: number;
}

/** The parts of a write-ahead log that tell its failure state (present once wal.ts reports one). */
interface WalWithState {
  state?: WalHealth;
  onStateChange?: (fn: (s: WalHealth) => void) => () => void;
}

function split(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** Datagrams dropped by the kernel on UDP sockets bound to `port` (the "drops" column of /proc/net/udp and udp6). */
export async function udpDrops(port: number): Promise<number> {
  let drops = 0;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      const local = cols[1]!;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) drops += Number(cols[cols.length - 1]) || 0;
    }
  }
  return drops;
}

export class TrafficService {
  readonly stats: TrafficStats = {
    syslog_received: 0,
    flows_received: 0,
    flow_datagrams: 0,
    malformed: 0,
    truncated: 0,
    discarded: 0,
    unparsed: 0,
    stored: 0,
    write_failed: 0,
    udp_drops: 0,
    paused: 0,
    flows_held: 0,
    flows_held_dropped: 0,
    segments: 0,
    archive_bytes: 0,
    wal_bytes: 0,
    seal_failures: 0,
    refused: 0,
    idle_closed: 0,
    connections: 0,
    handshake_failed: 0,
    sequence_errors: 0,
    lost_flows: 0,
    lost_datagrams: 0,
    templates: 0,
    templates_evicted: 0,
    templates_expired: 0,
    held_bytes: 0,
    held_expired: 0,
    held_failed: 0,
    over_budget: 0,
    worker_restarts: 0,
    decode_lost: 0,
    stored_raw: 0,
    queue_dropped: 0,
  };
  archive!: Archive;
  private ingest: Ingest | undefined;
  private readonly t: TrafficInput;
  private readonly log: Logger;
  private readonly schoolOf = new Map<string, string>();
  private readonly utcOffsetMinutes: number;
  private readonly udp: UdpSocket[] = [];
  private readonly servers: Server[] = [];
  /** Stream senders (TCP sockets, TLS sockets once their handshake is done). */
  private readonly sockets = new Set<Socket>();
  /** Every TCP connection open (TLS ones from their first byte): what `connections` counts and stop() closes. */
  private readonly conns = new Set<Socket>();
  private readonly paused = new Set<Socket>();
  /** What the write-ahead log refused while it could not write (at most max_pending bytes), written when it can again. */
  private kept: Kept[] = [];
  private keptBytes = 0;
  /** write_failed when the log last failed: the recovery says how many were refused meanwhile. */
  private failedAtStart = 0;
  private stopping = false;
  /** The decoder's counters from flow threads before the present one (a restarted thread counts from 0). */
  private readonly decoderBase: Record<string, number> = {};
  private readonly decoderLast: Record<string, number> = {};
  /** The exporters with the most loss, as the flow thread last sent them. */
  private exporters: ExporterStats[] = [];
  private sealTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private stopAnchors: (() => void) | undefined;
  private unsealed = 0;
  private unsealedBytes = 0;
  private readonly udpPorts: number[] = [];
  /** Where the listeners ended up (port 0 resolved), by name. */
  readonly bound: Record<string, string> = {};

  /** traffic.allow (allow.ts): null lets everyone send. */
  private readonly allowed: ((address: string) => boolean) | null;
  private walFailed = false;
  private offWalState: (() => void) | undefined;
  private readonly config: Config;
  private readonly clockOffset: () => number | null;

  constructor(config: Config, log: Logger, clockOffset: () => number | null = () => null) {
    this.config = config;
    this.clockOffset = clockOffset;
    this.t = config.settings.traffic!;
    this.log = log.child({ part: 'traffic' });
    for (const d of config.devices) this.schoolOf.set(d.address, d.school.code);
    const off = this.t.device_utc_offset;
    this.utcOffsetMinutes = (off[0] === '-' ? -1 : 1) * (Number(off.slice(1, 3)) * 60 + Number(off.slice(4, 6)));
    this.allowed = senderFilter(config);
  }

  private path(p: string): string {
    return resolve(dirname(this.config.file), p);
  }

  async start(): Promise<void> {
    const key = loadPrivateKey(readFileSync(this.path(this.t.signing_key), 'utf8'));
    this.archive = await Archive.open({ dir: this.path(this.t.dir), key, retentionDays: Math.round(this.t.retention / 86_400_000), fsyncIntervalMs: this.t.fsync_interval, clockOffset: this.clockOffset });
    if (this.archive.wal.stats.recoveredTornBytes > 0) this.log.warn({ bytes: this.archive.wal.stats.recoveredTornBytes }, 'write-ahead log ended in a torn frame (a crash mid-write): cut off');
    // While the log cannot write, TCP/TLS senders are not read (nothing is acknowledged that would be lost).
    const w = this.archive.wal as unknown as WalWithState;
    if (typeof w.onStateChange === 'function') {
      // One line per change of state; what is refused meanwhile is counted (write_failed), not logged.
      this.offWalState = w.onStateChange((st) => {
        if (!st.ok && !this.walFailed) {
          this.walFailed = true;
          this.failedAtStart = this.stats.write_failed;
          for (const sock of this.sockets) if (!this.paused.has(sock)) this.pause(sock);
          this.log.error({ error: st.error, paused: this.paused.size, keep_bytes: this.t.max_pending }, 'write-ahead log failed: TCP/TLS senders paused, what was received is kept in memory (up to traffic.max_pending) until it can write again; past that records are refused (counted as write_failed)');
        } else if (st.ok && this.walFailed) {
          this.walFailed = false;
          const kept = this.kept.reduce((n, k) => n + k.n, 0);
          this.log.info({ senders: this.paused.size, kept_written: kept, refused: this.stats.write_failed - this.failedAtStart }, 'write-ahead log writable again: records kept meanwhile written, TCP/TLS senders resumed');
          this.writeKept();
          this.resumeAll();
        }
      });
    }
    this.ingest = new Ingest({
      schools: this.schoolOf,
      utcOffsetMinutes: this.utcOffsetMinutes,
      parseBudgetMs: this.t.parse_budget,
      maxHeld: this.t.flow.max_held,
      maxHeldBytes: this.t.flow.max_held_bytes,
      holdMs: this.t.flow.hold,
      maxQueueBytes: this.t.max_queue,
      log: this.log,
      stats: this.stats,
      onFrame: (frame, n) => this.storeFrame(frame, n),
      onRecords: (records) => this.store(records),
      onCounts: (kind, r) => this.counted(kind, r),
    });
    const s = this.t.syslog;
    if (s.udp) await this.udpListener('syslog-udp', s.udp, (msg, from, at) => this.syslogDatagram(msg, from, at));
    if (s.tcp) await this.streamListener('syslog-tcp', s.tcp, createServer());
    if (s.tls) {
      const server = createTlsServer({
        // A connection that never finishes its handshake is closed (and counted): it holds a connection slot.
        handshakeTimeout: Math.min(s.tls.handshake_timeout, s.idle_timeout),
        cert: readFileSync(this.path(s.tls.cert)),
        key: readFileSync(this.path(s.tls.key)),
        ...(s.tls.ca ? { ca: readFileSync(this.path(s.tls.ca)), requestCert: true, rejectUnauthorized: true } : {}),
      });
      await this.streamListener('syslog-tls', s.tls.listen, server, 'secureConnection');
    }
    if (this.t.flow.udp) await this.udpListener('flow-udp', this.t.flow.udp, (msg, from, at) => this.flowDatagram(msg, from, at));
    this.scheduleSeal();
    // Finished days merged, and what is past retention and not held purged: now and every six hours.
    void this.enforceRetention();
    this.purgeTimer = setInterval(() => void this.enforceRetention(), 6 * 3_600_000);
    this.purgeTimer.unref();
    // The chain head leaves the machine every day (mail, RFC 3161 token): anchor.ts.
    this.stopAnchors = startDailyAnchors({ dir: this.path(this.t.dir), config: this.config, entries: async () => (await this.archive.manifest.refresh(), this.archive.manifest.entries), log: this.log });
    this.log.info({ bound: this.bound, dir: this.path(this.t.dir) }, 'traffic-log receivers listening');
  }

  private udpListener(name: string, listen: string, onMessage: (msg: Buffer, from: string, at: number) => void): Promise<void> {
    const { host, port } = split(listen);
    const sock = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', recvBufferSize: UDP_BUFFER });
    sock.on('message', (msg, rinfo) => {
      // A sender not on traffic.allow is dropped before anything else looks at its bytes.
      if (this.allowed && !this.allowed(rinfo.address)) return this.refuse(name, rinfo.address);
      onMessage(msg, rinfo.address, Date.now());
    });
    this.udp.push(sock);
    return new Promise((res, rej) => {
      const failed = (err: Error) => rej(listenFailure(name, listen, err));
      sock.once('error', failed);
      sock.bind(port, host, () => {
        sock.off('error', failed);
        sock.on('error', (err: NodeJS.ErrnoException) => this.rateLimitedWarn(`socket-${name}`, { listen, error: err.code ?? err.message }, `${name} socket error (the receiver goes on)`));
        const a = sock.address();
        this.bound[name] = `${a.address}:${a.port}`;
        this.udpPorts.push(a.port);
        // Linux caps the request at net.core.rmem_max and reports twice what it keeps.
        const got = sock.getRecvBufferSize();
        if (got < UDP_BUFFER) this.log.warn({ listen, requested: UDP_BUFFER, got, sysctl: `net.core.rmem_max=${UDP_BUFFER}` }, `${name}: the kernel gave the socket a smaller buffer than asked; a burst or a pause overflows it sooner (raise net.core.rmem_max)`);
        res();
      });
    });
  }

  private streamListener(name: string, listen: string, server: Server, event = 'connection'): Promise<void> {
    const { host, port } = split(listen);
    // Every connection counts from its first byte (a TLS one in its handshake too): against max_connections, in `connections`, and closed by stop().
    server.on('connection', (raw: Socket) => {
      // A sender not on traffic.allow is refused before anything (a TLS handshake) costs anything.
      if (this.allowed && !this.allowed(raw.remoteAddress ?? '')) {
        raw.destroy();
        return this.refuse(name, raw.remoteAddress ?? '');
      }
      this.conns.add(raw);
      this.stats.connections = this.conns.size;
      raw.on('close', () => {
        this.conns.delete(raw);
        this.stats.connections = this.conns.size;
      });
      if (event === 'connection') this.stream(raw);
    });
    if (event !== 'connection') server.on(event, (sock: Socket) => this.stream(sock));
    // A failed or unfinished handshake (handshake_timeout): the socket is closed here (Node leaves that to this listener), counted, and said once per 10 s.
    server.on('tlsClientError', (err: NodeJS.ErrnoException, sock: Socket) => {
      sock.destroy();
      this.stats.handshake_failed++;
      const timeout = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
      this.rateLimitedWarn(
        `tls-${timeout ? 'timeout' : 'failed'}`,
        { from: sock.remoteAddress, error: err.code ?? err.message, handshake_failed: this.stats.handshake_failed },
        timeout ? `${name}: a client did not finish its TLS handshake within traffic.syslog.tls.handshake_timeout: closed (counted as handshake_failed)` : `${name}: a client failed the TLS handshake: closed (counted as handshake_failed)`,
      );
    });
    // Past max_connections the server closes a new connection at once ("drop").
    server.maxConnections = this.t.syslog.max_connections;
    server.on('drop', (d?: { remoteAddress?: string }) => {
      this.stats.refused++;
      this.rateLimitedWarn('drop', { listen, max_connections: this.t.syslog.max_connections, from: d?.remoteAddress }, `${name}: connection refused: already ${this.t.syslog.max_connections} open (traffic.syslog.max_connections)`);
    });
    this.servers.push(server);
    return new Promise((res, rej) => {
      const failed = (err: Error) => rej(listenFailure(name, listen, err));
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        server.on('error', (err: NodeJS.ErrnoException) => this.rateLimitedWarn(`server-${name}`, { listen, error: err.code ?? err.message }, `${name}: server error (the receiver goes on)`));
        const a = server.address();
        if (a && typeof a === 'object') this.bound[name] = `${a.address}:${a.port}`;
        res();
      });
    });
  }

  private refuse(name: string, from: string): void {
    this.stats.refused++;
    this.rateLimitedWarn(`allow-${name}`, { from }, `${name}: a sender not on traffic.allow refused (counted as refused)`);
  }

  private stream(sock: Socket): void {
    if (this.stopping) {
      sock.destroy();
      return;
    }
    const from = (sock.remoteAddress ?? '').replace(/^::ffff:/, '');
    const framer = new SyslogFramer(this.t.syslog.max_message);
    // Each message goes to the parsing threads as the bytes it came in (no text made here), with its flags (FLAG_CUT); always taken (the sender is paused, not dropped, when the queue is full).
    let at = 0;
    let received = 0;
    const ingest = this.ingest!;
    const sink: FrameSink = (buf, start, end, flags) => {
      ingest.addSyslog(buf, start, end, from, at, flags, true);
      received++;
    };
    const framed = (): void => {
      this.stats.syslog_received += received;
      this.stats.truncated += framer.truncated;
      this.stats.discarded += framer.discarded;
      this.stats.malformed += framer.malformed;
      received = 0;
      framer.truncated = 0;
      framer.discarded = 0;
      framer.malformed = 0;
    };
    this.sockets.add(sock);
    // A sender that says nothing for idle_timeout is closed: a connection slot is not held forever. Not while we have paused it (pause()).
    sock.on('timeout', () => {
      if (this.paused.has(sock)) return;
      this.stats.idle_closed++;
      sock.destroy();
    });
    sock.setTimeout(this.t.syslog.idle_timeout);
    sock.on('data', (chunk: Buffer) => {
      at = Date.now();
      framer.frames(chunk, sink);
      framed();
      if (this.paused.has(sock)) return;
      if (this.walFailed) this.pause(sock);
      else if (this.ingest!.full) {
        // The parsing threads are behind: stop reading this sender until their queue has drained.
        this.pause(sock);
        void this.ingest!.drained().then(() => this.resumeAll());
      } else if (this.ingest!.queuedBytes + this.archive.wal.pendingBytes + this.archive.wal.pendingFrameBytes + this.keptBytes > this.t.max_pending) {
        // The disk is behind (what is parsed or being parsed, not yet fsynced): stop reading this sender until the log has caught up.
        this.pause(sock);
        void this.ingest!.drained(0)
          .then(() => Promise.all([this.archive.wal.flush(), this.archive.wal.flushFrames()]))
          .finally(() => this.resumeAll());
      }
    });
    if (this.walFailed) this.pause(sock);
    sock.on('end', () => {
      at = Date.now();
      framer.finish(sink);
      framed();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.sockets.delete(sock);
      this.paused.delete(sock);
    });
  }

  /** Stops reading a sender; its idle timer waits with it (it is silent because of us). */
  private pause(sock: Socket): void {
    sock.pause();
    sock.setTimeout(0);
    this.paused.add(sock);
    this.stats.paused++;
  }

  private resumeAll(): void {
    if (this.walFailed) return;
    for (const s of this.paused) {
      if (s.destroyed) continue;
      s.setTimeout(this.t.syslog.idle_timeout);
      s.resume();
    }
    this.paused.clear();
  }

  private syslogDatagram(msg: Buffer, from: string, at: number): void {
    const exporter = from.replace(/^::ffff:/, '');
    const max = this.t.syslog.max_message;
    // A datagram over max_message: one record of its first max_message bytes, flagged, the rest counted as discarded.
    const cut = msg.length > max;
    if (this.ingest!.addSyslog(msg, 0, cut ? max : msg.length, exporter, at, cut ? FLAG_CUT : 0)) {
      this.stats.syslog_received++;
      if (cut) {
        this.stats.truncated++;
        this.stats.discarded += msg.length - max;
      }
    } else this.dropped(exporter);
  }

  private flowDatagram(msg: Buffer, from: string, at: number): void {
    const exporter = from.replace(/^::ffff:/, '');
    this.stats.flow_datagrams++;
    if (!this.ingest!.addFlow(msg, exporter, at)) this.dropped(exporter);
  }

  private dropped(exporter: string): void {
    this.stats.queue_dropped++;
    this.rateLimitedWarn('queue', { exporter, max_queue: this.t.max_queue }, 'UDP datagram dropped: the queue to the parsing threads is full (traffic.max_queue; counted as queue_dropped)');
  }

  private readonly lastWarn = new Map<string, number>();
  /** One warning of a kind per 10 s: a flood of bad input is counted, not logged line by line. */
  private rateLimitedWarn(kind: string, o: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - (this.lastWarn.get(kind) ?? 0) < 10_000) return;
    this.lastWarn.set(kind, now);
    this.log.warn(o, msg);
  }

  /** What a parsing thread counted in a batch. */
  private counted(kind: 'syslog' | 'flow', r: IngestResult): void {
    this.stats.malformed += r.malformed;
    this.stats.over_budget += r.overBudget;
    if (kind === 'syslog') this.stats.unparsed += r.unparsed;
    else {
      this.stats.flows_received += r.records;
      if (r.decoder) this.decoderFigures(r.decoder);
      if (r.exporters) this.exporters = r.exporters;
    }
    if (r.error) this.rateLimitedWarn(`malformed-${kind}`, { error: r.error }, kind === 'flow' ? 'malformed flow datagram (counted; the receiver goes on)' : 'a log line failed its parser (stored raw; the receiver goes on)');
  }

  /**
   * The flow thread's decoder figures: counters added to those of the
   * threads before it (a restarted thread's decoder counts from 0; seen by
   * its datagram count going back), the rest as they are now.
   */
  private decoderFigures(d: Record<string, number>): void {
    if ((d.datagrams ?? 0) < (this.decoderLast.datagrams ?? 0)) for (const k of DECODER_COUNTERS) this.decoderBase[k] = (this.decoderBase[k] ?? 0) + (this.decoderLast[k] ?? 0);
    for (const k of ['datagrams', ...DECODER_COUNTERS]) this.decoderLast[k] = d[k] ?? 0;
    const total = (k: (typeof DECODER_COUNTERS)[number]) => (this.decoderBase[k] ?? 0) + (d[k] ?? 0);
    this.stats.sequence_errors = total('sequence_errors');
    this.stats.lost_flows = total('lost_flows');
    this.stats.lost_datagrams = total('lost_datagrams');
    this.stats.templates_evicted = total('templates_evicted');
    this.stats.templates_expired = total('templates_expired');
    this.stats.held_expired = total('held_expired');
    this.stats.held_failed = total('held_failed');
    this.stats.flows_held_dropped = total('heldDropped');
    this.stats.flows_held = d.held ?? 0;
    this.stats.held_bytes = d.held_bytes ?? 0;
    this.stats.templates = d.templates ?? 0;
  }

  /** A frame encoded by a parsing thread, appended as it is. */
  private storeFrame(frame: Buffer, n: number): void {
    this.unsealed += n;
    this.unsealedBytes += frame.length;
    this.write({ frame, n, bytes: frame.length });
    this.sealWhenFull();
  }

  /**
   * A seal holds what it seals in memory: it comes after seal_records
   * records or seal_bytes of the log, whichever is first, so that long
   * messages (64 KB lines) cannot make one seal gigabytes large.
   */
  private sealWhenFull(): void {
    if ((this.unsealed >= this.t.seal_records || this.unsealedBytes >= this.t.seal_bytes) && !this.walFailed) void this.seal();
  }

  private store(records: TrafficRecord[]): void {
    this.unsealed += records.length;
    const bytes = records.reduce((b, r) => b + 128 + (r.raw?.length ?? 0), 0);
    this.unsealedBytes += bytes;
    this.write({ records, n: records.length, bytes });
    this.sealWhenFull();
  }

  /**
   * Appends to the write-ahead log. While it cannot write (or what it
   * refused is still waiting), the records are kept in order, up to
   * max_pending bytes, and written when it can again (writeKept); past
   * that they are refused and counted (write_failed), never logged one
   * by one.
   */
  private write(k: Kept): void {
    if (this.walFailed || this.kept.length > 0) return this.keep(k);
    const done = 'frame' in k ? this.archive.wal.appendFrame(k.frame, k.n) : this.archive.append(k.records);
    done.then(
      () => {
        this.stats.stored += k.n;
      },
      (err: Error & { code?: string }) => {
        // The log failed under this write (its state change says so, once) or it is closed: kept for when it can write again.
        if (err.code === 'KW_WAL_FAILED' && !this.stopping) return this.keep(k);
        this.stats.write_failed += k.n;
        if (err.code !== 'KW_WAL_FAILED') this.rateLimitedWarn('write', { error: err.message, records: k.n }, 'write-ahead log write failed: records not stored (counted as write_failed)');
      },
    );
  }

  private keep(k: Kept): void {
    if (this.stopping || this.keptBytes + k.bytes > this.t.max_pending) {
      this.stats.write_failed += k.n;
      return;
    }
    this.kept.push(k);
    this.keptBytes += k.bytes;
  }

  /** What was kept while the log could not write, appended in the order it came (before anything newer). */
  private writeKept(): void {
    const kept = this.kept;
    this.kept = [];
    this.keptBytes = 0;
    for (const k of kept) this.write(k);
  }

  private scheduleSeal(): void {
    // Aligned to the interval (hourly seals at the top of the hour).
    const wait = this.t.seal_interval - (Date.now() % this.t.seal_interval);
    this.sealTimer = setTimeout(() => {
      void this.seal().finally(() => this.scheduleSeal());
    }, wait);
    this.sealTimer.unref();
  }

  async seal(): Promise<void> {
    this.unsealed = 0;
    this.unsealedBytes = 0;
    try {
      // The threads' frames waiting for their fsync go into the segment too.
      await this.archive.wal.flushFrames();
      const e = await this.archive.seal();
      if (e) this.log.info({ file: e.file, rows: e.rows, bytes: e.bytes, seq: e.seq }, 'segment sealed');
    } catch (err) {
      this.stats.seal_failures++;
      this.log.error({ err }, 'sealing failed: the records stay in the write-ahead log and the next seal tries again');
    }
  }

  /** Every six hours: finished days' segments merged (archive.ts compact), then what is past retention purged. */
  async enforceRetention(now = Date.now()): Promise<void> {
    try {
      const { merged, refused } = await this.archive.compact(now);
      for (const e of merged) this.log.info({ file: e.file, rows: e.rows, bytes: e.bytes, seq: e.seq, from: e.merged_from!.length }, "a day's segments merged");
      for (const why of refused) this.log.error({ why }, 'segments not merged');
    } catch (err) {
      this.log.error({ err }, 'merging segments failed');
    }
    try {
      const { entry, plan } = await purge(this.archive, Math.round(this.t.retention / 86_400_000), 'klaiwatch (retention)', now);
      if (entry) this.log.info({ files: entry.files.length, seq: entry.seq, held: plan.held.length }, 'segments past retention purged');
    } catch (err) {
      this.log.error({ err }, 'purge failed');
    }
  }

  /** The write-ahead log's disk state (null: the log does not report one). */
  walState(): WalHealth | null {
    const st = (this.archive?.wal as unknown as WalWithState | undefined)?.state;
    return st ? { ...st } : null;
  }

  /** What GET /healthz shows of the receivers. */
  health(): Record<string, unknown> {
    const wal = this.walState();
    return {
      status: wal && !wal.ok ? 'degraded' : 'ok',
      bound: { ...this.bound },
      traffic: { ...this.stats },
      wal: wal ? { ...wal, since: wal.since ? new Date(wal.since).toISOString() : null } : { ok: true, reported: false },
      queue_bytes: this.ingest?.queuedBytes ?? 0,
      kept_bytes: this.keptBytes,
      // NetFlow/IPFIX exporters, the ones with the most loss first (at most 50).
      exporters: this.exporters.map(({ last_ms, ...e }) => ({ ...e, last: new Date(last_ms).toISOString() })),
    };
  }

  /** Refreshes the figures that need a look at the system (kernel drops, sizes). */
  async refreshStats(): Promise<TrafficStats> {
    let drops = 0;
    for (const p of this.udpPorts) drops += await udpDrops(p);
    this.stats.udp_drops = drops;
    const segs = this.archive.segments();
    this.stats.segments = segs.length;
    this.stats.archive_bytes = segs.reduce((n, s) => n + s.bytes, 0);
    this.stats.wal_bytes = this.archive.wal.stats.bytes;
    return this.stats;
  }

  async stop(): Promise<void> {
    if (this.sealTimer) clearTimeout(this.sealTimer);
    this.stopping = true;
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.stopAnchors?.();
    this.offWalState?.();
    // Stop hearing first; then what was accepted is flushed and the log closed.
    for (const s of this.udp) {
      try {
        s.close();
      } catch {
        // Never bound (a start that failed).
      }
    }
    for (const s of this.servers) s.close(() => undefined);
    for (const s of this.conns) s.destroy();
    for (const s of this.sockets) s.destroy();
    // What the threads still have is answered (or stored raw) before the log closes.
    await this.ingest?.stop();
    // What was kept while the log could not write: one last try; what the log still refuses is counted and said once.
    const kept = this.kept;
    this.kept = [];
    this.keptBytes = 0;
    const lost = kept.reduce((n, k) => n + k.n, 0);
    if (this.walFailed) {
      this.stats.write_failed += lost;
      if (lost > 0) this.log.error({ records: lost }, 'stopping while the write-ahead log cannot write: records kept in memory are lost (counted as write_failed)');
    } else for (const k of kept) this.write(k);
    await this.archive?.wal.flushFrames();
    await this.archive?.close();
  }
}
