// V8 heap settings for the long-running collector. A polling round makes a
// lot of short-lived garbage (BER buffers, varbinds, line protocol); on a
// machine with much RAM, V8 sizes its young generation by the RAM and lets
// the heap grow to ~190 MB before collecting. Measured with bench/poll at
// 1,000 devices: RSS 280–380 MB with the defaults, 192–196 MB with these
// (203 MB with alerting on), for about 10% more CPU (young-generation
// collections are more frequent). A 4 MB semi-space saves 8 MB more for 40%
// more CPU: not worth it.
export const SERVICE_V8_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=160'];
/**
 * With the traffic archive on, records wait in memory for their fsync
 * (200 ms of a 300,000 flows/s burst is 60,000 records) and a seal works
 * through millions of rows: the old space may grow to 1 GB.
 */
export const TRAFFIC_V8_FLAGS = ['--max-semi-space-size=16', '--max-old-space-size=1024'];

/**
 * Re-executes this process with the given V8 flags unless it already has
 * them (process.execve replaces the process image: same pid, no wrapper). On
 * Node versions without process.execve (22), it runs on with V8's defaults.
 */
export function execWithServiceFlags(flags: readonly string[] = SERVICE_V8_FLAGS): void {
  if (flags.every((f) => process.execArgv.includes(f))) return;
  const execve = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function') return;
  execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
