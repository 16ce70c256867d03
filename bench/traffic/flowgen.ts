// A NetFlow v5 exporter for the benchmark: the flows of flows.ts, each
// school from its own loopback address (127.60.0.1 + school), at a set
// rate. Prints the flows it sent.
// Usage: node bench/traffic/flowgen.ts PORT RATE_FLOWS_PER_S SECONDS [SEED]
import { createSocket, type Socket } from 'node:dgram';
import { flowSource, PER, SCHOOLS } from './flows.ts';

const [portArg, rateArg, secondsArg, seedArg] = process.argv.slice(2);
const port = Number(portArg);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const host = '127.0.0.1';
const source = flowSource(seedArg ?? '2569');

const sockets: Socket[] = [];
for (let s = 0; s < SCHOOLS; s++) {
  const sock = createSocket('udp4');
  sock.bind(0, `127.60.0.${1 + s}`);
  sockets.push(sock);
}
await new Promise((r) => setTimeout(r, 200));

let sent = 0;
const t0 = Date.now();
const total = rate * seconds;
let school = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * rate));
  const batch: Promise<void>[] = [];
  while (sent + PER <= due) {
    const s = school++ % SCHOOLS;
    batch.push(new Promise((res) => sockets[s]!.send(source.datagram(s, Date.now()), port, host, () => res())));
    sent += PER;
  }
  if (batch.length > 0) await Promise.all(batch);
  else await new Promise((r) => setTimeout(r, 1));
  if (due >= total && sent + PER > total) break;
}
for (const s of sockets) s.close();
console.log(JSON.stringify({ sent, seconds: (Date.now() - t0) / 1000 }));
