'use strict';
// Small Solana helpers with no dependencies: base58, ed25519 keys from 32-byte seeds
// (node:crypto), program-derived addresses, a legacy transaction builder and parser, and
// the few instructions the ledger's setup and tests need. Used by ledger.js and test.js.

const crypto = require('node:crypto');

// ---------------------------------------------------------------- base58
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const B58_MAP = new Int16Array(128).fill(-1);
for (let i = 0; i < B58.length; i++) B58_MAP[B58.charCodeAt(i)] = i;

function b58encode(bytes) {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  const digits = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i];
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) { digits.push(carry % 58); carry = (carry / 58) | 0; }
  }
  let s = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) s += B58[digits[i]];
  return s;
}

// Returns a Buffer, or null when the text is not base58.
function b58decode(str) {
  if (typeof str !== 'string') return null;
  let zeros = 0;
  while (zeros < str.length && str[zeros] === '1') zeros++;
  const bytes = [];
  for (let i = zeros; i < str.length; i++) {
    const c = str.charCodeAt(i);
    const v = c < 128 ? B58_MAP[c] : -1;
    if (v < 0) return null;
    let carry = v;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j] * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) { bytes.push(carry & 0xff); carry >>= 8; }
  }
  const out = Buffer.alloc(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i];
  return out;
}

// A 32-byte public key from base58, or null.
function pubkeyFrom(str) {
  const b = b58decode(str);
  return b && b.length === 32 ? b : null;
}

// ---------------------------------------------------------------- ed25519 keys
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

// A keypair from a 32-byte seed (what libsodium's crypto_sign_seed_keypair takes).
function keypairFromSeed(seed) {
  if (seed.length !== 32) throw new Error('seed must be 32 bytes');
  const privateKey = crypto.createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8',
  });
  const jwk = crypto.createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = Buffer.from(jwk.x, 'base64url');
  return {
    seed: Buffer.from(seed),
    publicKey,
    address: b58encode(publicKey),
    privateKey,
    sign: (msg) => crypto.sign(null, msg, privateKey),
  };
}

// Deterministic key derivation: seed = sha256("mce-ledger:" + SEED + ":" + LABEL).
function deriveSeed(seedText, label) {
  return crypto.createHash('sha256').update(`mce-ledger:${seedText}:${label}`).digest();
}

// ---------------------------------------------------------------- PDAs
const P = (1n << 255n) - 19n;
const D = (-121665n * modpow(121666n, P - 2n, P)) % P;
function mod(a) { const r = a % P; return r < 0n ? r + P : r; }
function modpow(b, e, m) {
  let r = 1n; b %= m; if (b < 0n) b += m;
  while (e > 0n) { if (e & 1n) r = (r * b) % m; b = (b * b) % m; e >>= 1n; }
  return r;
}
// True when 32 bytes decompress to a point of edwards25519 (as curve25519-dalek does).
function isOnCurve(bytes) {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? bytes[i] & 0x7f : bytes[i]);
  y = mod(y);
  const y2 = mod(y * y);
  const u = mod(y2 - 1n);
  const v = mod(D * y2 + 1n);
  if (u === 0n) return true;
  const w = mod(u * modpow(v, P - 2n, P));
  return modpow(w, (P - 1n) / 2n, P) === 1n;
}

function findProgramAddress(seeds, programId) {
  for (let bump = 255; bump >= 0; bump--) {
    const h = crypto.createHash('sha256');
    for (const s of seeds) h.update(s);
    h.update(Buffer.from([bump])).update(programId).update('ProgramDerivedAddress');
    const addr = h.digest();
    if (!isOnCurve(addr)) return { address: addr, bump };
  }
  throw new Error('no program address found');
}

// ---------------------------------------------------------------- programs
const PROGRAMS = {
  system: '11111111111111111111111111111111',
  token: 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA',
  ata: 'ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL',
  memo: 'MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr',
  memoV1: 'Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo',
  computeBudget: 'ComputeBudget111111111111111111111111111111',
};
const PROGRAM_KEYS = Object.fromEntries(Object.entries(PROGRAMS).map(([k, v]) => [k, b58decode(v)]));

function associatedTokenAddress(owner, mint) {
  return findProgramAddress([owner, PROGRAM_KEYS.token, mint], PROGRAM_KEYS.ata).address;
}

function u64le(n) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; }
function u32le(n) { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; }

