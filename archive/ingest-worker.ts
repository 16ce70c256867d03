// A parsing thread of the traffic receivers (ingest.ts): syslog lines through
// parsers.ts, or NetFlow/IPFIX datagrams through one FlowDecoder (its
// templates live here), handed over in batches and handed back as one
// write-ahead-log frame (record.ts RowEncoder) that the receivers' thread
// only appends. Each message's parse is timed: one over the budget is stored
// as the plain syslog record and counted. The receivers' thread terminates
// this thread when a batch takes too long (a parse that never ends).
import { isUtf8 } from 'node:buffer';
import { parentPort, workerData } from 'node:worker_threads';
import { FlowDecoder, type ExporterStats } from './netflow.ts';
import { parseLogLine } from './parsers.ts';
import { emptyRecord, FLAG_SLOW, RowEncoder, type TrafficRecord } from './record.ts';
import { withoutEol } from './syslog.ts';

export interface IngestWorkerData {
  kind: 'syslog' | 'flow';
  /** Inventory address -> school code. */
  schools: [string, string][];
  utcOffsetMinutes: number;
  parseBudgetMs: number;
  maxHeld: number;
  maxHeldBytes: number;
  holdMs: number;
  /** Only in tests (KW_TEST_PARSE_HOOK=1): a line holding "KW-TEST-BUSY-LOOP ms=N" keeps the thread busy N ms. */
  testHook: boolean;
}

/**
 * A batch, in shared memory that the receivers' thread does not touch until
 * this batch is answered (read here in place, never copied): `memory`
 * starts with the index, five numbers (Float64) per message (offset into
 * the bytes, length, receive time, exporter number into `exporters`, flags:
 * record.ts FLAG_CUT for a message cut at max_message); from `at` on, the
 * messages' bytes one after the other (`bytes` of them).
 */
export interface IngestBatch {
  id: number;
  memory: SharedArrayBuffer;
  at: number;
  bytes: number;
  count: number;
  exporters: string[];
}

export interface IngestResult {
  id: number;
  /** One write-ahead-log frame payload of `records` records (null: none). */
  frame: ArrayBuffer | null;
  records: number;
  unparsed: number;
  overBudget: number;
  malformed: number;
  /** A sample of what was wrong (one per batch at most), for the log. */
  error?: string;
  decoder?: Record<string, number>;
  /** The exporters with the most loss (at most MAX_EXPORTERS_SENT), when their figures changed or a second has passed. */
  exporters?: ExporterStats[];
}

/** Exporters whose figures go back with a batch, at most: the ones with the most loss. */
export const MAX_EXPORTERS_SENT = 50;

const wd = workerData as IngestWorkerData;
const schoolOf = new Map(wd.schools);
const encoder = new RowEncoder();
const decoder = wd.kind === 'flow' ? new FlowDecoder({ maxHeld: wd.maxHeld, maxHeldBytes: wd.maxHeldBytes, holdMs: wd.holdMs }) : null;
const BUSY = /KW-TEST-BUSY-LOOP ms=(\d{1,6})/;
/** Numbers per message in a batch's index. */
const STRIDE = 5;

// The decoder's held data sets expire on a timer here (when it has a way to).
if (decoder) {
  const expiring = decoder as unknown as { expire?: (now: number) => void };
  if (typeof expiring.expire === 'function') setInterval(() => expiring.expire!(Date.now()), 5_000).unref();
}

/** The plain syslog record: the line kept whole, nothing parsed; its flags (null when none). */
function plain(line: string, exporter: string, recvMs: number, flags: number): TrafficRecord {
  const r = emptyRecord('log', 'syslog', exporter, recvMs);
  r.raw = withoutEol(line);
  if (flags !== 0) r.flags = flags;
  return r;
}

/**
 * The message's bytes, when they were not valid UTF-8 (the text then holds a
 * U+FFFD for each bad sequence, and only then is the check made): what
 * `raw_bytes` keeps, without the line ending `raw` is kept without.
 */
function rawBytes(line: string, data: Buffer, o: number, len: number): Uint8Array | null {
  if (line.indexOf('\ufffd') < 0) return null;
  let end = o + len;
  while (end > o && (data[end - 1] === 10 || data[end - 1] === 13)) end--;
  const bytes = data.subarray(o, end);
  return isUtf8(bytes) ? null : Buffer.from(bytes);
}

function syslogBatch(b: IngestBatch, index: Float64Array, data: Buffer, out: IngestResult, records: TrafficRecord[]): void {
  // One clock reading per message: where one parse ends the next one's time starts.
  let t0 = performance.now();
  for (let i = 0; i < b.count; i++) {
    const k = i * STRIDE;
    const o = index[k]!;
    const len = index[k + 1]!;
    const recvMs = index[k + 2]!;
    const exporter = b.exporters[index[k + 3]!]!;
    const flags = index[k + 4]!;
    const line = data.toString('utf8', o, o + len);
    if (wd.testHook) {
      const m = BUSY.exec(line);
      if (m) for (const end = t0 + Number(m[1]); performance.now() < end; );
    }
    let r: TrafficRecord;
    try {
      r = parseLogLine(line, { exporter, recvMs, utcOffsetMinutes: wd.utcOffsetMinutes }, flags);
    } catch (err) {
      r = plain(line, exporter, recvMs, flags);
      out.error ??= `${exporter}: the parser failed: ${(err as Error).message}`;
    }
    const t1 = performance.now();
    if (t1 - t0 > wd.parseBudgetMs) {
      // Over budget: what the parsers found is not kept; the header (time, host, application) is, and the record says so (FLAG_SLOW).
      const p = plain(line, exporter, recvMs, (r.flags ?? flags) | FLAG_SLOW);
      p.dev_ms = r.dev_ms;
      p.host = r.host;
      p.app = r.app;
      r = p;
      out.overBudget++;
    }
    t0 = t1;
    r.raw_bytes = rawBytes(line, data, o, len);
    if (r.parser === 'syslog') out.unparsed++;
    r.school = schoolOf.get(exporter) ?? null;
    records.push(r);
  }
}

