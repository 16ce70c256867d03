// NetFlow v5, v9 (RFC 3954) and IPFIX (RFC 7011) decoding, in the manner of
// nfcapd: templates are kept per exporter and observation domain (v9 source
// id), options templates are learnt so their data is recognised and skipped,
// data that arrives before its template is held until the template comes,
// and each exporter's sequence numbers are followed so that loss upstream is
// counted.
//
// Everything here comes from senders we do not control (UDP sources can be
// spoofed), so every loop over the bytes advances or stops, and everything
// kept is capped: templates (per exporter and domain, and in all; least
// recently used out; unrefreshed ones expire), held data (count and bytes;
// oldest out; expired by `expire(now)` and lazily), exporters. A datagram
// that is not well formed gives an error naming the exporter, version,
// domain, set and byte; the records decoded before the fault are kept.
// decode() never throws.
//
// Sampling: a flow's 1-in-N rate is kept in its `sampling` (packets and
// bytes stay as received): from the record itself (samplingInterval,
// samplerRandomInterval, samplingPacketInterval/Space), else from the
// sampler it names (samplerId or selectorId, learnt from options records
// of the same exporter and domain), else from the domain's sampler without
// an id (a v9 "sampling interval" options record); v5 says it in its header.
import { emptyRecord, type TrafficRecord } from './record.ts';
import { HeldSets, type HeldSet } from './flow-held.ts';
import {
  SKIP,
  BYTES,
  PACKETS,
  PROTO,
  SRC_PORT,
  DST_PORT,
  SRC_V4,
  DST_V4,
  SRC_V6,
  DST_V6,
  NAT_V4,
  NAT_V6,
  NAT_PORT,
  MAC,
  START_UPTIME,
  END_UPTIME,
  START_SEC,
  END_SEC,
  START_MS,
  END_MS,
  START_NTP,
  END_NTP,
  USER,
  SAMPLING_INTERVAL,
  SAMPLER_ID,
  RANDOM_INTERVAL,
  PACKET_INTERVAL,
  PACKET_SPACE,
  NAT_EVENT,
  POST_DST_V4,
  POST_DST_V6,
  POST_DST_PORT,
  FRAME,
  FRAME_SIZE,
  OBS_MS,
  KNOWN,
  ADDRESS_OPS,
  SAMPLER_OPS,
  frameSection,
  frameFacts,
  REVERSE_PEN,
  VARIABLE,
  ipv4,
  ipv6,
  uint,
  mac,
  ntpMs,
} from './flow-fields.ts';

export class DecodeError extends Error {}

export interface DecoderStats {
  datagrams: number;
  flows: number;
  /** Datagrams (and held sets) that were not well formed. */
  malformed: number;
  /** Errors that were not the input's fault (a bug): counted, never thrown. */
  internal_errors: number;
  /** Templates known now. */
  templates: number;
  /** Template records received (new and refreshed). */
  templates_received: number;
  /** Pushed out by the caps, least recently used first. */
  templates_evicted: number;
  /** Forgotten because they were not refreshed within `templateMs`. */
  templates_expired: number;
  /** Data sets waiting for their template now, and their bytes. */
  held: number;
  held_bytes: number;
  /** Held sets dropped: their template did not come within `holdMs`. */
  held_expired: number;
  /** Held sets dropped: the hold was full (count or bytes). */
  held_dropped: number;
  /** Held sets that did not decode once their template came (dropped; the records before the fault kept). */
  held_failed: number;
  /** @deprecated held_dropped + held_expired (the name before they were told apart). */
  heldDropped: number;
  optionsRecords: number;
  /** Records of data templates without an address (source, destination, NAT or MAC): not traffic data anyone can be found by, and not archived. */
  skipped_records: number;
  /** Sequence numbers that were not the one expected (gaps and late or repeated datagrams), as nfcapd's "Sequence Errors". */
  sequence_errors: number;
  /** Estimated loss upstream: flows (v5 flow_sequence, IPFIX data records) and datagrams (v9 package sequence). */
  lost_flows: number;
  lost_datagrams: number;
  /** Sequence resets taken as the exporter restarting (a big jump back, or its uptime going back), not loss. */
  restarts: number;
  /** Exporters followed now (capped by `maxExporters`). */
  exporters: number;
  /** Sampler definitions received in options records (new and refreshed). */
  samplers_received: number;
}

/** One exporter's figures, for /healthz. */
export interface ExporterStats {
  exporter: string;
  datagrams: number;
  flows: number;
  malformed: number;
  sequence_errors: number;
  lost_flows: number;
  lost_datagrams: number;
  restarts: number;
  templates: number;
  last_ms: number;
}

