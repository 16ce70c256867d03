// The InfluxDB v1 HTTP API (/ping, /write, /query), which InfluxDB 1.x serves
// natively and 2.x and 3.x serve for compatibility, so one path covers all
// three. Errors say which server, which call and what it answered.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { InfluxAuth } from '../../config/load.ts';

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 4 });

export interface InfluxTarget {
  url: string;
  database: string;
  username?: string | undefined;
  auth: InfluxAuth;
  timeoutMs: number;
}

export class InfluxHttpError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(what: string, status: number, body: string) {
    super(`${what}: HTTP ${status}: ${body.trim().slice(0, 500)}`);
    this.name = 'InfluxHttpError';
    this.status = status;
    this.body = body;
  }
}

export class InfluxClient {
  readonly target: InfluxTarget;
  private readonly base: string;

  constructor(target: InfluxTarget) {
    this.target = target;
    this.base = target.url.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.target.auth.token) h.authorization = `Token ${this.target.auth.token.reveal()}`;
    else if (this.target.username) {
      h.authorization = 'Basic ' + Buffer.from(`${this.target.username}:${this.target.auth.password?.reveal() ?? ''}`).toString('base64');
    }
    return h;
  }

  private async request(what: string, path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(this.base + path, { ...init, signal: AbortSignal.timeout(this.target.timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new Error(`influxdb ${this.base}: ${what}: ${reason}`);
    }
  }

  /** Server version from the X-Influxdb-Version header of /ping. */
  async ping(): Promise<string> {
    const res = await this.request('ping', '/ping', { headers: this.headers() });
    await res.arrayBuffer();
    if (res.status !== 204 && res.status !== 200) throw new InfluxHttpError(`influxdb ${this.base}: ping`, res.status, '');
    return res.headers.get('x-influxdb-version') ?? 'unknown';
  }

  /**
   * POST line protocol (millisecond timestamps) into the database's default
   * retention policy. node:http with a keep-alive agent, not fetch: this is
   * the hot path, and fetch's stream machinery cost about as much CPU as
   * building the batch (bench/poll). A Buffer is sent as it is: the spool
   * keeps a batch as the very bytes to send.
   */
  async write(body: string | Buffer, opts: { rp?: string } = {}): Promise<void> {
    const q = new URLSearchParams({ db: this.target.database, precision: 'ms' });
    if (opts.rp) q.set('rp', opts.rp);
    const what = `influxdb ${this.base}: write to ${this.target.database}`;
    const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const url = new URL(`${this.base}/write?${q}`);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          agent: url.protocol === 'https:' ? httpsAgent : httpAgent,
          headers: this.headers({ 'content-type': 'text/plain; charset=utf-8', 'content-length': String(payload.length) }),
          timeout: this.target.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`timeout after ${this.target.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(`influxdb ${this.base}: write: ${err.code ?? err.message}`)));
      req.end(payload);
    });
    if (status !== 204 && status !== 200) throw new InfluxHttpError(what, status, text);
  }

  /** Run InfluxQL; returns the `results` array, throwing on any statement error. */
  async query(q: string, opts: { db?: string | false; method?: 'GET' | 'POST' } = {}): Promise<InfluxResult[]> {
    const params = new URLSearchParams({ q, epoch: 'ms' });
    if (opts.db !== false) params.set('db', opts.db ?? this.target.database);
    const method = opts.method ?? (/^\s*(select|show)\b/i.test(q) ? 'GET' : 'POST');
    const res =
      method === 'GET'
        ? await this.request('query', `/query?${params}`, { headers: this.headers() })
        : await this.request('query', '/query', { method: 'POST', body: params, headers: this.headers({ 'content-type': 'application/x-www-form-urlencoded' }) });
    const text = await res.text();
    if (res.status !== 200) throw new InfluxHttpError(`influxdb ${this.base}: query ${JSON.stringify(q.slice(0, 120))}`, res.status, text);
    const json = JSON.parse(text) as { results?: InfluxResult[]; error?: string };
    if (json.error) throw new Error(`influxdb ${this.base}: query ${JSON.stringify(q.slice(0, 120))}: ${json.error}`);
    for (const r of json.results ?? []) {
      if (r.error) throw new Error(`influxdb ${this.base}: query ${JSON.stringify(q.slice(0, 120))}: ${r.error}`);
    }
    return json.results ?? [];
  }
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: unknown[][];
}

export interface InfluxResult {
  statement_id?: number;
  series?: InfluxSeries[];
  error?: string;
}

/** Rows of every series of the first result as objects (tags merged in). */
export function rows(results: InfluxResult[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const s of results[0]?.series ?? []) {
    for (const v of s.values ?? []) {
      const row: Record<string, unknown> = { ...(s.tags ?? {}) };
      s.columns.forEach((c, i) => (row[c] = v[i]));
      out.push(row);
    }
  }
  return out;
}

/** Quote an InfluxQL identifier. */
export const ident = (s: string) => '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
/** Quote an InfluxQL string literal. */
export const literal = (s: string) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
