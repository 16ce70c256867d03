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
 * Re-executes this process with SERVICE_V8_FLAGS unless it already has them
 * (process.execve replaces the process image: same pid, no wrapper). On Node
 * versions without process.execve (22), it runs on with V8's defaults.
 */
export function execWithServiceFlags(): void {
  if (SERVICE_V8_FLAGS.every((f) => process.execArgv.includes(f))) return;
  const execve = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function') return;
  execve(process.execPath, [process.execPath, ...SERVICE_V8_FLAGS, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
