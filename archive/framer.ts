// Syslog over a byte stream (TCP, TLS): RFC 6587 octet counting and
// newline framing, decided per message.
//
// How the receive loop uses it (one framer per connection):
//
//   const framer = new SyslogFramer(max_message);
//   socket 'data': framer.frames(chunk, sink);
//   socket 'end':  framer.finish(sink) (a last message without its newline).
//   sink(buf, start, end, flags): one message, the bytes buf[start, end):
//                  a range of the chunk itself when the message lies inside
//                  it (no copy), a joined copy only when it came in several
//                  chunks; valid until the sink returns (copy what is kept).
//                  flags: record.ts FLAG_CUT for a message cut at
//                  max_message, else 0 (parseLogLine's third argument).
//   counters:      framer.truncated (messages cut at max_message),
//                  framer.discarded (bytes dropped after such a cut), and
//                  framer.malformed (a counted frame the connection closed
//                  inside: what had come is still returned); the caller adds
//                  them to its statistics and sets them back to 0.
//
// push(chunk) and end() are the same as text: they return the messages as
// strings and set `flags`, a new array on each call parallel to what they
// returned (read it before the next push()).
//
// The framing rules:
//   - a frame starting with "LEN " (1 to 9 digits, no leading zero) followed
//     by "<" (a priority) is octet-counted: the next LEN bytes, whatever they
//     hold (newlines too), are the message;
//   - "LEN " followed by anything else is octet-counted too when it looks
//     like a frame: no newline in those LEN bytes, and after them the data
//     ends (so far), or a newline, CR, NUL, "<", or digits then a space (the
//     next count) follows; otherwise (and when LEN > max_message) it is a
//     line that starts with a number ("2026 is a year" is a line);
//   - anything else is a line, ended by a newline (a CR before it removed)
//     or a NUL; empty lines are skipped;
//   - a message longer than max_message becomes ONE message of its first
//     max_message bytes, flagged FLAG_CUT; the rest of it (up to its newline,
//     or the rest of its count) is dropped and counted in `discarded`.
// Memory: at most max_message + 10 bytes are held between chunks (a count
// being checked); the chunks are not joined until a message is complete, so
// a sender trickling a byte at a time costs linear time, not quadratic.
import { FLAG_CUT } from './record.ts';

const START = 0;
/** Digits of a count. */
const HEAD = 1;
/** The space after a count seen: the next byte decides. */
const AFTER_SP = 2;
/** A count without a priority, being checked (no newline in it, a frame after it). */
const PROBE = 3;
const COUNTED = 4;
const LINE = 5;
/** The rest of a line cut at max_message, up to its newline. */
const DISCARD = 6;
/** The rest of a counted message cut at max_message. */
const SKIP = 7;

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const SP = 0x20;
const LT = 0x3c;

/** Receives one message: the bytes buf[start, end) (valid only during the call) and its flags (FLAG_CUT or 0). */
export type FrameSink = (buf: Buffer, start: number, end: number, flags: number) => void;

/** Split a TCP stream into syslog messages: octet counting ("LEN MSG") or newline framing, decided per message (RFC 6587). */
export class SyslogFramer {
  /** Messages cut at max_message. */
  truncated = 0;
  /** Counted frames the stream ended inside. */
  malformed = 0;
  /** Bytes dropped: the rest of messages cut at max_message. */
  discarded = 0;
  /** Flags (FLAG_CUT or 0) of the messages the last push() or end() returned, in their order. */
  flags: number[] = [];
  private readonly max: number;
  private state = START;
  /** Bytes of the current frame from earlier chunks (copies), and their total. */
  private parts: Buffer[] = [];
  private held = 0;
  /** The count being read, its digits, and (after its space) the header's length in bytes. */
  private count = 0;
  private digits = 0;
  private hdr = 0;
  /** COUNTED: the bytes of the message to keep (at most max). SKIP: the bytes still to drop. */
  private take = 0;
  private skip = 0;

  constructor(maxMessage: number) {
    this.max = maxMessage;
  }