export interface DecoderOptions {
  /** At most this many data sets wait for their templates; beyond it the oldest is dropped and counted. */
  maxHeld?: number;
  /** ... and at most this many bytes of them (default 16 MiB). */
  maxHeldBytes?: number;
  /** A held data set waits this long for its template (default 30 minutes). */
  holdMs?: number;
  /** Templates kept in all (default 10,000), least recently used out. */
  maxTemplates?: number;
  /** Templates kept per exporter and observation domain (default 256). */
  maxTemplatesPerExporter?: number;
  /** A template not refreshed for this long is forgotten (default 6 hours). */
  templateMs?: number;
  /** Exporters followed (templates, sequence numbers, figures; default 1,024), least recently heard out. */
  maxExporters?: number;
  /** Observation domains (v9 source ids) followed per exporter (default 64). */
  maxDomainsPerExporter?: number;
}

interface Template {
  id: number;
  domain: Domain;
  options: boolean;
  /**
   * Records become flows: a data template with an address (source,
   * destination, NAT or MAC). It also bounds the work: a flow record is at
   * least 4 bytes, so a datagram makes at most ~16,000 flows.
   */
  flow: boolean;
  /** Per field (zero-length unknown fields left out, neighbouring skipped fixed fields merged): what to do and its length (-1: variable). */
  ops: number[];
  lens: number[];
  /** The field's id, for messages. */
  ids: number[];
  /** An options template that says something about a sampler: its records are read. */
  sampler: boolean;
  /** Bytes of a record at least (every variable field takes its length byte); never 0. */
  minLen: number;
  variable: boolean;
  /** When it was last received (ms). */
  refreshed: number;
  // The global least-recently-used list.
  prev: Template | null;
  next: Template | null;
}

interface Domain {
  /** version * 2^32 + observation domain (v9 source id; v5: engine type and id). */
  key: number;
  exporter: ExporterState;
  /** By template id, least recently used first. */
  templates: Map<number, Template>;
  /** The sequence number expected next; null when not known (start, or a message whose record count is unknown). */
  next: number | null;
  uptime: number | null;
  /** When it last moved to the end of its map (see TOUCH_MS). */
  touched: number;
  /** Sampler id (GENERIC: the domain's own, no id) -> 1-in-N, from options records; at most MAX_SAMPLERS, oldest out. */
  samplers: Map<number, number>;
}

/** Samplers kept per exporter and domain. */
const MAX_SAMPLERS = 64;
/** The key of a domain's sampler without an id (an options record with an interval and no id, or id 0). */
const GENERIC = -1;

/** A rate as the archive keeps it: 1-in-N as a whole number; null for none, 1 or nonsense. */
function rateOf(interval: number, space: number, plain: number): number | null {
  let n = plain;
  if (interval > 0 || space > 0) n = (Math.max(interval, 1) + space) / Math.max(interval, 1);
  n = Math.round(n);
  return n > 1 && n <= 0x7fffffff ? n : null;
}

interface ExporterState {
  stats: ExporterStats;
  /** By domain key, least recently heard first. */
  domains: Map<number, Domain>;
  touched: number;
  /** The domain of its last datagram: most exporters have one, and this spares the map. */
  last: Domain | null;
}

/**
 * Exporters and domains move to the end of their maps (least recently heard
 * first) at most this often: a datagram then costs no map write, and the
 * order is right to the second, which is all the eviction needs.
 */
const TOUCH_MS = 1000;

interface Context {
  exporter: string;
  recvMs: number;
  version: 9 | 10;
  domain: number;
  /** Export time (UTC ms) and, for v9, the exporter's uptime at export (ms). */
  exportMs: number;
  uptimeMs: number;
}

/** A sequence gap larger than this is taken as a restart (or a resync), not loss. */
const MAX_GAP = 2 ** 24;
/** A datagram this many sequence units behind the expected one is late (reordered or repeated), not a restart. */
const LATE_WINDOW = { 5: 64 * 30, 9: 64, 10: 64 * 32 } as const;
/** The exporter's uptime going back by more than this is a restart. */
const UPTIME_SLACK_MS = 60_000;

const VERSION_NAME = { 5: 'NetFlow v5', 9: 'NetFlow v9', 10: 'IPFIX' } as const;
const DOMAIN_NAME = { 5: 'engine', 9: 'source id', 10: 'observation domain' } as const;

export class FlowDecoder {
  readonly stats: DecoderStats = {
    datagrams: 0,
    flows: 0,
    malformed: 0,
    internal_errors: 0,
    templates: 0,
    templates_received: 0,
    templates_evicted: 0,
    templates_expired: 0,
    held: 0,
    held_bytes: 0,
    held_expired: 0,
    held_dropped: 0,
    held_failed: 0,
    heldDropped: 0,
    optionsRecords: 0,
    skipped_records: 0,
    sequence_errors: 0,
    lost_flows: 0,
    lost_datagrams: 0,
    restarts: 0,
    exporters: 0,
    samplers_received: 0,
  };
  private readonly exporters = new Map<string, ExporterState>();
  private lruHead: Template | null = null;
  private lruTail: Template | null = null;
  private readonly held = new HeldSets<Context>();
  private readonly maxHeld: number;
  private readonly maxHeldBytes: number;
  private readonly holdMs: number;
  private readonly maxTemplates: number;
  private readonly maxPerDomain: number;
  private readonly templateMs: number;
  private readonly maxExporters: number;
  private readonly maxDomains: number;
  // Where the decoder is in the current datagram, for error messages.
  private version = 0;
  private domainId = -1;
  private setId = -1;
  private setAt = -1;
  /** The first fault of a held set that a template of this datagram released. */
  private heldFault: string | undefined;
  private templateCount = 0;

