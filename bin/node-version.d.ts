/** Types for bin/node-version.js (plain JavaScript: it must parse on the old Node it turns away). */
export type NodeSupport = { ok: true; flags: string[] } | { ok: false; message: string };
export function nodeSupport(version: string): NodeSupport;
