// Syslog over a byte stream (TCP, TLS): RFC 6587 octet counting and
// newline framing, decided per message.

/** Split a TCP stream into syslog messages: octet counting ("LEN MSG") or newline framing, decided per message (RFC 6587). */
export class SyslogFramer {
  private buf: Buffer = Buffer.alloc(0);
  private readonly max: number;
  truncated = 0;
  malformed = 0;

  constructor(maxMessage: number) {
    this.max = maxMessage;
  }

  push(chunk: Buffer): string[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    for (;;) {
      if (this.buf.length === 0) break;
      const c = this.buf[0]!;
      if (c >= 0x31 && c <= 0x39) {
        // Octet counting: digits, a space, then exactly that many bytes of a
        // syslog message, which begins with its priority ("<"). A line that
        // merely starts with a number ("2026-03-18T..." or "2026 is ...") is
        // newline-framed.
        const sp = this.buf.indexOf(0x20);
        if (sp < 0 || sp + 1 >= this.buf.length) {
          if (this.buf.length > 10 && sp < 0) this.lineFramed(out);
          break;
        }
        const digits = this.buf.toString('latin1', 0, sp);
        if (!/^\d{1,9}$/.test(digits) || this.buf[sp + 1] !== 0x3c) {
          // Not a count after all: a newline-framed message that starts with a digit.
          if (!this.lineFramed(out)) break;
          continue;
        }
        const len = Number(digits);
        if (sp + 1 + len > this.buf.length) {
          if (len > this.max * 4) {
            this.malformed++;
            this.buf = Buffer.alloc(0);
          }
          break;
        }
        let msg = this.buf.subarray(sp + 1, sp + 1 + len);
        if (msg.length > this.max) {
          msg = msg.subarray(0, this.max);
          this.truncated++;
        }
        out.push(msg.toString('utf8'));
        this.buf = this.buf.subarray(sp + 1 + len);
      } else if (c === 0x0a || c === 0x0d || c === 0x00) {
        this.buf = this.buf.subarray(1);
      } else if (!this.lineFramed(out)) break;
    }
    return out;
  }

  /** One newline-terminated message, or false when the line is not complete yet. */
  private lineFramed(out: string[]): boolean {
    let nl = this.buf.indexOf(0x0a);
    // A NUL also ends a message (some senders use it); looked for only before the newline, so a chunk is scanned once.
    const nul = (nl < 0 ? this.buf : this.buf.subarray(0, nl)).indexOf(0x00);
    if (nul >= 0) nl = nul;
    if (nl < 0) {
      if (this.buf.length > this.max) {
        out.push(this.buf.subarray(0, this.max).toString('utf8'));
        this.truncated++;
        this.buf = Buffer.alloc(0);
        return true;
      }
      return false;
    }
    let line = this.buf.subarray(0, nl);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    if (line.length > this.max) {
      line = line.subarray(0, this.max);
      this.truncated++;
    }
    if (line.length > 0) out.push(line.toString('utf8'));
    this.buf = this.buf.subarray(nl + 1);
    return true;
  }

  /** What is left when the connection closes: a last message without its newline. */
  end(): string[] {
    const rest = this.buf.toString('utf8').trim();
    this.buf = Buffer.alloc(0);
    return rest ? [rest] : [];
  }
}