  constructor(o: DecoderOptions = {}) {
    this.maxHeld = o.maxHeld ?? 10_000;
    this.maxHeldBytes = o.maxHeldBytes ?? 16 * 1024 * 1024;
    this.holdMs = o.holdMs ?? 30 * 60_000;
    this.maxTemplates = Math.max(1, o.maxTemplates ?? 10_000);
    this.maxPerDomain = Math.max(1, o.maxTemplatesPerExporter ?? 256);
    this.templateMs = o.templateMs ?? 6 * 3_600_000;
    this.maxExporters = Math.max(1, o.maxExporters ?? 1024);
    this.maxDomains = Math.max(1, o.maxDomainsPerExporter ?? 64);
  }

  /**
   * Decodes one datagram from `exporter`: its flows (with any held ones its
   * templates released) and, when it was not well formed, what was wrong;
   * the flows decoded before the fault are kept. Never throws.
   */
  decode(buf: Buffer, exporter: string, recvMs: number): { flows: TrafficRecord[]; error?: string } {
    this.stats.datagrams++;
    const flows: TrafficRecord[] = [];
    let error: string | undefined;
    this.version = 0;
    this.domainId = this.setId = this.setAt = -1;
    this.heldFault = undefined;
    let state: ExporterState | undefined;
    try {
      if (this.held.count > 0) this.expireHeld(recvMs);
      if (buf.length < 4) throw new DecodeError(`datagram of ${buf.length} bytes is too short for a NetFlow header`);
      const version = buf.readUInt16BE(0);
      if (version !== 5 && version !== 9 && version !== 10) throw new DecodeError(`version ${version} is not NetFlow v5, v9 or IPFIX (10)`);
      this.version = version;
      const minHeader = version === 5 ? 24 : version === 9 ? 20 : 16;
      if (buf.length < minHeader) throw new DecodeError(`header needs ${minHeader} bytes, the datagram has ${buf.length}`);
      state = this.exporterState(exporter, recvMs);
      state.stats.datagrams++;
      if (version === 5) this.v5(buf, state, exporter, recvMs, flows);
      else if (version === 9) this.v9(buf, state, exporter, recvMs, flows);
      else this.ipfix(buf, state, exporter, recvMs, flows);
    } catch (err) {
      error = this.fault(err, exporter);
      if (state) state.stats.malformed++;
    }
    // This datagram was fine, but a held set it released was not: said once, counted as held_failed.
    error ??= this.heldFault;
    this.stats.flows += flows.length;
    if (state) state.stats.flows += flows.length;
    this.stats.held = this.held.count;
    this.stats.held_bytes = this.held.bytes;
    return error === undefined ? { flows } : { flows, error };
  }

  /** Drops held data and templates that have waited too long; call on a timer (it is also done lazily as datagrams come). */
  expire(now: number): void {
    try {
      this.expireHeld(now);
      for (let t = this.lruHead; t; ) {
        const next = t.next;
        if (now - t.refreshed > this.templateMs) {
          this.removeTemplate(t);
          this.stats.templates_expired++;
        }
        t = next;
      }
    } catch {
      this.stats.internal_errors++;
    }
    this.stats.held = this.held.count;
    this.stats.held_bytes = this.held.bytes;
  }

  /** Each exporter's figures (at most `maxExporters`, least recently heard first). */
  exporterStats(): ExporterStats[] {
    const out: ExporterStats[] = [];
    for (const s of this.exporters.values()) {
      let templates = 0;
      for (const d of s.domains.values()) templates += d.templates.size;
      out.push({ ...s.stats, templates });
    }
    return out;
  }

  /** Data sets waiting for a template. */
  get pending(): number {
    return this.held.count;
  }

  /** Counts a fault and words it for the operator: exporter, version, domain, set, byte; never a stack. */
  private fault(err: unknown, exporter: string): string {
    this.stats.malformed++;
    const v = this.version as 0 | 5 | 9 | 10;
    let where = '';
    if (v !== 0) {
      where = VERSION_NAME[v];
      if (this.domainId >= 0) where += ` ${DOMAIN_NAME[v]} ${this.domainId}`;
      if (this.setId >= 0) where += `, set ${this.setId} at byte ${this.setAt}`;
      where += ': ';
    }
    if (err instanceof DecodeError) return `${exporter}: ${where}${err.message}`;
    this.stats.internal_errors++;
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return `${exporter}: ${where}internal decoder error (${what}); the datagram is counted as malformed`;
  }

  // ------------------------------------------------------------ exporters, domains, sequence numbers

