// V8 heap settings for the long-running parts. A polling round makes a lot
// of short-lived garbage (BER buffers, varbinds, line protocol); on a machine
// with much RAM, V8 sizes its young generation by the RAM. Measured with
// bench/poll at 1,000 devices: RSS 280–380 MB with the defaults, 192–196 MB
// with an 8 MB semi-space, for about 10% more CPU (young-generation
// collections are more frequent).
//
// There is no cap on the old space: with --max-old-space-size=160 a larger
// inventory, a long InfluxDB outage or a burst of traffic did not slow the
// collector down, it killed it (a fatal V8 out-of-memory). What bounds memory
// is the code (spool on disk, bounded queues); the heap may grow with the load.
export const COLLECTOR_V8_FLAGS = ['--max-semi-space-size=8'];
/**
 * The archive part: records wait in memory for their fsync (200 ms of a
 * 300,000 flows/s burst is 60,000 records) and a larger young generation
 * lets most of them die young.
 */
export const ARCHIVE_V8_FLAGS = ['--max-semi-space-size=16'];
/** Earlier names, for the in-process tools (sim/demo.ts, bench/poll). */
/** The API part: small requests, no big young generation needed. */
export const API_V8_FLAGS = ['--max-semi-space-size=8'];
export const SERVICE_V8_FLAGS = COLLECTOR_V8_FLAGS;
export const TRAFFIC_V8_FLAGS = ARCHIVE_V8_FLAGS;

const HEAP_FLAG = /^--max-(old|semi)-space-size(=|$)/;

/** The execArgv of a forked part: this process's own (minus heap sizes) and the part's flags. */
export function childExecArgv(flags: readonly string[], parent: readonly string[] = process.execArgv): string[] {
  return [...parent.filter((f) => !HEAP_FLAG.test(f)), ...flags];
}

/**
 * Re-executes this process with the given V8 flags unless it already has
 * them (process.execve replaces the process image: same pid, no wrapper).
 * Only for tools that run everything in one process (sim/demo.ts,
 * bench/poll); `klaiwatch run` forks its parts with the flags instead
 * (bin/supervisor.ts). On Node versions without process.execve, it runs on
 * with V8's defaults.
 */
export function execWithServiceFlags(flags: readonly string[] = SERVICE_V8_FLAGS): void {
  if (flags.every((f) => process.execArgv.includes(f))) return;
  const execve = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function') return;
  execve(process.execPath, [process.execPath, ...childExecArgv(flags), ...process.argv.slice(1)], process.env);
}
