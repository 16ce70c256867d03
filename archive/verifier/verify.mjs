#!/usr/bin/env node
// Checks a klaiwatch evidence package with the archive's public key alone.
// Node.js 18 or later; nothing else (node:crypto has Ed25519 and SHA-256).
//
//   node verify.mjs --public-key KEY [FOLDER]
//
// KEY: the archive's Ed25519 public key as it was given to you (44
// characters of base64, or a PEM file). FOLDER: the unpacked package (the
// folder this file is in by default). Exit 0: everything checks; 1: a check
// failed (each FAIL line names the file and what is wrong); 2: it could not
// run (a missing argument or file). README-en.md / README-th.md explain.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const fails = [];
const notes = [];
const fail = (where, what) => fails.push(`FAIL ${where}: ${what}`);
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

function usage(msg) {
  console.error(`verify.mjs: ${msg}\nusage: node verify.mjs --public-key KEY [FOLDER]   (KEY: base64 Ed25519 public key, or a PEM file)`);
  process.exit(2);
}

// ------------------------------------------------------------- arguments
const args = process.argv.slice(2);
let keyArg;
let folder;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--public-key') keyArg = args[++i];
  else if (args[i].startsWith('--public-key=')) keyArg = args[i].slice('--public-key='.length);
  else if (args[i] === '--help' || args[i] === '-h') usage('checks an evidence package');
  else if (folder === undefined) folder = args[i];
  else usage(`unexpected argument ${JSON.stringify(args[i])}`);
}
if (!keyArg) usage('--public-key is required: the archive\'s public key as it was given to you, apart from this package (a key taken from the package itself proves nothing)');
const dir = resolve(folder ?? dirname(fileURLToPath(import.meta.url)));

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
let key;
let rawKey;
try {
  if (/^[A-Za-z0-9+/]{43}=$/.test(keyArg.trim())) {
    rawKey = keyArg.trim();
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, Buffer.from(rawKey, 'base64')]), format: 'der', type: 'spki' });
  } else {
    key = createPublicKey(readFileSync(keyArg, 'utf8'));
    if (key.asymmetricKeyType !== 'ed25519') usage(`${keyArg}: a ${key.asymmetricKeyType} key, not Ed25519`);
    rawKey = key.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  }
} catch (err) {
  usage(`--public-key ${keyArg}: neither a base64 Ed25519 public key nor a readable PEM public key file (${err.message})`);
}

function read(name) {
  const p = join(dir, name);
  if (!existsSync(p)) return null;
  return readFileSync(p);
}

function parseJson(name, buf) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    fail(name, `not valid JSON (${err.message}): the file was altered or cut short`);
    return null;
  }
}

// ----------------------------------------------------- statement and key
const stBuf = read('statement.json');
const sigBuf = read('statement.sig');
if (!stBuf) usage(`${join(dir, 'statement.json')} is missing: is ${dir} an unpacked evidence package?`);
let statementSigned = false;
if (!sigBuf) fail('statement.sig', 'missing: the statement is not signed');
else {
  let ok = false;
  try {
    ok = verify(null, createHash('sha256').update(stBuf).digest(), key, Buffer.from(sigBuf.toString('utf8').trim(), 'base64'));
  } catch {
    ok = false;
  }
  if (ok) statementSigned = true;
  else fail('statement.json', 'its signature (statement.sig) is not valid for the public key given: the statement or its signature was altered, or they were made with another key');
}
const st = parseJson('statement.json', stBuf) ?? {};
if (st.archive_public_key !== rawKey) fail('statement.json', `names the archive key ${st.archive_public_key}, not the key given (${rawKey}): this package is not from the archive whose key you were given`);

// ------------------------------------------------------------ every file
const files = st.files && typeof st.files === 'object' ? st.files : {};
if (Object.keys(files).length === 0) fail('statement.json', 'lists no files');
for (const [name, want] of Object.entries(files)) {
  if (name.includes('..') || name.startsWith('/')) {
    fail('statement.json', `lists a file outside the package (${name})`);
    continue;
  }
  const p = join(dir, name);
  if (!existsSync(p)) {
    fail(name, 'missing (the statement lists it)');
    continue;
  }
  const h = createHash('sha256');
  h.update(readFileSync(p));
  const got = h.digest('hex');
  if (got !== want.sha256) fail(name, `altered: its SHA-256 is ${got}, the signed statement says ${want.sha256}`);
}
// Files beside them that the statement does not cover (not part of the evidence).
const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [relative(dir, join(d, n)).split('\\').join('/')]));
for (const n of walk(dir)) if (!(n in files) && n !== 'statement.json' && n !== 'statement.sig') notes.push(`NOTE ${n}: not listed in the statement (not part of the evidence; ignored)`);

