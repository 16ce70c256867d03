// ICMP reachability and round-trip time for every host of a round with ONE
// fping process (the way Zabbix and Smokeping probe: fping paces the probes
// itself and costs a fraction of a process per host). Where fping is absent,
// the system ping runs per host, a bounded number at a time: slower and
// costlier, but the figures are the same.
//
// What the prober does not know it does not guess: a probe process that
// reports nothing, dies by a signal, exits with an error code or hangs past
// its deadline makes the round UNKNOWN (probe() rejects, naming the program,
// its exit code or signal and its stderr), and a host it did not report is
// absent from the result (unknown), never counted as lost. Only a host the
// program reported with every probe unanswered is lost.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { access, constants } from 'node:fs/promises';
import { delimiter, join, isAbsolute } from 'node:path';

export interface IcmpResult {
  address: string;
  sent: number;
  received: number;
  lossPct: number;
  /** Round trips of the answered probes, ms, in order. */
  rtts: number[];
  min?: number;
  avg?: number;
  max?: number;
  jitter?: number;
}

export interface IcmpOptions {
  count: number;
  periodMs: number;
  spacingMs: number;
  timeoutMs: number;
  /** Kill the probe process (SIGKILL) after this long; default: probeDeadlineMs(). */
  deadlineMs?: number;
}

export interface Prober {
  readonly name: string;
  /**
   * The hosts the round could judge: a host missing from the map is unknown
   * this round. Rejects (the whole round unknown) when the probe program
   * reported nothing usable: not started, killed, error exit, past its deadline.
   */
  probe(addresses: readonly string[], opts: IcmpOptions): Promise<Map<string, IcmpResult>>;
}

/** How long one fping round over `hosts` hosts should take, ms: every probe of every host sent, the last one waited for. */
export function expectedRoundMs(hosts: number, opts: IcmpOptions): number {
  return opts.count * Math.max(opts.periodMs, hosts * Math.max(1, opts.spacingMs)) + opts.timeoutMs;
}

/** When a hung probe process is killed: the expected round time, half again, and 5 s for starting and a loaded machine. */
export function probeDeadlineMs(hosts: number, opts: IcmpOptions): number {
  return opts.deadlineMs ?? Math.ceil(expectedRoundMs(hosts, opts) * 1.5) + 5000;
}

const MAX_LINE = 4096;
const MAX_NOTES = 5;
const MAX_NOTE = 200;

/** Lines of a child's output, each cut at MAX_LINE characters (the rest of an over-long line is dropped, not kept). */
function eachLine(input: Readable, onLine: (line: string) => void): void {
  let buf = '';
  let skipping = false;
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', from);
      const part = chunk.slice(from, nl < 0 ? chunk.length : nl);
      if (!skipping) {
        buf += part.slice(0, MAX_LINE - buf.length);
        if (buf.length >= MAX_LINE) skipping = true;
      }
      if (nl < 0) break;
      onLine(buf);
      buf = '';
      skipping = false;
      from = nl + 1;
    }
  });
  input.on('end', () => {
    if (buf) onLine(buf);
  });
}

/** One line for the log: control characters out, length bounded. */
function oneLine(text: string, max = MAX_NOTE): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max) + '…' : flat;
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed by us at the deadline. */
  timedOut: boolean;
  /** Up to MAX_NOTES lines of the output not understood, for the error message. */
  notes: string[];
}

/**
 * Runs `path args`, hands every output line (stdout and stderr, bounded) to
 * `onLine`, and SIGKILLs the process after `deadlineMs`. Rejects only when
 * it cannot be started.
 */