function flowBatch(b: IngestBatch, index: Float64Array, data: Buffer, out: IngestResult, records: TrafficRecord[]): void {
  const d = decoder!;
  for (let i = 0; i < b.count; i++) {
    const o = index[i * STRIDE]!;
    const len = index[i * STRIDE + 1]!;
    const recvMs = index[i * STRIDE + 2]!;
    const exporter = b.exporters[index[i * STRIDE + 3]!]!;
    let flows: TrafficRecord[];
    let error: string | undefined;
    try {
      ({ flows, error } = d.decode(data.subarray(o, o + len), exporter, recvMs));
    } catch (err) {
      flows = [];
      error = `${exporter}: ${(err as Error).message}`;
    }
    if (error !== undefined) {
      out.malformed++;
      out.error ??= `${error} (${len} bytes)`;
    }
    const school = schoolOf.get(exporter) ?? null;
    for (const f of flows) {
      f.school = school;
      records.push(f);
    }
  }
  out.decoder = { ...d.stats } as unknown as Record<string, number>;
  // The per-exporter figures go back when something worth seeing changed (loss, faults), or once a second.
  const now = Date.now();
  const mark = d.stats.sequence_errors + d.stats.malformed + d.stats.restarts + d.stats.exporters;
  if (mark !== exportersMark || now - exportersSent >= 1000) {
    exportersMark = mark;
    exportersSent = now;
    out.exporters = worstExporters(d.exporterStats());
  }
}

let exportersMark = -1;
let exportersSent = 0;

/** The MAX_EXPORTERS_SENT exporters with the most lost flows and datagrams, sequence errors and faults (bounded: the decoder keeps at most its maxExporters). */
function worstExporters(all: ExporterStats[]): ExporterStats[] {
  const loss = (e: ExporterStats) => e.lost_flows + e.lost_datagrams + e.sequence_errors + e.malformed;
  return all.sort((a, b) => loss(b) - loss(a) || b.last_ms - a.last_ms).slice(0, MAX_EXPORTERS_SENT);
}

// Each parser's first lines cost compiling its expressions (several ms on a
// busy machine): paid here, before the budget counts.
const WARM = [
  'Oct 10 2018 12:34:56 localhost CiscoASA[999]: %ASA-6-305011: Built dynamic TCP translation from inside:172.31.98.44/1772 to outside:100.66.98.44/8256',
  '(549077) Login OK: [host/hostname.example.org] (from client WLAN port 9815 cli 00-11-22-33-44-55)',
  '<190>Jul  4 09:39:40 dhcpd[64305]: DHCPACK on 10.36.1.50 to aa:bb:cc:00:11:22 (pc) via eth0',
  '2023-03-18T20:35:05.734637+01:00 10.120.127.1 firewall,info drop-in input: in:ether1-WAN out:(unknown 0), connection-state:new src-mac 00:17:10:88:bc:02, proto UDP, 186.26.78.68:44355->81.82.202.145:53, len 65',
  '67.43.156.13 - - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612 "-" "Mozilla/5.0"',
  '<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,12617,0,DF,6,tcp,60,10.170.12.50,1.1.1.1,49724,853,0,S,1891286705,,64240,,mss',
  'Oct 30 00:47:18 54-171-144-1 postfix/smtpd[13210]: connect from st11p06mm-asmtp002.mac.com[17.172.124.250]',
  '<134>1 2022-09-06T18:37:34+02:00 opnsense filterlog 69805 - [meta sequenceId="2633353"] 10,,,02f4,re0,match,block,in,4,0x0,,118,28579,0,none,17,udp,132,212.102.36.22,37.120.48.198,49838,52938,112',
  '<13>1 2026-01-01T00:00:00Z host kw-test - - - สวัสดี ทดสอบ',
  '1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/175.16.199.115 -',
];
if (wd.kind === 'syslog') {
  for (let i = 0; i < 20; i++) for (const line of WARM) parseLogLine(line, { exporter: '127.0.0.1', recvMs: Date.now(), utcOffsetMinutes: wd.utcOffsetMinutes });
  encoder.encode([parseLogLine(WARM[0]!, { exporter: '127.0.0.1', recvMs: Date.now(), utcOffsetMinutes: 0 })]);
}

parentPort!.on('message', (b: IngestBatch) => {
  const out: IngestResult = { id: b.id, frame: null, records: 0, unparsed: 0, overBudget: 0, malformed: 0 };
  const records: TrafficRecord[] = [];
  const data = Buffer.from(b.memory, b.at, b.bytes);
  const index = new Float64Array(b.memory, 0, b.count * STRIDE);
  if (wd.kind === 'flow') flowBatch(b, index, data, out, records);
  else syslogBatch(b, index, data, out, records);
  if (records.length > 0) {
    const payload = encoder.encode(records);
    const frame = new ArrayBuffer(payload.length);
    new Uint8Array(frame).set(payload);
    out.frame = frame;
    out.records = records.length;
    parentPort!.postMessage(out, [frame]);
  } else parentPort!.postMessage(out);
});