  private exporterState(exporter: string, now: number): ExporterState {
    let s = this.exporters.get(exporter);
    if (s) {
      if (now - s.touched < TOUCH_MS && now >= s.touched) {
        s.stats.last_ms = now;
        return s;
      }
      // Least recently heard first: move to the end.
      this.exporters.delete(exporter);
    } else {
      if (this.exporters.size >= this.maxExporters) {
        const [oldest, old] = this.exporters.entries().next().value!;
        this.exporters.delete(oldest);
        for (const d of old.domains.values()) this.dropDomain(d);
      }
      s = {
        stats: { exporter, datagrams: 0, flows: 0, malformed: 0, sequence_errors: 0, lost_flows: 0, lost_datagrams: 0, restarts: 0, templates: 0, last_ms: now },
        domains: new Map(),
        touched: now,
        last: null,
      };
    }
    s.touched = now;
    this.exporters.set(exporter, s);
    this.stats.exporters = this.exporters.size;
    s.stats.last_ms = now;
    return s;
  }

  private domain(state: ExporterState, key: number, now: number): Domain {
    let d = state.last !== null && state.last.key === key ? state.last : state.domains.get(key);
    if (d) {
      state.last = d;
      if (now - d.touched < TOUCH_MS && now >= d.touched) return d;
      state.domains.delete(key);
    } else {
      if (state.domains.size >= this.maxDomains) {
        const old = state.domains.values().next().value!;
        state.domains.delete(old.key);
        this.dropDomain(old);
      }
      d = { key, exporter: state, templates: new Map(), next: null, uptime: null, touched: now, samplers: new Map() };
    }
    d.touched = now;
    state.domains.set(key, d);
    state.last = d;
    return d;
  }

  private dropDomain(d: Domain): void {
    for (const t of d.templates.values()) {
      this.unlinkTemplate(t);
      this.stats.templates_evicted++;
    }
    d.templates.clear();
  }

  /**
   * Follows one exporter/domain's sequence numbers, as nfcapd does: `seq` is
   * this datagram's, `units` how many the next one's should be past it
   * (v5: flows, v9: 1 datagram, IPFIX: data records; null when not known,
   * and the next datagram is taken as it comes). A small step back is a late
   * or repeated datagram; a big one (or the uptime going back) a restart.
   */
  private sequence(d: Domain, version: 5 | 9 | 10, seq: number, units: number | null, uptime: number | null): void {
    const s = d.exporter.stats;
    let late = false;
    if (d.next !== null && seq !== d.next) {
      const gap = (seq - d.next) >>> 0;
      const back = (d.next - seq) >>> 0;
      const restarted = uptime !== null && d.uptime !== null && uptime + UPTIME_SLACK_MS < d.uptime;
      if (!restarted && gap <= MAX_GAP) {
        this.stats.sequence_errors++;
        s.sequence_errors++;
        if (version === 9) {
          this.stats.lost_datagrams += gap;
          s.lost_datagrams += gap;
        } else {
          this.stats.lost_flows += gap;
          s.lost_flows += gap;
        }
      } else if (!restarted && back <= LATE_WINDOW[version]) {
        this.stats.sequence_errors++;
        s.sequence_errors++;
        late = true;
      } else {
        this.stats.restarts++;
        s.restarts++;
      }
    }
    if (late) return;
    d.next = units === null ? null : (seq + units) >>> 0;
    if (uptime !== null) d.uptime = uptime;
  }

  // ------------------------------------------------------------ templates

  /** The template for a data set, or undefined (unknown, or expired: forgotten now). Marks it used. */
  private template(d: Domain, id: number, now: number): Template | undefined {
    const t = d.templates.get(id);
    if (!t) return undefined;
    if (now - t.refreshed > this.templateMs) {
      this.removeTemplate(t);
      this.stats.templates_expired++;
      return undefined;
    }
    d.templates.delete(id);
    d.templates.set(id, t);
    if (t !== this.lruTail) {
      this.unlinkTemplate(t);
      this.linkTemplate(t);
    }
    return t;
  }

  private storeTemplate(t: Template): void {
    const d = t.domain;
    const old = d.templates.get(t.id);
    if (old) this.removeTemplate(old);
    else if (d.templates.size >= this.maxPerDomain) {
      this.removeTemplate(d.templates.values().next().value!);
      this.stats.templates_evicted++;
    }
    if (this.templateCount >= this.maxTemplates) {
      this.removeTemplate(this.lruHead!);
      this.stats.templates_evicted++;
    }
    d.templates.set(t.id, t);
    this.linkTemplate(t);
  }

  private removeTemplate(t: Template): void {
    if (t.domain.templates.get(t.id) === t) t.domain.templates.delete(t.id);
    this.unlinkTemplate(t);
  }

  private linkTemplate(t: Template): void {
    t.prev = this.lruTail;
    t.next = null;
    if (this.lruTail) this.lruTail.next = t;
    else this.lruHead = t;
    this.lruTail = t;
    this.templateCount++;
    this.stats.templates = this.templateCount;
  }

