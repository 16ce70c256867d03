// What the settings ask of this machine, checked before a service starts (and
// by `klaiwatch check-config`): every folder and file the settings name can be
// created, written or read, and every listen address is free. Each problem
// names the setting, its value and the reason, so that `run` never fails
// halfway with an errno and a stack after InfluxDB was already touched.
//
// The work is bounded: paths are judged by the nearest folder that exists
// (never by creating them), kernel filesystems (/proc, /sys, /dev) are
// refused before anything is written there, and every bind has a timeout.
import { accessSync, closeSync, constants, lstatSync, openSync, realpathSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { dirname, resolve, sep } from 'node:path';
import type { Config, Problem } from './load.ts';

/** Plain words for the errno codes an operator meets (Node prints only the code). */
const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder',
  EEXIST: 'already exists',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files (raise LimitNOFILE / ulimit -n)',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EADDRINUSE: 'the address is in use by another program',
  EADDRNOTAVAIL: 'this machine has no such address',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the peer',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved now (DNS)',
};

/** "permission denied (EACCES)", or the code alone when it has no words here. */
export function describeErrno(code: string | undefined): string {
  if (!code) return 'failed';
  const words = ERRNO_WORDS[code];
  return words ? `${words} (${code})` : code;
}

/**
 * One plain line for an error from Node's fs, net or dgram: the operation,
 * its path or address, and the reason in words. Undefined for an error that
 * is not such an error (a bug: the caller keeps its stack).
 */
export function describeSystemError(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || !/^E[A-Z0-9_]+$/.test(e.code) || e.code.startsWith('ERR_')) return undefined;
  const what = e.path ?? (e.address !== undefined ? `${e.address}${e.port !== undefined ? `:${e.port}` : ''}` : undefined);
  return `${e.syscall ? `${e.syscall} ` : ''}${what ?? ''}${e.syscall || what ? ': ' : ''}${describeErrno(e.code)}`;
}

/** Kernel filesystems: nothing of ours is written there, and a write may hang or spin. */
const SPECIAL_ROOTS = ['/proc', '/sys', '/dev'];
const SPECIAL_FS_TYPES = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
]);

interface PathCheck {
  setting: string;
  value: string;
  kind: 'folder' | 'file-to-write' | 'file-to-read';
}

export interface PreflightOptions {
  /** Check that the listen addresses are free (default true). */
  listen?: boolean;
  /**
   * Who serves HTTP: 'api' (`klaiwatch run` and `klaiwatch api`: api.listen,
   * or http.listen when it is not set) or 'collector' (`klaiwatch collector`
   * alone: its /healthz on http.listen). Default 'api'.
   */
  http?: 'api' | 'collector';
  /** Check the traffic receivers' listen addresses too (default true); `klaiwatch api` alone binds none of them. */
  receivers?: boolean;
  /** Each bind gives up after this (a host name that takes long to resolve). */
  bindTimeoutMs?: number;
}

/**
 * Problems with what the settings ask of this machine, each naming the
 * setting, its value and the reason; an empty list when all is well. The
 * service start paths call it before touching InfluxDB or any port.
 */
