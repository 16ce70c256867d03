// A secret (SNMP community, v3 key, InfluxDB password or token) that prints as
// `<secret>` everywhere: in logs, in JSON, in `util.inspect`, in error text.
// Only `reveal()` gives the value, and only the code that talks to the peer
// calls it.
import { inspect } from 'node:util';

const values = new WeakMap<Secret, string>();

export class Secret {
  readonly source: string;

  constructor(value: string, source = 'inline') {
    values.set(this, value);
    this.source = source;
  }

  reveal(): string {
    return values.get(this) ?? '';
  }

  toString(): string {
    return '<secret>';
  }

  toJSON(): string {
    return '<secret>';
  }

  [inspect.custom](): string {
    return '<secret>';
  }
}
