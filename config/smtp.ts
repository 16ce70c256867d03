// What the `mail.smtp` settings mean to nodemailer: one reading for the
// collector's outbox and the archive's anchor mail (each loads nodemailer
// itself, only where mail is configured).

export interface SmtpSettings {
  host: string;
  port: number;
  security: 'starttls' | 'tls' | 'none';
  username?: string | undefined;
  timeout: number;
}

/** nodemailer.createTransport's options for these settings and the password (when a username is set). */
export function smtpTransportOptions(s: SmtpSettings, password: string | undefined) {
  return {
    host: s.host,
    port: s.port,
    secure: s.security === 'tls',
    requireTLS: s.security === 'starttls',
    ignoreTLS: s.security === 'none',
    connectionTimeout: s.timeout,
    greetingTimeout: s.timeout,
    socketTimeout: s.timeout,
    ...(s.username ? { auth: { user: s.username, pass: password ?? '' } } : {}),
  };
}
