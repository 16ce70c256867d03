// A real SMTP server (npm smtp-server) on loopback that keeps what it
// receives, parsed by mailparser; it can be stopped and started again on
// the same port.
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface TestSmtp {
  port: number;
  received: ParsedMail[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startTestSmtp(port = 0): Promise<TestSmtp> {
  const received: ParsedMail[] = [];
  let server: SMTPServer;
  const self: TestSmtp = {
    port,
    received,
    async start() {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS', 'AUTH'],
        logger: false,
        onData(stream, _session, callback) {
          simpleParser(stream)
            .then((mail) => {
              received.push(mail);
              callback();
            })
            .catch(callback);
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