// ------------------------------------------------------------ the chain
const entries = new Map();
const manBuf = read('manifest.jsonl');
if (manBuf) {
  const lines = manBuf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
  let prev = null;
  let expect = st.chain?.from_seq;
  lines.forEach((text, i) => {
    const where = `manifest.jsonl line ${i + 1}`;
    let e;
    try {
      e = JSON.parse(text);
    } catch {
      fail(where, 'not valid JSON: the entry was altered');
      prev = null;
      return;
    }
    const { hash, sig, ...rest } = e;
    const at = `${where} (entry ${e.seq}, ${e.type})`;
    if (sha256(JSON.stringify(rest)) !== hash) fail(at, 'its content does not match its hash: the entry was altered');
    else {
      let ok = false;
      try {
        ok = verify(null, Buffer.from(hash, 'hex'), key, Buffer.from(String(sig), 'base64'));
      } catch {
        ok = false;
      }
      if (!ok) fail(at, 'its signature is not valid for the public key given');
    }
    if (e.seq !== expect) fail(at, `expected entry ${expect} here: entries were removed, added or reordered`);
    if (prev !== null && e.prev !== prev) fail(at, 'does not follow the entry before it (its prev is not that entry\'s hash): the chain is broken here');
    prev = hash;
    expect = e.seq + 1;
    entries.set(e.seq, e);
  });
  const head = st.chain?.head;
  const last = lines.length ? entries.get(expect - 1) : null;
  if (!head || !last || last.seq !== head.seq || last.hash !== head.hash) fail('manifest.jsonl', `does not end at the chain head the statement names (${head ? `${head.seq} ${head.hash}` : 'none'})`);
  if (st.archive_public_key) {
    const genesis = entries.get(0);
    if (genesis && genesis.public_key !== rawKey) fail('manifest.jsonl line 1 (entry 0, genesis)', 'names another key than the one given');
  }
} else fail('manifest.jsonl', 'missing');

// --------------------------------------------------- rows and their proofs
const LEAF = Buffer.from([0]);
const node = (l, r) => createHash('sha256').update(Buffer.from([1])).update(l).update(r).digest();
const bytesColumns = new Set(st.row_hash?.bytes_columns ?? []);
const byBytes = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** The row hash of statement.row_hash (version 1): SHA-256(0x00 || canonical bytes). */
function rowHash(row) {
  const parts = [LEAF];
  for (const name of Object.keys(row).sort(byBytes)) {
    const v = row[name];
    if (v === null || v === undefined) continue;
    if (bytesColumns.has(name)) {
      if (typeof v !== 'string') throw new Error(`column ${name}: expected base64 text`);
      const b = Buffer.from(v, 'base64');
      parts.push(Buffer.from(`${name}:b:${b.length}:`), b, Buffer.from('\n'));
    } else if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new Error(`column ${name}: ${v} is not a whole number`);
      parts.push(Buffer.from(`${name}:i:${Number.isSafeInteger(v) ? String(v) : BigInt(v).toString()}\n`));
    } else if (typeof v === 'string') {
      const b = Buffer.from(v, 'utf8');
      parts.push(Buffer.from(`${name}:s:${b.length}:`), b, Buffer.from('\n'));
    } else throw new Error(`column ${name}: a ${typeof v}, not a number or text`);
  }
  return sha256(Buffer.concat(parts));
}