export async function preflight(config: Config, opts: PreflightOptions = {}): Promise<Problem[]> {
  const s = config.settings;
  const base = dirname(config.file);
  const checks: PathCheck[] = [
    { setting: 'spool.dir', value: s.spool.dir, kind: 'folder' },
    { setting: 'alerts.state_db', value: s.alerts.state_db, kind: 'file-to-write' },
  ];
  const api = (opts.http ?? 'api') === 'api';
  if (api) {
    checks.push({ setting: 'api.tokens_db', value: s.api.tokens_db, kind: 'file-to-write' });
    if (s.api.tls) checks.push({ setting: 'api.tls.cert', value: s.api.tls.cert, kind: 'file-to-read' }, { setting: 'api.tls.key', value: s.api.tls.key, kind: 'file-to-read' });
  }
  const t = s.traffic;
  if (t) {
    checks.push({ setting: 'traffic.dir', value: t.dir, kind: 'folder' }, { setting: 'traffic.signing_key', value: t.signing_key, kind: 'file-to-read' });
    const tls = t.syslog.tls;
    if (tls) {
      checks.push({ setting: 'traffic.syslog.tls.cert', value: tls.cert, kind: 'file-to-read' }, { setting: 'traffic.syslog.tls.key', value: tls.key, kind: 'file-to-read' });
      if (tls.ca) checks.push({ setting: 'traffic.syslog.tls.ca', value: tls.ca, kind: 'file-to-read' });
    }
  }
  const problems: Problem[] = [];
  const problem = (setting: string, value: string, message: string) => problems.push({ file: config.file, path: setting, message: `${JSON.stringify(value)} ${message}` });
  for (const c of checks) {
    const reason = checkPath(resolve(base, c.value), c.kind);
    if (reason) problem(c.setting, c.value, reason);
  }

  if (opts.listen !== false) {
    const listeners: { setting: string; value: string; proto: 'tcp' | 'udp' }[] = [
      api && s.api.listen !== undefined ? { setting: 'api.listen', value: s.api.listen, proto: 'tcp' } : { setting: 'http.listen', value: s.http.listen, proto: 'tcp' },
    ];
    const r = opts.receivers !== false;
    if (r && t?.syslog.udp) listeners.push({ setting: 'traffic.syslog.udp', value: t.syslog.udp, proto: 'udp' });
    if (r && t?.syslog.tcp) listeners.push({ setting: 'traffic.syslog.tcp', value: t.syslog.tcp, proto: 'tcp' });
    if (r && t?.syslog.tls) listeners.push({ setting: 'traffic.syslog.tls.listen', value: t.syslog.tls.listen, proto: 'tcp' });
    if (r && t?.flow.udp) listeners.push({ setting: 'traffic.flow.udp', value: t.flow.udp, proto: 'udp' });
    const taken: { setting: string; host: string; port: number; proto: string }[] = [];
    for (const l of listeners) {
      const { host, port } = splitListen(l.value);
      const clash = port === 0 ? undefined : taken.find((o) => o.proto === l.proto && o.port === port && (o.host === host || isWildcard(o.host) || isWildcard(host)));
      if (clash) {
        problem(l.setting, l.value, `is the same ${l.proto.toUpperCase()} port as ${clash.setting}: give each listener its own`);
        continue;
      }
      taken.push({ setting: l.setting, host, port, proto: l.proto });
      const code = await tryBind(l.proto, host, port, opts.bindTimeoutMs ?? 3000);
      if (code) problem(l.setting, l.value, `cannot be listened on (${l.proto.toUpperCase()}): ${bindReason(code, host, port)}`);
    }
  }
  return problems;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export function bindReason(code: string, host: string, port: number): string {
  if (code === 'EADDRINUSE') return `${describeErrno(code)}; \`ss -lntup 'sport = :${port}'\` shows which, or choose another port`;
  if (code === 'EACCES' && port < 1024) return `${describeErrno(code)}: port ${port} is below 1024, which needs root or CAP_NET_BIND_SERVICE (AmbientCapabilities= in the systemd unit)`;
  if (code === 'EADDRNOTAVAIL') return `${describeErrno(code)}: ${host} is not an address of this machine (0.0.0.0 listens on all of them)`;
  if (code === 'TIMEOUT') return `no answer within the time allowed (does the host name ${host} resolve?)`;
  return describeErrno(code);
}

/** Binds and closes at once; the errno code when that fails. */
export function tryBind(proto: 'tcp' | 'udp', host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((done) => {
    let finished = false;
    const finish = (code: string | undefined, close: () => void) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try {
        close();
      } catch {
        // already closed
      }
      done(code);
    };
    let close: () => void = () => {};
    const timer = setTimeout(() => finish('TIMEOUT', close), timeoutMs);
    if (proto === 'tcp') {
      const server = createServer();
      close = () => server.close();
      server.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'failed', () => {}));
      server.listen({ port, host, exclusive: true }, () => server.close(() => finish(undefined, () => {})));
    } else {
      const sock = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      close = () => sock.close();
      sock.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'failed', close));
      sock.bind({ port, address: host, exclusive: true }, () => finish(undefined, close));
    }
  });
}