  private unlinkTemplate(t: Template): void {
    if (t.prev) t.prev.next = t.next;
    else if (this.lruHead === t) this.lruHead = t.next;
    else return; // not in the list
    if (t.next) t.next.prev = t.prev;
    else this.lruTail = t.prev;
    t.prev = t.next = null;
    this.templateCount--;
    this.stats.templates = this.templateCount;
  }

  // ------------------------------------------------------------ held data

  private hold(key: string, b: Buffer, start: number, end: number, ctx: Context): void {
    const size = end - start;
    if (this.maxHeld <= 0 || size > this.maxHeldBytes) {
      this.droppedHeld();
      return;
    }
    while (this.held.count > 0 && (this.held.count >= this.maxHeld || this.held.bytes + size > this.maxHeldBytes)) {
      this.held.dropOldest();
      this.droppedHeld();
    }
    const h: HeldSet<Context> = { key, data: Buffer.from(b.subarray(start, end)), offset: start - 4, context: ctx, at: ctx.recvMs, prev: null, next: null, keyNext: null };
    this.held.add(h);
  }

  private droppedHeld(): void {
    this.stats.held_dropped++;
    this.stats.heldDropped++;
  }

  private expireHeld(now: number): void {
    for (let h = this.held.oldest(); h && now - h.at > this.holdMs; h = this.held.oldest()) {
      this.held.dropOldest();
      this.stats.held_expired++;
      this.stats.heldDropped++;
    }
  }

  /**
   * A template came: the sets that waited for it, and only those, are taken
   * out of the hold first and then decoded, each once. One that does not
   * decode is dropped and counted; its records before the fault and the
   * other sets' records are kept. Returns the first fault, worded.
   */
  private release(key: string, t: Template, out: TrafficRecord[]): void {
    for (const h of this.held.take(key)) {
      try {
        this.readData(h.data, 0, h.data.length, h.offset + 4, t, h.context, out);
      } catch (err) {
        this.stats.held_failed++;
        const c = h.context;
        const msg = err instanceof DecodeError ? err.message : `internal decoder error (${err instanceof Error ? err.message : String(err)})`;
        if (!(err instanceof DecodeError)) this.stats.internal_errors++;
        this.heldFault ??= `${c.exporter}: ${VERSION_NAME[c.version]} ${DOMAIN_NAME[c.version]} ${c.domain}, held set ${t.id} (received ${new Date(h.at).toISOString()}) at byte ${h.offset}: ${msg}; the set is dropped`;
      }
    }
  }

  // ------------------------------------------------------------ versions