/** RFC 9162 2.1.3.2: does this audit path lead from leaf `index` of a tree of `size` to `root`? */
function inclusionOk(leafHex, index, size, path, root) {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size || !Array.isArray(path)) return false;
  let fn = index;
  let sn = size - 1;
  let r = Buffer.from(leafHex, 'hex');
  for (const p of path) {
    const sib = Buffer.from(String(p), 'hex');
    if (sib.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = node(sib, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else r = node(r, sib);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.toString('hex') === root;
}

const rowsBuf = read('rows.json');
const proofsBuf = read('proofs.json');
const rows = rowsBuf ? parseJson('rows.json', rowsBuf) : (fail('rows.json', 'missing'), null);
const proofsDoc = proofsBuf ? parseJson('proofs.json', proofsBuf) : (fail('proofs.json', 'missing'), null);
const proofs = Array.isArray(proofsDoc?.rows) ? proofsDoc.rows : [];
const counts = { merkle: 0, 'whole-file': 0, unsealed: 0 };
// The newest seal among the package's manifest entries: a row not yet sealed must have been received after it.
let newestSeal = null;
for (const e of entries.values()) if (e && e.type === 'segment' && Number.isFinite(e.last_recv) && (newestSeal === null || e.last_recv > newestSeal.last_recv)) newestSeal = e;
if (Array.isArray(rows)) {
  if (rows.length !== st.rows) fail('rows.json', `holds ${rows.length} rows, the statement says ${st.rows}`);
  if (proofs.length !== rows.length) fail('proofs.json', `holds ${proofs.length} proofs for ${rows.length} rows`);
  rows.forEach((row, i) => {
    const p = proofs[i];
    if (!p || p.row !== i) {
      fail('proofs.json', `no proof for row ${i}`);
      return;
    }
    let h;
    try {
      h = rowHash(row);
    } catch (err) {
      fail(`rows.json row ${i}`, err.message);
      return;
    }
    if (h !== p.row_hash) {
      fail(`rows.json row ${i}`, `its hash is ${h}, its proof is for ${p.row_hash}: the row (or its proof) was altered`);
      return;
    }
    if (p.proof === 'unsealed') {
      counts.unsealed++;
      // No proof: only its receive time is checked, against the seals.
      if (!Number.isFinite(row.recv_ms)) fail(`rows.json row ${i}`, 'marked unsealed (no proof) and has no receive time (recv_ms) to check against the seals');
      else if (newestSeal !== null && row.recv_ms <= newestSeal.last_recv)
        fail(`rows.json row ${i}`, `marked unsealed (no proof), but received ${new Date(row.recv_ms).toISOString()}, at or before the last record of segment ${newestSeal.file} (entry ${newestSeal.seq}, ${new Date(newestSeal.last_recv).toISOString()}): a row of that time was sealed and must carry a proof; the row was changed or added after its seal`);
      return;
    }
    const e = entries.get(p.seq);
    if (!e || e.type !== 'segment' || e.file !== p.segment) {
      fail(`proofs.json row ${i}`, `names segment ${p.segment} (entry ${p.seq}), which manifest.jsonl does not hold as such`);
      return;
    }
    if (p.proof === 'merkle') {
      if (!e.merkle_root) fail(`proofs.json row ${i}`, `segment ${p.segment} (entry ${p.seq}) has no Merkle root`);
      else if (p.tree_size !== e.rows) fail(`proofs.json row ${i}`, `a tree of ${p.tree_size} rows, the entry of ${p.segment} says ${e.rows}`);
      else if (!inclusionOk(h, p.index, p.tree_size, p.path, e.merkle_root)) fail(`proofs.json row ${i}`, `the inclusion proof does not lead to the Merkle root of ${p.segment} (entry ${p.seq}): the proof was altered, or the row is not in that segment`);
      else counts.merkle++;
    } else if (p.proof === 'whole-file') {
      const f = p.file;
      const b = typeof f === 'string' && !f.includes('..') ? read(f) : null;
      if (!b) fail(`proofs.json row ${i}`, `the segment file ${f} is not in the package`);
      else if (sha256(b) !== e.sha256) fail(f, `is not the segment its signed entry ${p.seq} names (SHA-256 ${sha256(b)}, the entry says ${e.sha256})`);
      else counts['whole-file']++;
    } else fail(`proofs.json row ${i}`, `an unknown kind of proof (${p.proof})`);
  });
  if (counts.unsealed !== st.rows_from_unsealed_log) fail('statement.json', `says ${st.rows_from_unsealed_log} rows came from the unsealed log, proofs.json marks ${counts.unsealed}`);
}

// ------------------------------------------------------------- the answer
for (const n of notes) console.log(n);
for (const f of fails) console.log(f);
const total = Array.isArray(rows) ? rows.length : 0;
if (fails.length === 0) {
  console.log(
    `OK: the statement is signed with key ${rawKey}; ${Object.keys(files).length} files match it; ${total} rows: ${counts.merkle} proven in sealed segments by Merkle proofs, ${counts['whole-file']} in whole segment files included (check those rows with a Parquet reader: README), ${counts.unsealed} from the unsealed log (no proof: not yet sealed when the package was made); manifest entries ${st.chain.from_seq} to ${st.chain.head.seq} are signed and chained up to the head ${st.chain.head.hash}. Compare that head with a copy kept apart (the daily anchor mail).`,
  );
  process.exit(0);
}
console.log(`NOT VERIFIED: ${fails.length} ${fails.length === 1 ? 'check' : 'checks'} failed${statementSigned ? '' : ' (the statement itself is not validly signed: nothing in it can be relied on)'}`);
process.exit(1);
