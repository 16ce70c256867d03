// Which Node.js can run klaiwatch, decided before any TypeScript is loaded
// (Node older than 22 cannot even read a .ts file: it would stop with
// ERR_UNKNOWN_FILE_EXTENSION and a stack). Plain JavaScript of the oldest
// kind on purpose: this file must parse on the Node it turns away.

var SETUP = 'run `bash scripts/bootstrap.sh` in the klaiwatch folder once: it puts Node 24 into .tools/node, which ./klaiwatch uses';

/**
 * What this Node needs to run klaiwatch: { ok: true, flags } (flags for the
 * Node that strips TypeScript types only when asked), or { ok: false,
 * message } with one plain line for the operator.
 */
export function nodeSupport(version) {
  var m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(String(version));
  if (!m) return { ok: false, message: 'klaiwatch: cannot tell the Node.js version from ' + JSON.stringify(String(version)) + '; ' + SETUP };
  var major = Number(m[1]);
  var minor = Number(m[2]);
  if (major < 22 || (major === 22 && minor < 12)) {
    return { ok: false, message: 'klaiwatch needs Node.js 22.12 or newer; this is Node ' + m[0].replace(/^v?/, '') + ': ' + SETUP };
  }
  // Type stripping is on by default from 22.18 and 23.6; before, behind a flag.
  if ((major === 22 && minor < 18) || (major === 23 && minor < 6)) return { ok: true, flags: ['--experimental-strip-types', '--disable-warning=ExperimentalWarning'] };
  return { ok: true, flags: [] };
}