  /** Bytes held between chunks (at most max_message + 10). */
  get buffered(): number {
    return this.held;
  }

  /** The messages of `chunk`, as text; `flags` holds theirs. */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    const flags: number[] = [];
    this.flags = flags;
    this.frames(chunk, (buf, start, end, f) => {
      out.push(buf.toString('utf8', start, end));
      flags.push(f);
    });
    return out;
  }

  /** What is left when the connection closes, as text (see finish()); `flags` holds theirs. */
  end(): string[] {
    const out: string[] = [];
    const flags: number[] = [];
    this.flags = flags;
    this.finish((buf, start, end, f) => {
      out.push(buf.toString('utf8', start, end));
      flags.push(f);
    });
    return out;
  }

  /** Hands each message complete in `chunk` to `sink` as a byte range, in order; keeps the start of an unfinished one. */
  frames(chunk: Buffer, sink: FrameSink): void {
    const n = chunk.length;
    const max = this.max;
    let i = 0;
    // Where the current frame starts in this chunk (0: it began in an earlier one).
    let fs = 0;
    // The next newline and NUL at or after some point (-1: none), each searched for once per stretch.
    let nl = -2;
    let nul = -2;
    while (i < n) {
      switch (this.state) {
        case START: {
          const c = chunk[i]!;
          if (c === LF || c === CR || c === NUL) {
            i++;
            break;
          }
          fs = i;
          if (c >= 0x31 && c <= 0x39) {
            this.state = HEAD;
            this.count = 0;
            this.digits = 0;
          } else this.state = LINE;
          break;
        }
        case HEAD: {
          let c = chunk[i]!;
          while (c >= 0x30 && c <= 0x39 && this.digits < 9) {
            this.count = this.count * 10 + (c - 0x30);
            this.digits++;
            if (++i === n) break;
            c = chunk[i]!;
          }
          if (i === n) break;
          if (c === SP) {
            i++;
            this.hdr = this.held + (i - fs);
            this.state = AFTER_SP;
          } else this.state = LINE; // a line that starts with digits
          break;
        }
        case AFTER_SP: {
          if (chunk[i] === LT) {
            // The header is not part of the message.
            this.parts = [];
            this.held = 0;
            fs = i;
            this.take = Math.min(this.count, max);
            this.state = COUNTED;
          } else this.state = this.count > max ? LINE : PROBE;
          break;
        }
        case PROBE: {
          const need = this.count - (this.held + (i - fs) - this.hdr);
          if (nl !== -1 && nl < i) nl = chunk.indexOf(LF, i);
          const r = i + need;
          if (nl >= 0 && nl < r) {
            // A newline inside the count: a line after all.
            this.state = LINE;
            break;
          }
          if (r > n) {
            i = n;
            break;
          }
          if (r === n || frameFollows(chunk, r)) {
            this.state = START;
            this.emit(chunk, fs, r, this.hdr, false, 0, sink);
            i = r;
          } else this.state = LINE;
          break;
        }
        case COUNTED: {
          const k = Math.min(this.take - this.held - (i - fs), n - i);
          i += k;
          if (this.held + (i - fs) < this.take) break;
          if (this.count > max) {
            this.truncated++;
            this.skip = this.count - max;
            this.state = SKIP;
            this.emit(chunk, fs, i, 0, false, FLAG_CUT, sink);
          } else {
            this.state = START;
            this.emit(chunk, fs, i, 0, false, 0, sink);
          }
          break;
        }
        case LINE: {
          if (nl !== -1 && nl < i) nl = chunk.indexOf(LF, i);
          if (nul !== -1 && nul < i) nul = chunk.indexOf(NUL, i);
          const t = nl < 0 ? nul : nul < 0 ? nl : Math.min(nl, nul);
          const end = t < 0 ? n : t;
          let len = this.held + (end - fs);
          if (t >= 0 && len > 0 && (end > fs ? chunk[end - 1] : this.lastHeld()) === CR) len--;
          if (len > max) {
            // One message of its first max bytes; the rest dropped up to the line's end.
            this.discarded += this.held + (end - fs) - max;
            this.truncated++;
            this.state = t < 0 ? DISCARD : START;
            this.emit(chunk, fs, fs + (max - this.held), 0, false, FLAG_CUT, sink);
            i = t < 0 ? n : t + 1;
            break;
          }
          if (t < 0) {
            i = n;
            break;
          }
          this.state = START;
          if (len > 0) this.emit(chunk, fs, end, 0, true, 0, sink);
          else {
            this.parts = [];
            this.held = 0;
          }
          i = t + 1;
          break;
        }
        case DISCARD: {
          if (nl !== -1 && nl < i) nl = chunk.indexOf(LF, i);
          if (nul !== -1 && nul < i) nul = chunk.indexOf(NUL, i);
          const t = nl < 0 ? nul : nul < 0 ? nl : Math.min(nl, nul);
          this.discarded += (t < 0 ? n : t) - i;
          if (t < 0) i = n;
          else {
            i = t + 1;
            this.state = START;
          }
          break;
        }
        case SKIP: {
          const k = Math.min(this.skip, n - i);
          this.skip -= k;
          this.discarded += k;
          i += k;
          if (this.skip === 0) this.state = START;
          break;
        }
      }
    }
    // A frame not complete yet: its bytes in this chunk are kept (copied: the chunk itself is not held on to).
    if (this.state !== START && this.state !== DISCARD && this.state !== SKIP && fs < n) {
      this.parts.push(fs === 0 ? chunk : Buffer.from(chunk.subarray(fs, n)));
      this.held += n - fs;
    }
  }

  /** What is left when the connection closes, to `sink`: a last message without its newline (a count the stream ended inside is counted malformed, and what came of it handed on). */
  finish(sink: FrameSink): void {
    let rest: Buffer | null = null;
    if (this.held > 0 && this.state !== START && this.state !== DISCARD && this.state !== SKIP) {
      rest = Buffer.concat(this.parts, this.held);
      if (this.state === COUNTED) this.malformed++;
    }
    this.parts = [];
    this.held = 0;
    this.state = START;
    if (!rest) return;
    let e = rest.length;
    if (rest[e - 1] === CR) e--;
    if (e > 0) sink(rest, 0, e, 0);
  }

  /**
   * The frame's bytes from earlier chunks and chunk[fs, end), less its first
   * `skip` bytes (and a last CR when `trimCR`), to the sink: the chunk's own
   * range when nothing is held, else one joined copy; the held bytes are
   * released.
   */
  private emit(chunk: Buffer, fs: number, end: number, skip: number, trimCR: boolean, flags: number, sink: FrameSink): void {
    let buf = chunk;
    let s = fs + skip;
    let e = end;
    if (this.held > 0) {
      // `end` may fall before `fs` (a cut inside what is held): the total says where the message ends.
      const total = this.held + (end - fs);
      if (end > fs) this.parts.push(chunk.subarray(fs, end));
      buf = Buffer.concat(this.parts, total);
      this.parts = [];
      this.held = 0;
      s = skip;
      e = total;
    }
    if (trimCR && e > s && buf[e - 1] === CR) e--;
    sink(buf, s, e, flags);
  }

  private lastHeld(): number {
    const p = this.parts[this.parts.length - 1];
    return p ? p[p.length - 1]! : -1;
  }
}

/** After a count without a priority: the data at r looks like the start of a frame (a newline, CR, NUL, "<", or digits and a space; the chunk ending counts as yes). */
function frameFollows(chunk: Buffer, r: number): boolean {
  const c = chunk[r]!;
  if (c === LF || c === CR || c === NUL || c === LT) return true;
  if (c < 0x31 || c > 0x39) return false;
  for (let k = r + 1; k <= r + 9; k++) {
    if (k >= chunk.length) return true;
    const d = chunk[k]!;
    if (d === SP) return true;
    if (d < 0x30 || d > 0x39) return false;
  }
  return false;
}