// Instructions: { programId: Buffer, keys: [{ pubkey: Buffer, isSigner, isWritable }], data: Buffer }
const ix = {
  createAccount(from, newAccount, lamports, space, owner) {
    return {
      programId: PROGRAM_KEYS.system,
      keys: [{ pubkey: from, isSigner: true, isWritable: true },
        { pubkey: newAccount, isSigner: true, isWritable: true }],
      data: Buffer.concat([u32le(0), u64le(lamports), u64le(space), owner]),
    };
  },
  systemTransfer(from, to, lamports) {
    return {
      programId: PROGRAM_KEYS.system,
      keys: [{ pubkey: from, isSigner: true, isWritable: true },
        { pubkey: to, isSigner: false, isWritable: true }],
      data: Buffer.concat([u32le(2), u64le(lamports)]),
    };
  },
  initializeMint2(mint, decimals, mintAuthority) {
    return {
      programId: PROGRAM_KEYS.token,
      keys: [{ pubkey: mint, isSigner: false, isWritable: true }],
      data: Buffer.concat([Buffer.from([20, decimals]), mintAuthority, Buffer.from([0])]),
    };
  },
  createAtaIdempotent(payer, ata, owner, mint) {
    return {
      programId: PROGRAM_KEYS.ata,
      keys: [{ pubkey: payer, isSigner: true, isWritable: true },
        { pubkey: ata, isSigner: false, isWritable: true },
        { pubkey: owner, isSigner: false, isWritable: false },
        { pubkey: mint, isSigner: false, isWritable: false },
        { pubkey: PROGRAM_KEYS.system, isSigner: false, isWritable: false },
        { pubkey: PROGRAM_KEYS.token, isSigner: false, isWritable: false }],
      data: Buffer.from([1]),
    };
  },
  mintToChecked(mint, dest, authority, amount, decimals) {
    return {
      programId: PROGRAM_KEYS.token,
      keys: [{ pubkey: mint, isSigner: false, isWritable: true },
        { pubkey: dest, isSigner: false, isWritable: true },
        { pubkey: authority, isSigner: true, isWritable: false }],
      data: Buffer.concat([Buffer.from([14]), u64le(amount), Buffer.from([decimals])]),
    };
  },
  approveChecked(source, mint, delegate, owner, amount, decimals) {
    return {
      programId: PROGRAM_KEYS.token,
      keys: [{ pubkey: source, isSigner: false, isWritable: true },
        { pubkey: mint, isSigner: false, isWritable: false },
        { pubkey: delegate, isSigner: false, isWritable: false },
        { pubkey: owner, isSigner: true, isWritable: false }],
      data: Buffer.concat([Buffer.from([13]), u64le(amount), Buffer.from([decimals])]),
    };
  },
  transferChecked(source, mint, dest, authority, amount, decimals) {
    return {
      programId: PROGRAM_KEYS.token,
      keys: [{ pubkey: source, isSigner: false, isWritable: true },
        { pubkey: mint, isSigner: false, isWritable: false },
        { pubkey: dest, isSigner: false, isWritable: true },
        { pubkey: authority, isSigner: true, isWritable: false }],
      data: Buffer.concat([Buffer.from([12]), u64le(amount), Buffer.from([decimals])]),
    };
  },
  memo(text, signers = []) {
    return {
      programId: PROGRAM_KEYS.memo,
      keys: signers.map((s) => ({ pubkey: s, isSigner: true, isWritable: false })),
      data: Buffer.from(text, 'utf8'),
    };
  },
};

// ---------------------------------------------------------------- wire format
function compactU16(n) {
  const out = [];
  for (;;) {
    let b = n & 0x7f; n >>= 7;
    if (n) { out.push(b | 0x80); } else { out.push(b); break; }
  }
  return Buffer.from(out);
}

// Compile a legacy message. feePayer: Buffer; blockhash: Buffer(32) or base58.
function compileMessage(feePayer, instructions, blockhash) {
  const metas = new Map(); // hex -> {pubkey, isSigner, isWritable, order}
  let order = 0;
  const add = (pubkey, isSigner, isWritable) => {
    const k = pubkey.toString('hex');
    const m = metas.get(k);
    if (m) { m.isSigner ||= isSigner; m.isWritable ||= isWritable; return; }
    metas.set(k, { pubkey, isSigner, isWritable, order: order++ });
  };
  add(feePayer, true, true);
  for (const i of instructions) {
    for (const a of i.keys) add(a.pubkey, a.isSigner, a.isWritable);
    add(i.programId, false, false);
  }
  const all = [...metas.values()];
  const rank = (m) => (m.isSigner ? (m.isWritable ? 0 : 1) : (m.isWritable ? 2 : 3));
  all.sort((a, b) => (a.order === 0 ? -1 : b.order === 0 ? 1 : rank(a) - rank(b) || a.order - b.order));
  const index = new Map(all.map((m, i) => [m.pubkey.toString('hex'), i]));
  const numSigners = all.filter((m) => m.isSigner).length;
  const roSigned = all.filter((m) => m.isSigner && !m.isWritable).length;
  const roUnsigned = all.filter((m) => !m.isSigner && !m.isWritable).length;
  const bh = typeof blockhash === 'string' ? b58decode(blockhash) : blockhash;
  const parts = [Buffer.from([numSigners, roSigned, roUnsigned]), compactU16(all.length),
    ...all.map((m) => m.pubkey), bh, compactU16(instructions.length)];
  for (const i of instructions) {
    parts.push(Buffer.from([index.get(i.programId.toString('hex'))]));
    parts.push(compactU16(i.keys.length));
    parts.push(Buffer.from(i.keys.map((a) => index.get(a.pubkey.toString('hex')))));
    parts.push(compactU16(i.data.length), i.data);
  }
  return { message: Buffer.concat(parts), signers: all.slice(0, numSigners).map((m) => m.pubkey) };
}