function runProbe(path: string, args: string[], input: string | undefined, deadlineMs: number, onLine: (line: string) => boolean): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // Its own process group, so the deadline kills whatever it started too.
    const child = spawn(path, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
    const notes: string[] = [];
    let timedOut = false;
    let done = false;
    const line = (l: string) => {
      if (!onLine(l) && notes.length < MAX_NOTES && l.trim()) notes.push(oneLine(l));
    };
    eachLine(child.stdout!, line);
    eachLine(child.stderr!, line);
    const killAll = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killAll();
    }, deadlineMs);
    let grace: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      resolve({ code, signal, timedOut, notes });
    };
    child.on('error', (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${path}: ${err.message}`));
    });
    child.on('close', finish);
    // Exited, but something it left behind holds its output open: a second to drain, then no more waiting.
    child.on('exit', (code, signal) => {
      grace = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        killAll();
        finish(code, signal);
      }, 1000);
    });
    if (input !== undefined) {
      child.stdin!.on('error', () => {}); // the program may exit before reading all targets; 'close' reports why
      child.stdin!.end(input);
    }
  });
}

/** What went wrong with a run, in one line, or undefined when its exit is one of `okCodes`. */
function failure(ran: Ran, deadlineMs: number, okCodes: readonly number[]): string | undefined {
  if (ran.timedOut) return `killed (SIGKILL) at its deadline of ${deadlineMs} ms`;
  if (ran.signal) return `killed by signal ${ran.signal}`;
  if (ran.code === null || !okCodes.includes(ran.code)) return `exit code ${ran.code}`;
  return undefined;
}

const stderrOf = (ran: Ran) => `output: ${ran.notes.length > 0 ? ran.notes.join(' | ') : '(none)'}`;

export function summarize(address: string, sent: number, rtts: number[]): IcmpResult {
  const r: IcmpResult = { address, sent, received: rtts.length, lossPct: sent > 0 ? (100 * (sent - rtts.length)) / sent : 100, rtts };
  if (rtts.length > 0) {
    r.min = Math.min(...rtts);
    r.max = Math.max(...rtts);
    r.avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
    let d = 0;
    for (let i = 1; i < rtts.length; i++) d += Math.abs(rtts[i]! - rtts[i - 1]!);
    r.jitter = rtts.length > 1 ? d / (rtts.length - 1) : 0;
  }
  return r;
}

/** Parses one line of `fping -C N -q` output: "10.0.0.1 : 0.51 - 0.48". */
export function parseFpingLine(line: string): { address: string; rtts: number[]; sent: number } | undefined {
  const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const probes = m[2]!.trim().split(/\s+/);
  if (!probes.every((p) => p === '-' || /^\d+(\.\d+)?$/.test(p))) return undefined;
  return { address: m[1]!, sent: probes.length, rtts: probes.filter((p) => p !== '-').map(Number) };
}

export async function findExecutable(name: string): Promise<string | undefined> {
  const candidates = isAbsolute(name) || name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

export class FpingProber implements Prober {
  readonly name = 'fping';
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async probe(addresses: readonly string[], opts: IcmpOptions): Promise<Map<string, IcmpResult>> {
    const unique = [...new Set(addresses)];
    const wanted = new Set(unique);
    const results = new Map<string, IcmpResult>();
    if (unique.length === 0) return results;
    const args = ['-C', String(opts.count), '-q', '-B', '1', '-r', '0', '-p', String(Math.max(10, opts.periodMs)), '-t', String(opts.timeoutMs), '-i', String(Math.max(1, opts.spacingMs))];
    const deadline = probeDeadlineMs(unique.length, opts);
    let ran: Ran;
    try {
      ran = await runProbe(this.path, args, unique.join('\n') + '\n', deadline, (line) => {
        const p = parseFpingLine(line);
        // Only the hosts we asked about: output we did not ask for cannot grow the map.
        if (!p || !wanted.has(p.address)) return false;
        results.set(p.address, summarize(p.address, p.sent, p.rtts));
        return true;
      });
    } catch (err) {
      throw new Error(`fping ${(err as Error).message}`);
    }
    // man fping: 0 all hosts reachable, 1 some unreachable, 2 an address not
    // found; above 2 an error. Anything else (a signal, our deadline) is no answer.
    const wrong = failure(ran, deadline, [0, 1, 2]) ?? (results.size === 0 ? `exit code ${ran.code} but no result for any of the ${unique.length} hosts` : undefined);
    if (wrong) throw new Error(`fping ${this.path}: ${wrong}; ${stderrOf(ran)}`);
    return results;
  }
}

/** One line of the system ping's (iputils) output: a reply's round trip, or the summary. */
export function parsePingLine(line: string): { rtt: number } | { sent: number; received: number } | undefined {
  const t = /\bbytes from\b.*\btime[=<]([\d.]+) ?ms\b/.exec(line);
  if (t) return { rtt: Number(t[1]) };
  const s = /^(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(line.trim());
  if (s) return { sent: Number(s[1]), received: Number(s[2]) };
  return undefined;
}

/** Fallback: the system `ping` (iputils) per host, at most `concurrency` at once. */
export class SystemPingProber implements Prober {
  readonly name = 'ping';
  readonly concurrency: number;
  readonly path: string;

  constructor(concurrency = 64, path = 'ping') {
    this.concurrency = concurrency;
    this.path = path;
  }

  async probe(addresses: readonly string[], opts: IcmpOptions): Promise<Map<string, IcmpResult>> {
    const unique = [...new Set(addresses)];
    const results = new Map<string, IcmpResult>();
    if (unique.length === 0) return results;
    const path = await findExecutable(this.path);
    if (!path) throw new Error(`ping ${this.path}: not found (install Debian package iputils-ping, or better fping)`);
    // iputils: -i below 0.2 s needs root; -W is whole seconds of waiting for each reply.
    const intervalS = Math.max(0.2, opts.periodMs / 1000);
    const waitS = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
    const deadline = opts.deadlineMs ?? Math.ceil((opts.count * intervalS + waitS) * 1000 * 1.5) + 5000;
    let firstError: string | undefined;
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const address = unique[next++]!;
        const rtts: number[] = [];
        let summary: { sent: number; received: number } | undefined;
        try {
          const ran = await runProbe(path, ['-n', '-c', String(opts.count), '-i', String(intervalS), '-W', String(waitS), address], undefined, deadline, (line) => {
            const p = parsePingLine(line);
            if (p && 'rtt' in p) {
              if (rtts.length < opts.count) rtts.push(p.rtt);
            } else if (p) summary = p;
            return p !== undefined || /^PING |^--- |^rtt |^\s*$/.test(line);
          });
          // iputils: 0 a reply came, 1 none did (with -c), 2 an error.
          const bad = failure(ran, deadline, [0, 1]) ?? (summary ? undefined : 'no summary line');
          if (!bad && summary) {
            results.set(address, summarize(address, summary.sent, rtts.slice(0, summary.received)));
            continue;
          }
          // Unknown: the host stays out of the map.
          firstError ??= `ping ${path} ${address}: ${bad}; ${stderrOf(ran)}`;
        } catch (err) {
          firstError ??= `ping ${(err as Error).message}`;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, unique.length) }, worker));
    if (results.size === 0) throw new Error(`${firstError ?? 'ping: no result'}${unique.length > 1 ? ` (and no result for any of the ${unique.length} hosts)` : ''}`);
    return results;
  }
}

/** fping when it can be found (configured path or PATH), else the system-ping fallback. */
export async function chooseProber(fping: string): Promise<Prober> {
  const path = await findExecutable(fping);
  return path ? new FpingProber(path) : new SystemPingProber();
}