  private v5(b: Buffer, state: ExporterState, exporter: string, recvMs: number, out: TrafficRecord[]): void {
    const count = b.readUInt16BE(2);
    const uptime = b.readUInt32BE(4);
    const exportMs = b.readUInt32BE(8) * 1000 + Math.floor(b.readUInt32BE(12) / 1e6);
    if (count > 30 || b.length < 24 + count * 48) throw new DecodeError(`the header says ${count} records, the datagram holds ${Math.floor((b.length - 24) / 48)} (at most 30)`);
    // Sampling mode (2 bits) and interval (14 bits); nfdump scales by the interval whatever the mode.
    const sampling = rateOf(0, 0, b.readUInt16BE(22) & 0x3fff);
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
      if (sampling !== null) r.sampling = sampling;
      out.push(r);
    }
    // Engine type and id: nfcapd follows v5 sequences per engine.
    this.domainId = b.readUInt16BE(20);
    this.sequence(this.domain(state, 5 * 2 ** 32 + this.domainId, recvMs), 5, b.readUInt32BE(16), count, uptime);
  }

  private v9(b: Buffer, state: ExporterState, exporter: string, recvMs: number, out: TrafficRecord[]): void {
    const domain = b.readUInt32BE(16);
    this.domainId = domain;
    const ctx: Context = { exporter, recvMs, version: 9, domain, uptimeMs: b.readUInt32BE(4), exportMs: b.readUInt32BE(8) * 1000 };
    const d = this.domain(state, 9 * 2 ** 32 + domain, recvMs);
    try {
      this.sets(b, 20, b.length, ctx, d, out);
    } finally {
      // The package sequence counts export packets: one per datagram, whatever its sets held.
      this.sequence(d, 9, b.readUInt32BE(12), 1, ctx.uptimeMs);
    }
  }

  private ipfix(b: Buffer, state: ExporterState, exporter: string, recvMs: number, out: TrafficRecord[]): void {
    const length = b.readUInt16BE(2);
    if (length > b.length || length < 16) throw new DecodeError(`message length ${length} does not fit the datagram of ${b.length} bytes`);
    const domain = b.readUInt32BE(12);
    this.domainId = domain;
    const ctx: Context = { exporter, recvMs, version: 10, domain, uptimeMs: 0, exportMs: b.readUInt32BE(4) * 1000 };
    const d = this.domain(state, 10 * 2 ** 32 + domain, recvMs);
    let records: number | null = null;
    try {
      records = this.sets(b, 16, length, ctx, d, out);
    } finally {
      // The sequence counts data records; when a set was held or did not decode, their number is not known.
      this.sequence(d, 10, b.readUInt32BE(8), records, null);
    }
  }

  /** The sets of one v9 or IPFIX message; returns the data records in it, or null when some were held (count unknown). */
  private sets(b: Buffer, start: number, end: number, ctx: Context, d: Domain, out: TrafficRecord[]): number | null {
    const v9 = ctx.version === 9;
    let records: number | null = 0;
    let o = start;
    while (end - o >= 4) {
      const id = b.readUInt16BE(o);
      const len = b.readUInt16BE(o + 2);
      this.setId = id;
      this.setAt = o;
      if (len < 4) throw new DecodeError(`set length ${len} is below the 4 bytes of a set header`);
      if (len > end - o) throw new DecodeError(`set length ${len} runs past the end of the message (${end - o} bytes remain)`);
      if (id === (v9 ? 0 : 2) || id === (v9 ? 1 : 3)) {
        this.readTemplates(b, o + 4, o + len, d, id === (v9 ? 1 : 3), v9, ctx.recvMs, out);
      } else if (id >= 256) {
        const t = this.template(d, id, ctx.recvMs);
        if (t) {
          const n = this.readData(b, o + 4, o + len, 0, t, ctx, out);
          if (records !== null) records += n;
        } else if (len > 4) {
          this.hold(`${ctx.exporter}|${d.key}|${id}`, b, o + 4, o + len, ctx);
          records = null;
        }
      }
      // Ids 2-255 (v9) and 4-255 (IPFIX) are reserved: skipped, as RFC 7011 asks.
      o += len;
    }
    this.setId = this.setAt = -1;
    return records;
  }

  /** Template records from `start` to `end`; each releases the sets held for it. */
  private readTemplates(b: Buffer, start: number, end: number, d: Domain, options: boolean, v9: boolean, now: number, out: TrafficRecord[]): void {
    let o = start;
    while (end - o >= 4) {
      const at = o;
      const id = b.readUInt16BE(o);
      const count = b.readUInt16BE(o + 2);
      if (id === 0 && count === 0) break; // padding
      o += 4;
      if (!v9 && count === 0) {
        // RFC 7011 section 8.1: a withdrawal; a set id as template id withdraws every template of that kind.
        if (id === 2 || id === 3) {
          for (const t of [...d.templates.values()]) if (t.options === (id === 3)) this.removeTemplate(t);
        } else if (id >= 256) {
          const t = d.templates.get(id);
          if (t) this.removeTemplate(t);
        } else throw new DecodeError(`template withdrawal at byte ${at}: template id ${id} is below 256`);
        continue;
      }
      if (id < 256) throw new DecodeError(`template at byte ${at}: template id ${id} is below 256`);
      let fieldCount = count;
      if (options) {
        if (end - o < 2) throw new DecodeError(`options template ${id} at byte ${at} is cut short`);
        const second = b.readUInt16BE(o);
        o += 2;
        if (v9) {
          // v9: scope length and option length in bytes, four per field.
          fieldCount = (count + second) / 4;
          if (!Number.isInteger(fieldCount)) throw new DecodeError(`options template ${id} at byte ${at}: scope and option lengths ${count} + ${second} are not whole fields of 4 bytes`);
        } else if (second === 0 || second > count) {
          throw new DecodeError(`options template ${id} at byte ${at}: scope field count ${second} must be 1 to the field count ${count}`);
        }
      }
      if (fieldCount === 0) throw new DecodeError(`template ${id} at byte ${at} has no fields`);
      const t: Template = { id, domain: d, options, flow: false, sampler: false, ops: [], lens: [], ids: [], minLen: 0, variable: false, refreshed: now, prev: null, next: null };
      for (let i = 0; i < fieldCount; i++) {
        if (end - o < 4) throw new DecodeError(`template ${id} at byte ${at} ends after ${i} of ${fieldCount} fields`);
        let fid = b.readUInt16BE(o);
        const flen = b.readUInt16BE(o + 2);
        const fieldAt = o;
        o += 4;
        let pen = 0;
        if (!v9 && fid & 0x8000) {
          if (end - o < 4) throw new DecodeError(`template ${id} at byte ${at}: enterprise number of field ${i + 1} cut short`);
          pen = b.readUInt32BE(o);
          fid &= 0x7fff;
          o += 4;
        }
        this.addField(t, fid, flen, pen, fieldAt);
      }
      if (t.ops.length === 0 || t.minLen === 0) throw new DecodeError(`template ${id} at byte ${at}: its records would have no bytes (every field has length 0)`);
      this.storeTemplate(t);
      this.stats.templates_received++;
      if (this.held.count > 0) this.release(`${d.exporter.stats.exporter}|${d.key}|${id}`, t, out);
    }
  }

  /** One template field: checked against what its information element can be, and compiled into what the data path does. */
  private addField(t: Template, id: number, len: number, pen: number, at: number): void {
    const variable = len === VARIABLE;
    let op = SKIP;
    {
      let known = pen === 0 ? KNOWN.get(id) : pen === REVERSE_PEN && (id === 1 || id === 2) ? KNOWN.get(id) : undefined;
      // An options template's fields are read only for what they say about a sampler.
      if (t.options && known && !SAMPLER_OPS.has(known.op)) known = undefined;
      if (known) {
        if (variable ? !known.variable : len < known.min || len > known.max) {
          const want = known.min === known.max ? `${known.min} bytes` : `${known.min} to ${known.max} bytes${known.variable ? ' or variable' : ''}`;
          throw new DecodeError(`template ${t.id}, field at byte ${at}: ${known.name} (${pen ? `${pen}/` : ''}${id}) has length ${variable ? 'variable' : len}; it must be ${want}`);
        }
        op = known.op;
        if (t.options) t.sampler = true;
        else if (ADDRESS_OPS.has(known.op)) t.flow = true;
      }
    }
    if (!variable && len === 0) return; // an unknown field of no bytes: nothing to read or skip
    const n = t.ops.length;
    if (op === SKIP && !variable && n > 0 && t.ops[n - 1] === SKIP && t.lens[n - 1]! >= 0) {
      t.lens[n - 1]! += len; // neighbouring fixed fields skipped as one
    } else {
      t.ops.push(op);
      t.lens.push(variable ? -1 : len);
      t.ids.push(id);
    }
    if (variable) t.variable = true;
    t.minLen += variable ? 1 : len;
  }

  /**
   * The records of one data set, b[start, end); `base` is added to offsets
   * in messages (a held set's place in its datagram). Returns how many
   * records there were. Every record takes at least one byte (minLen >= 1),
   * so the loop ends; the remainder shorter than a record is padding.
   */
  private readData(b: Buffer, start: number, end: number, base: number, t: Template, ctx: Context, out: TrafficRecord[]): number {
    const { ops, lens } = t;
    if (!t.variable && !t.flow && !t.sampler) {
      const n = Math.floor((end - start) / t.minLen);
      if (t.options) this.stats.optionsRecords += n;
      else this.stats.skipped_records += n;
      return n;
    }
    let n = 0;
    let o = start;
    while (end - o >= t.minLen) {
      const recordAt = o;
      const r = t.flow ? emptyRecord('flow', ctx.version === 9 ? 'netflow-v9' : 'ipfix', ctx.exporter, ctx.recvMs) : null;
      let startUp: number | null = null;
      let endUp: number | null = null;
      // Sampling said in the record, the sampler it names; a frame section and the frame's size; an observation time.
      let plain = 0;
      let interval = 0;
      let space = 0;
      let samplerId = GENERIC;
      let frameAt = -1;
      let frameLen = 0;
      let frameSize = -1;
      let obsMs = -1;
      for (let i = 0; i < ops.length; i++) {
        let len = lens[i]!;
        const op = ops[i]!;
        if (len < 0) {
          // RFC 7011 section 7: one length byte, or 255 and two more.
          if (end - o < 1) throw this.cut(t, i, n, recordAt, o, base, end, 1);
          len = b[o]!;
          o++;
          if (len === 255) {
            if (end - o < 2) throw this.cut(t, i, n, recordAt, o, base, end, 2);
            len = b.readUInt16BE(o);
            o += 2;
          }
        }
        // A fixed-length template's records fit whole (the loop's condition); after a variable-length field each field is checked.
        if (t.variable && len > end - o) throw this.cut(t, i, n, recordAt, o, base, end, len);
        if (op >= SAMPLING_INTERVAL) {
          // What is new since the first decoder (sampling, NAT events, frames): out of the common fields' way.
          switch (op) {
            case SAMPLING_INTERVAL:
            case RANDOM_INTERVAL:
              plain = uint(b, o, len);
              break;
            case SAMPLER_ID:
              samplerId = uint(b, o, len);
              if (samplerId === 0) samplerId = GENERIC;
              break;
            case PACKET_INTERVAL:
              interval = uint(b, o, len);
              break;
            case PACKET_SPACE:
              space = uint(b, o, len);
              break;
            case NAT_EVENT:
              if (r) r.nat_event = b[o]!;
              break;
            case POST_DST_V4:
              if (r) r.post_nat_dst_ip = ipv4(b, o);
              break;
            case POST_DST_V6:
              if (r) r.post_nat_dst_ip = ipv6(b, o);
              break;
            case POST_DST_PORT:
              if (r) r.post_nat_dst_port = uint(b, o, len);
              break;
            case FRAME:
              frameAt = o;
              frameLen = len;
              break;
            case FRAME_SIZE:
              frameSize = uint(b, o, len);
              break;
            case OBS_MS:
              obsMs = uint(b, o, 8);
              break;
          }
        } else if (r) {
          switch (op) {
            case SKIP:
              break;
            case BYTES:
              r.bytes = (r.bytes ?? 0) + uint(b, o, len);
              break;
            case PACKETS:
              r.packets = (r.packets ?? 0) + uint(b, o, len);
              break;
            case PROTO:
              r.proto = b[o]!;
              break;
            case SRC_PORT:
              r.src_port = uint(b, o, len);
              break;
            case DST_PORT:
              r.dst_port = uint(b, o, len);
              break;
            case SRC_V4:
              r.src_ip = ipv4(b, o);
              break;
            case DST_V4:
              r.dst_ip = ipv4(b, o);
              break;
            case SRC_V6:
              r.src_ip = ipv6(b, o);
              break;
            case DST_V6:
              r.dst_ip = ipv6(b, o);
              break;
            case NAT_V4:
              r.nat_ip = ipv4(b, o);
              break;
            case NAT_V6:
              r.nat_ip = ipv6(b, o);
              break;
            case NAT_PORT:
              r.nat_port = uint(b, o, len);
              break;
            case MAC:
              r.mac = mac(b, o);
              break;
            case START_UPTIME:
              startUp = uint(b, o, len);
              break;
            case END_UPTIME:
              endUp = uint(b, o, len);
              break;
            case START_SEC:
              r.start_ms = uint(b, o, 4) * 1000;
              break;
            case END_SEC:
              r.end_ms = uint(b, o, 4) * 1000;
              break;
            case START_MS:
              r.start_ms = uint(b, o, 8);
              break;
            case END_MS:
              r.end_ms = uint(b, o, 8);
              break;
            case START_NTP:
              r.start_ms = ntpMs(b, o);
              break;
            case END_NTP:
              r.end_ms = ntpMs(b, o);
              break;
            case USER:
              // A variable field may be empty.
              r.user = len > 0 ? b.toString('utf8', o, o + len) || null : r.user;
              break;
          }
        }
        o += len;
      }
      n++;
      if (!r) {
        if (t.options) {
          this.stats.optionsRecords++;
          if (t.sampler) this.learnSampler(t.domain, samplerId, rateOf(interval, space, plain));
        } else this.stats.skipped_records++;
        continue;
      }
      if (frameAt >= 0) {
        const estimate = frameSection(b, frameAt, frameLen);
        const f = frameFacts;
        // The record's own fields first; the frame fills what they left empty.
        r.src_ip ??= f.src;
        r.dst_ip ??= f.dst;
        r.mac ??= f.mac;
        if (r.proto === null && f.proto >= 0) r.proto = f.proto;
        if (r.src_port === null && f.sport >= 0) r.src_port = f.sport;
        if (r.dst_port === null && f.dport >= 0) r.dst_port = f.dport;
        if (r.packets === null && r.bytes === null) {
          // One frame: its size as the exporter said it, else as its IP header says, else the section's.
          r.packets = 1;
          r.bytes = frameSize >= 0 ? frameSize : estimate >= 0 ? estimate : frameLen;
        }
      }
      if (obsMs >= 0 && r.end_ms === null) {
        // A NAT or firewall event's time (RFC 8158): the flow's first and last packet, as nfdump takes it.
        r.start_ms ??= obsMs;
        r.end_ms = obsMs;
      }
      const own = plain > 0 || interval > 0 || space > 0 ? rateOf(interval, space, plain) : null;
      const samplers = t.domain.samplers;
      const rate = own ?? (samplers.size > 0 ? (samplers.get(samplerId) ?? samplers.get(GENERIC) ?? null) : null);
      if (rate !== null) r.sampling = rate;
      // v9 and some IPFIX exporters time flows by the exporter's uptime.
      if (startUp !== null && r.start_ms === null) r.start_ms = ctx.exportMs - (ctx.uptimeMs - startUp);
      if (endUp !== null && r.end_ms === null) r.end_ms = ctx.exportMs - (ctx.uptimeMs - endUp);
      r.dev_ms = r.end_ms ?? ctx.exportMs;
      out.push(r);
    }
    return n;
  }

  /** An options record named a sampler (or the domain's own rate, GENERIC): kept for the flows that follow; a rate of 1 or none forgets it. */
  private learnSampler(d: Domain, id: number, rate: number | null): void {
    this.stats.samplers_received++;
    d.samplers.delete(id);
    if (rate === null) return;
    if (d.samplers.size >= MAX_SAMPLERS) d.samplers.delete(d.samplers.keys().next().value!);
    d.samplers.set(id, rate);
  }

  private cut(t: Template, field: number, record: number, recordAt: number, o: number, base: number, end: number, need: number): DecodeError {
    return new DecodeError(
      `template ${t.id}: record ${record + 1} at byte ${base + recordAt} cut short in field ${t.ids[field]}${t.lens[field]! < 0 ? ' (variable length)' : ''} (${need} bytes needed at byte ${base + o}, the set ends at byte ${base + end})`,
    );
  }
}