// Build and sign a legacy transaction. keypairs: every signer (fee payer first is not required).
function buildTransaction(feePayer, instructions, blockhash, keypairs) {
  const { message, signers } = compileMessage(feePayer.publicKey, instructions, blockhash);
  const byKey = new Map(keypairs.map((k) => [k.publicKey.toString('hex'), k]));
  const sigs = signers.map((pk) => {
    const kp = byKey.get(pk.toString('hex'));
    if (!kp) throw new Error(`missing signer ${b58encode(pk)}`);
    return kp.sign(message);
  });
  const bytes = Buffer.concat([compactU16(sigs.length), ...sigs, message]);
  return { bytes, signature: b58encode(sigs[0]) };
}

// Parse a legacy or v0 transaction. Throws Error with a message on malformed input.
function parseTransaction(buf) {
  let off = 0;
  const need = (n) => { if (off + n > buf.length) throw new Error('unexpected end of transaction'); };
  const readCompact = () => {
    let v = 0;
    for (let s = 0; s < 21; s += 7) {
      need(1);
      const b = buf[off++];
      v |= (b & 0x7f) << s;
      if (!(b & 0x80)) return v;
    }
    throw new Error('bad compact-u16');
  };
  const nsig = readCompact();
  need(nsig * 64);
  const signatures = [];
  for (let i = 0; i < nsig; i++) { signatures.push(buf.subarray(off, off + 64)); off += 64; }
  const msgStart = off;
  need(1);
  let version = 'legacy';
  if (buf[off] & 0x80) { version = buf[off] & 0x7f; off++; }
  need(3);
  const header = { numRequiredSignatures: buf[off], numReadonlySigned: buf[off + 1], numReadonlyUnsigned: buf[off + 2] };
  off += 3;
  const nkeys = readCompact();
  need(nkeys * 32);
  const accountKeys = [];
  for (let i = 0; i < nkeys; i++) { accountKeys.push(buf.subarray(off, off + 32)); off += 32; }
  need(32);
  const recentBlockhash = buf.subarray(off, off + 32); off += 32;
  const nix = readCompact();
  const instructions = [];
  for (let i = 0; i < nix; i++) {
    need(1);
    const programIdIndex = buf[off++];
    const na = readCompact();
    need(na);
    const accounts = Array.from(buf.subarray(off, off + na)); off += na;
    const dl = readCompact();
    need(dl);
    const data = buf.subarray(off, off + dl); off += dl;
    instructions.push({ programIdIndex, accounts, data });
  }
  let lookups = 0;
  if (version !== 'legacy') {
    const nl = readCompact();
    for (let i = 0; i < nl; i++) {
      need(32); off += 32;
      const w = readCompact(); need(w); off += w;
      const r = readCompact(); need(r); off += r;
      lookups += w + r;
    }
  }
  if (off !== buf.length) throw new Error('trailing bytes after transaction');
  // sanitize (the checks a node makes before anything else)
  if (nsig !== header.numRequiredSignatures) throw new Error('signature count does not match header');
  if (nsig === 0) throw new Error('no signatures');
  if (header.numRequiredSignatures > nkeys) throw new Error('more signers than accounts');
  if (header.numReadonlySigned >= header.numRequiredSignatures) throw new Error('fee payer must be writable');
  if (header.numReadonlyUnsigned > nkeys - header.numRequiredSignatures) throw new Error('bad readonly count');
  const total = nkeys + lookups;
  for (const ins of instructions) {
    if (ins.programIdIndex >= nkeys || ins.programIdIndex === 0) throw new Error('bad program index');
    for (const a of ins.accounts) if (a >= total) throw new Error('bad account index');
  }
  const seen = new Set();
  for (const k of accountKeys) {
    const h = k.toString('hex');
    if (seen.has(h)) throw new Error('duplicate account key');
    seen.add(h);
  }
  return {
    signatures, message: buf.subarray(msgStart), version, header, accountKeys,
    recentBlockhash, instructions,
  };
}

// Memo texts carried by a parsed transaction.
function memosOf(parsed) {
  const out = [];
  for (const ins of parsed.instructions) {
    const pk = parsed.accountKeys[ins.programIdIndex];
    if (pk && (pk.equals(PROGRAM_KEYS.memo) || pk.equals(PROGRAM_KEYS.memoV1))) {
      out.push(Buffer.from(ins.data).toString('utf8'));
    }
  }
  return out;
}

module.exports = {
  b58encode, b58decode, pubkeyFrom, keypairFromSeed, deriveSeed, isOnCurve,
  findProgramAddress, associatedTokenAddress, PROGRAMS, PROGRAM_KEYS, ix, u64le,
  compactU16, compileMessage, buildTransaction, parseTransaction, memosOf,
};
