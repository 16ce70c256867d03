// A mail catcher: a real SMTP server (npm smtp-server) on loopback that
// parses every message klaiwatch sends (mailparser), optionally keeps it as
// an .eml file, and can be stopped and started again on the same port. The
// demo shows what it catches; the tests read it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface MailCatcher {
  port: number;
  received: ParsedMail[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startMailCatcher(opts: { dir?: string; port?: number; onMail?: (mail: ParsedMail, file?: string) => void } = {}): Promise<MailCatcher> {
  if (opts.dir) mkdirSync(opts.dir, { recursive: true });
  let n = 0;
  let server: SMTPServer;
  const self: MailCatcher = {
    port: opts.port ?? 0,
    received: [],
    async start() {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS', 'AUTH'],
        logger: false,
        onData(stream, _session, callback) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            const raw = Buffer.concat(chunks);
            let file: string | undefined;
            if (opts.dir) {
              file = join(opts.dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${++n}.eml`);
              writeFileSync(file, raw);
            }
            simpleParser(raw)
              .then((mail) => {
                self.received.push(mail);
                opts.onMail?.(mail, file);
              })
              .then(() => callback(), callback);
          });
        },
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(self.port, '127.0.0.1', () => resolve());
      });
      self.port = (server.server.address() as { port: number }).port;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  await self.start();
  return self;
}
