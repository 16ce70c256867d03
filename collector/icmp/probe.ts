// ICMP reachability and round-trip time for every host of a round with ONE
// fping process (the way Zabbix and Smokeping probe: fping paces the probes
// itself and costs a fraction of a process per host). Where fping is absent,
// the npm `ping` package runs the system ping per host, a bounded number at
// a time: slower and costlier, but the figures are the same.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
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
}

export interface Prober {
  readonly name: string;
  probe(addresses: readonly string[], opts: IcmpOptions): Promise<Map<string, IcmpResult>>;
}

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

  probe(addresses: readonly string[], opts: IcmpOptions): Promise<Map<string, IcmpResult>> {
    const unique = [...new Set(addresses)];
    const results = new Map<string, IcmpResult>();
    if (unique.length === 0) return Promise.resolve(results);
    const args = ['-C', String(opts.count), '-q', '-B', '1', '-r', '0', '-p', String(Math.max(10, opts.periodMs)), '-t', String(opts.timeoutMs), '-i', String(Math.max(1, opts.spacingMs))];
    return new Promise((resolve, reject) => {
      const child = spawn(this.path, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      const other: string[] = [];
      createInterface({ input: child.stderr }).on('line', (line) => {
        const p = parseFpingLine(line);
        if (p) results.set(p.address, summarize(p.address, p.sent, p.rtts));
        else if (other.length < 20) other.push(line);
      });
      child.on('error', (err) => reject(new Error(`fping ${this.path}: ${err.message}`)));
      child.on('close', (code) => {
        // 0: all answered; 1: some did not; 2: a name did not resolve. 3 and 4 are real failures.
        if (code !== null && code >= 3) {
          reject(new Error(`fping ${this.path} exited ${code}: ${other.join(' | ') || 'no output'}`));
          return;
        }
        for (const a of unique) if (!results.has(a)) results.set(a, summarize(a, opts.count, []));
        resolve(results);
      });
      child.stdin.on('error', () => {}); // fping may exit before reading all targets; 'close' reports why
      child.stdin.end(unique.join('\n') + '\n');
    });
  }
}

/** Fallback: the system `ping` per host through the npm `ping` package, at most `concurrency` at once. */
export class SystemPingProber implements Prober {
  readonly name = 'ping';
  readonly concurrency: number;

  constructor(concurrency = 64) {
    this.concurrency = concurrency;
  }

  async probe(addresses: readonly string[], opts: IcmpOptions): Promise<Map<string, IcmpResult>> {
    // Loaded only where fping is missing: most collectors never need it.
    const { default: ping } = await import('ping');
    const unique = [...new Set(addresses)];
    const results = new Map<string, IcmpResult>();
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const address = unique[next++]!;
        try {
          const res = await ping.promise.probe(address, {
            timeout: Math.max(1, Math.ceil(opts.timeoutMs / 1000)),
            min_reply: opts.count,
            // iputils: -i below 0.2 s needs root; -W per-reply wait is set by `timeout`.
            extra: ['-i', String(Math.max(0.2, opts.periodMs / 1000))],
          });
          const rtts = (res as unknown as { times?: number[] }).times ?? [];
          results.set(address, summarize(address, opts.count, res.alive ? rtts.slice(0, opts.count) : []));
        } catch {
          results.set(address, summarize(address, opts.count, []));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, unique.length) }, worker));
    return results;
  }
}

/** fping when it can be found (configured path or PATH), else the system-ping fallback. */
export async function chooseProber(fping: string): Promise<Prober> {
  const path = await findExecutable(fping);
  return path ? new FpingProber(path) : new SystemPingProber();
}
