// pino, with the redaction declared once: whatever object a log call is
// given, these keys print as [redacted]. Secrets also print as <secret> on
// their own (config/secret.ts); this is the second lock on the same door.
import pino, { type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'community',
  'password',
  'token',
  'authKey',
  'privKey',
  'auth_key',
  'priv_key',
  '*.community',
  '*.password',
  '*.token',
  '*.authKey',
  '*.privKey',
  '*.auth_key',
  '*.priv_key',
  '*.*.community',
  '*.*.password',
  '*.*.token',
  'headers.authorization',
  'req.headers.authorization',
  // The API's tokens: in the Authorization header, in the auditor pages' session cookie, in a login form's body.
  'headers.cookie',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'req.body.token',
];

export function createLogger(level: string, dest?: DestinationStream): Logger {
  return pino({ level, base: { app: 'klaiwatch' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime }, dest ?? pino.destination(2));
}

export type { Logger };