/** A path given on the command line that cannot be written: the message names the option, its value and the reason. */
export class OutputPathError extends Error {}

/**
 * Checks a path a command was given to write (`--out`) the way the settings'
 * paths are checked, before anything is written: a folder to create or write
 * in, or a file to write. Throws OutputPathError with one plain line such as
 * `--out "/proc/x" is on /proc, a kernel filesystem, not a disk: ...` (a
 * recursive mkdir under /proc spins forever instead of failing).
 */
export function checkOutputPath(option: string, value: string, kind: 'folder' | 'file-to-write'): void {
  const reason = checkPath(resolve(value), kind, 'choose a path on a disk');
  if (reason) throw new OutputPathError(`${option} ${JSON.stringify(value)} ${reason}`);
}

/** Why the path cannot be used as `kind`, or undefined when it can. Bounded: a walk up the path, one small file written and removed. */
function checkPath(path: string, kind: PathCheck['kind'], advice = 'choose a folder such as /var/lib/klaiwatch'): string | undefined {
  // The nearest part of the path that exists (a fresh machine has no data/ yet).
  let existing = path;
  let st: ReturnType<typeof lstatSync> | undefined;
  for (let i = 0; i < 4096; i++) {
    try {
      st = lstatSync(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a file where a folder should be; the walk up finds it and says so.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `cannot be used: ${existing}: ${describeErrno(code)}`;
      const up = dirname(existing);
      if (up === existing) return `cannot be used: no part of it exists`;
      existing = up;
    }
  }
  if (!st) return 'cannot be used: the path is too deep';
  let real: string;
  try {
    real = realpathSync(existing);
    st = statSync(real);
  } catch (err) {
    return `cannot be used: ${existing}: ${describeErrno((err as NodeJS.ErrnoException).code)}`;
  }
  const special = SPECIAL_ROOTS.find((r) => real === r || real.startsWith(r + sep)) ?? specialFsType(real);
  if (special) return `is on ${special}, a kernel filesystem, not a disk: ${advice}`;
  const exists = existing === path;

  if (kind === 'file-to-read') {
    if (!exists) return 'does not exist';
    if (!st.isFile()) return `is ${st.isDirectory() ? 'a folder' : 'not a regular file'}; a file is expected`;
    try {
      accessSync(real, constants.R_OK);
    } catch (err) {
      return `cannot be read: ${describeErrno((err as NodeJS.ErrnoException).code)}`;
    }
    return undefined;
  }
  if (kind === 'file-to-write' && exists) {
    if (!st.isFile()) return `is ${st.isDirectory() ? 'a folder' : 'not a regular file'}; a file is expected`;
    try {
      accessSync(real, constants.R_OK | constants.W_OK);
    } catch (err) {
      return `cannot be written: ${describeErrno((err as NodeJS.ErrnoException).code)}`;
    }
    return undefined;
  }
  // A folder to write in: the folder itself when it exists, else the nearest one that does (where it will be created).
  const folderExists = kind === 'folder' && exists;
  if (!st.isDirectory()) return folderExists ? 'is a file, not a folder' : `cannot be created: ${existing} is a file, not a folder`;
  const verb = folderExists || (kind === 'file-to-write' && existing === dirname(path)) ? 'cannot be written' : `cannot be created in ${existing}`;
  try {
    accessSync(real, constants.W_OK | constants.X_OK);
    // access() says nothing of a full disk or some read-only mounts: write a byte and remove it.
    const probe = resolve(real, `.klaiwatch-preflight-${process.pid}`);
    const fd = openSync(probe, 'wx');
    try {
      writeSync(fd, 'x');
    } finally {
      closeSync(fd);
      unlinkSync(probe);
    }
  } catch (err) {
    return `${verb}: ${describeErrno((err as NodeJS.ErrnoException).code)}`;
  }
  return undefined;
}

function specialFsType(path: string): string | undefined {
  try {
    return SPECIAL_FS_TYPES.get(Number(statfsSync(path).type));
  } catch {
    return undefined;
  }
}
