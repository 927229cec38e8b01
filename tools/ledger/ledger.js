#!/usr/bin/env node
'use strict';
// mce local ledger: a Solana JSON-RPC server on loopback around LiteSVM (an in-process
// Solana VM that verifies signatures and runs the real SPL Token and Memo programs).
// See README.md in this folder, or run with --help.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const L = require('./lib');

const VERSION = '1.0.0';

// ------------------------------------------------------------------ options
const OPTIONS = [
  // [flag, key, default, kind, help, metavar]
  ['--host', 'host', '127.0.0.1', 'str', 'address to bind (keep loopback for tests)', 'ADDR'],
  ['--port', 'port', 0, 'int', 'TCP port; 0 lets the OS pick (the ready line tells it)', 'PORT'],
  ['--slot-ms', 'slotMs', 400, 'int', 'a new slot (block height +1, new blockhash) every MS; 0 = only via mce_advanceSlots', 'MS'],
  ['--blockhash-validity', 'blockhashValidity', 150, 'int', 'blocks a blockhash stays valid (lastValidBlockHeight = height + this)', 'N'],
  ['--history', 'history', 20000, 'int', 'how many landed transactions keep their bytes and logs for getTransaction', 'N'],
  ['--setup-out', 'setupOut', '', 'str', 'write the setup description (JSON) to FILE before the ready line', 'FILE'],
  ['--seed', 'seed', 'mce-local', 'str', 'text all keys are derived from (sha256("mce-ledger:SEED:LABEL"))', 'TEXT'],
  ['--keys-dir', 'keysDir', '', 'str', 'keypair files (Solana CLI JSON, 64 bytes): used when present, else derived from --seed and written there', 'DIR'],
  ['--users', 'users', 0, 'int', 'create N user wallets named user1..userN', 'N'],
  ['--user', 'user', [], 'list', 'create a user NAME (key derived) or NAME:PUBKEY (external wallet); repeatable', 'NAME[:PUBKEY]'],
  ['--energy-amount', 'energyAmount', 1000000, 'int', 'energy base units (Wh, 3 decimals) minted to each user', 'N'],
  ['--payment-amount', 'paymentAmount', 1000000000, 'int', 'payment base units (6 decimals) minted to each user', 'N'],
  ['--approve-amount', 'approveAmount', '1000000000000000000', 'str', 'allowance of the platform key as delegate on each user token account', 'N'],
  ['--platform-lamports', 'platformLamports', 1000000000000, 'int', 'lamports airdropped to the platform key (fee payer)', 'N'],
  ['--vault-energy-amount', 'vaultEnergyAmount', 0, 'int', 'energy base units (Wh) minted into the energy vault (the platform\'s energy token account) at start', 'N'],
  ['--vault-payment-amount', 'vaultPaymentAmount', 0, 'int', 'payment base units minted into the payment vault at start', 'N'],
  ['--user-lamports', 'userLamports', 0, 'int', 'lamports given to each user wallet', 'N'],
  ['--http429-rate', 'http429Rate', 0, 'num', 'fraction of requests answered HTTP 429 (with Retry-After)', 'F'],
  ['--http429-every', 'http429Every', 0, 'int', 'answer every Nth request with HTTP 429', 'N'],
  ['--http5xx-rate', 'http5xxRate', 0, 'num', 'fraction of requests answered HTTP 500/503 (alternating)', 'F'],
  ['--http5xx-every', 'http5xxEvery', 0, 'int', 'answer every Nth request with HTTP 500/503', 'N'],
  ['--unhealthy-rate', 'unhealthyRate', 0, 'num', 'fraction of calls answered JSON-RPC -32005 "Node is unhealthy"', 'F'],
  ['--retry-after-s', 'retryAfterS', 1, 'int', 'Retry-After seconds on 429 and 503', 'S'],
  ['--pause-ms', 'pausedMs', 0, 'int', 'start paused for MS (see --pause-mode)', 'MS'],
  ['--pause-mode', 'pauseMode', 'hang', 'str', 'hang: requests are held unanswered until the pause ends, then served if the client is still there; reset: connections are closed without an answer; refuse: the port is closed (connection refused) and reopened when the pause ends', 'MODE'],
  ['--confirm-delay-ms', 'confirmDelayMs', 0, 'int', 'landed transactions stay "processed" for MS before "confirmed"', 'MS'],
  ['--land-delay-ms', 'landDelayMs', 0, 'int', 'accepted transactions land MS later (status null until then; dropped if their blockhash expired by then)', 'MS'],
  ['--drop-rate', 'dropRate', 0, 'num', 'fraction of accepted transactions silently dropped (never land)', 'F'],
  ['--fault-methods', 'faultMethods', '', 'str', 'comma list of methods the faults apply to (default: all but mce_*)', 'LIST'],
  ['--fault-seed', 'faultSeed', 1, 'int', 'seed of the fault dice', 'N'],
  ['--state', 'state', '', 'str', 'keep the chain in FILE across restarts: every change after the setup is appended to it and replayed at the next start (with the same --keys-dir or --seed)', 'FILE'],
  ['--watch-pid', 'watchPid', 0, 'int', 'exit when process PID is gone', 'PID'],
  ['--verbose', 'verbose', false, 'bool', 'log every call on stderr'],
  ['--help', 'help', false, 'bool', 'show this help'],
];

function usage() {
  const lines = [
    'usage: node tools/ledger/ledger.js [options]',
    '',
    'A Solana JSON-RPC server on 127.0.0.1 around LiteSVM, for mce tests and the local run.',
    'At start it creates (deterministically from --seed) the platform key (fee payer, mint',
    'authority and delegate), the energy mint (3 decimals), the payment mint (6 decimals), the',
    'vaults (the platform\'s own token account of each mint: the escrow), the treasury and the',
    'users with their token accounts, the platform approved as delegate.',
    'When ready it prints exactly one line on stdout:',
    '    ledger: listening on 127.0.0.1:PORT',
    'and nothing else there (logs go to stderr). SIGTERM/SIGINT stop it.',
    '',
    'options:',
  ];
  for (const [flag, , def, kind, help, metavar] of OPTIONS) {
    const arg = metavar ? ` ${metavar}` : '';
    const d = kind === 'bool' || (Array.isArray(def) && !def.length) || def === '' ? '' : ` (default ${def})`;
    lines.push(`  ${flag}${arg}`, `      ${help}${d}`);
  }
  lines.push('', 'Faults can be changed at run time with the JSON-RPC method mce_setFaults; see README.md.');
  return lines.join('\n') + '\n';
}

function parseArgs(argv) {
  const opts = {};
  for (const [, key, def] of OPTIONS) opts[key] = Array.isArray(def) ? [] : def;
  const byFlag = new Map(OPTIONS.map((o) => [o[0], o]));
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { val = a.slice(eq + 1); a = a.slice(0, eq); }
    const o = byFlag.get(a);
    if (!o) throw new Error(`unknown option ${a} (try --help)`);
    const [, key, , kind] = o;
    if (kind === 'bool') { opts[key] = true; continue; }
    if (val === undefined) {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      val = argv[++i];
    }
    if (kind === 'int') {
      if (!/^-?\d+$/.test(val)) throw new Error(`${a}: not an integer: ${val}`);
      opts[key] = Number(val);
    } else if (kind === 'num') {
      const n = Number(val);
      if (!Number.isFinite(n)) throw new Error(`${a}: not a number: ${val}`);
      opts[key] = n;
    } else if (kind === 'list') {
      opts[key].push(val);
    } else {
      opts[key] = val;
    }
  }
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`ledger: ${e.message}\n`);
  process.exit(2);
}
if (opts.help) { process.stdout.write(usage()); process.exit(0); }

const log = (msg) => process.stderr.write(`ledger: ${msg}\n`);
const vlog = opts.verbose ? log : () => {};

// ------------------------------------------------------------------ LiteSVM
const native = require('litesvm/dist/internal');
const { LiteSvm, Account, FailedTransactionMetadata } = native;

const TX_ERRORS = ['AccountInUse', 'AccountLoadedTwice', 'AccountNotFound', 'ProgramAccountNotFound',
  'InsufficientFundsForFee', 'InvalidAccountForFee', 'AlreadyProcessed', 'BlockhashNotFound',
  'CallChainTooDeep', 'MissingSignatureForFee', 'InvalidAccountIndex', 'SignatureFailure',
  'InvalidProgramForExecution', 'SanitizeFailure', 'ClusterMaintenance', 'AccountBorrowOutstanding',
  'WouldExceedMaxBlockCostLimit', 'UnsupportedVersion', 'InvalidWritableAccount',
  'WouldExceedMaxAccountCostLimit', 'WouldExceedAccountDataBlockLimit', 'TooManyAccountLocks',
  'AddressLookupTableNotFound', 'InvalidAddressLookupTableOwner', 'InvalidAddressLookupTableData',
  'InvalidAddressLookupTableIndex', 'InvalidRentPayingAccount', 'WouldExceedMaxVoteCostLimit',
  'WouldExceedAccountDataTotalLimit', 'MaxLoadedAccountsDataSizeExceeded', 'ResanitizationNeeded',
  'InvalidLoadedAccountsDataSizeLimit', 'UnbalancedTransaction', 'ProgramCacheHitMaxLimit',
  'CommitCancelled'];
const IX_ERRORS = ['GenericError', 'InvalidArgument', 'InvalidInstructionData', 'InvalidAccountData',
  'AccountDataTooSmall', 'InsufficientFunds', 'IncorrectProgramId', 'MissingRequiredSignature',
  'AccountAlreadyInitialized', 'UninitializedAccount', 'UnbalancedInstruction', 'ModifiedProgramId',
  'ExternalAccountLamportSpend', 'ExternalAccountDataModified', 'ReadonlyLamportChange',
  'ReadonlyDataModified', 'DuplicateAccountIndex', 'ExecutableModified', 'RentEpochModified',
  'NotEnoughAccountKeys', 'AccountDataSizeChanged', 'AccountNotExecutable', 'AccountBorrowFailed',
  'AccountBorrowOutstanding', 'DuplicateAccountOutOfSync', 'InvalidError', 'ExecutableDataModified',
  'ExecutableLamportChange', 'ExecutableAccountNotRentExempt', 'UnsupportedProgramId', 'CallDepth',
  'MissingAccount', 'ReentrancyNotAllowed', 'MaxSeedLengthExceeded', 'InvalidSeeds', 'InvalidRealloc',
  'ComputationalBudgetExceeded', 'PrivilegeEscalation', 'ProgramEnvironmentSetupFailure',
  'ProgramFailedToComplete', 'ProgramFailedToCompile', 'Immutable', 'IncorrectAuthority',
  'AccountNotRentExempt', 'InvalidAccountOwner', 'ArithmeticOverflow', 'UnsupportedSysvar',
  'IllegalOwner', 'MaxAccountsDataAllocationsExceeded', 'MaxAccountsExceeded',
  'MaxInstructionTraceLengthExceeded', 'BuiltinProgramsMustConsumeComputeUnits', 'BorshIoError'];

// LiteSVM error -> the JSON a Solana node gives (serde form of TransactionError).
function errJson(e) {
  if (typeof e === 'number') return TX_ERRORS[e] || `TransactionError${e}`;
  if (e instanceof native.TransactionErrorInstructionError) {
    const ie = e.err();
    let j;
    if (typeof ie === 'number') j = IX_ERRORS[ie] || `InstructionError${ie}`;
    else if (ie instanceof native.InstructionErrorCustom) j = { Custom: ie.code };
    else j = { BorshIoError: String(ie.msg) };
    return { InstructionError: [e.index, j] };
  }
  if (e instanceof native.TransactionErrorInsufficientFundsForRent) {
    return { InsufficientFundsForRent: { account_index: e.accountIndex } };
  }
  if (e instanceof native.TransactionErrorDuplicateInstruction) return { DuplicateInstruction: e.index };
  if (e instanceof native.TransactionErrorProgramExecutionTemporarilyRestricted) {
    return { ProgramExecutionTemporarilyRestricted: { account_index: e.accountIndex } };
  }
  return String(e);
}

function describeErr(ej) {
  const words = {
    BlockhashNotFound: 'Blockhash not found',
    AlreadyProcessed: 'This transaction has already been processed',
    AccountNotFound: 'Attempt to debit an account but found no record of a prior credit.',
    InsufficientFundsForFee: 'Insufficient funds for fee',
    SignatureFailure: 'Transaction did not pass signature verification',
    InvalidAccountForFee: 'This account may not be used to pay transaction fees',
    ProgramAccountNotFound: 'Attempt to load a program that does not exist',
  };
  if (typeof ej === 'string') return words[ej] || ej;
  if (ej.InstructionError) {
    const [i, ie] = ej.InstructionError;
    let what;
    if (typeof ie === 'string') what = ie.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    else if (ie.Custom !== undefined) what = `custom program error: 0x${ie.Custom.toString(16)}`;
    else what = JSON.stringify(ie);
    return `Error processing Instruction ${i}: ${what}`;
  }
  if (ej.InsufficientFundsForRent) {
    return `Transaction results in an account (${ej.InsufficientFundsForRent.account_index}) with insufficient funds for rent`;
  }
  return JSON.stringify(ej);
}

const svm = new LiteSvm();
svm.setBlockhashCheck(false); // we keep our own window of recent blockhashes
svm.setTransactionHistory(10000n); // duplicates are caught by our own signature map first
svm.setLamports(1000000000000000000n); // the airdrop source

// ------------------------------------------------------------------ chain state
const SLOT_OFFSET = 1000; // slot = block height + 1000 (they differ on a real cluster too)
const FINALIZE_DEPTH = 32;
const chain = {
  blockHeight: 1,
  get slot() { return this.blockHeight + SLOT_OFFSET; },
  nonce: crypto.randomBytes(16), // blockhashes differ between runs
  blockhash: '',
  blockhashes: new Map(), // base58 -> { height, lastValid }
  started: Date.now(),
};

const faults = {
  http429Rate: opts.http429Rate,
  http429Every: opts.http429Every,
  http5xxRate: opts.http5xxRate,
  http5xxEvery: opts.http5xxEvery,
  unhealthyRate: opts.unhealthyRate,
  retryAfterS: opts.retryAfterS,
  pauseMode: opts.pauseMode,
  confirmDelayMs: opts.confirmDelayMs,
  landDelayMs: opts.landDelayMs,
  dropRate: opts.dropRate,
  blockhashValidity: opts.blockhashValidity,
  slotMs: opts.slotMs,
  faultMethods: opts.faultMethods ? opts.faultMethods.split(',').filter(Boolean) : [],
};
const startFaults = { ...faults };
let pauseUntil = 0;
if (!['hang', 'reset', 'refuse'].includes(faults.pauseMode)) {
  log(`--pause-mode must be hang, reset or refuse`);
  process.exit(2);
}

// Fault dice: mulberry32, reproducible from --fault-seed.
let rngState = opts.faultSeed >>> 0;
function rand() {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const stats = {
  httpRequests: 0, rpcCalls: 0, byMethod: {}, http429: 0, http5xx: 0, unhealthy: 0,
  pausedRequests: 0, txSent: 0, txLanded: 0, txFailed: 0, txRejected: 0, txDropped: 0,
  txDuplicate: 0, txExpired: 0, airdrops: 0, transfers: 0, replayed: 0,
};

// Landed transactions: signature -> record; also in order in `records`.
const records = [];
const bySig = new Map();
let pendingLandings = 0;

function newBlock() {
  chain.blockHeight++;
  const h = crypto.createHash('sha256').update(chain.nonce).update(String(chain.blockHeight)).digest();
  chain.blockhash = L.b58encode(h);
  chain.blockhashes.set(chain.blockhash, {
    height: chain.blockHeight, lastValid: chain.blockHeight + faults.blockhashValidity,
  });
  // forget blockhashes that expired a while ago (all the same to a client: not found)
  if (chain.blockhashes.size > 2 * faults.blockhashValidity + 600) {
    for (const [k, v] of chain.blockhashes) {
      if (v.lastValid < chain.blockHeight) chain.blockhashes.delete(k); else break;
    }
  }
  svm.warpToSlot(BigInt(chain.slot));
}

function blockhashValid(b58) {
  const e = chain.blockhashes.get(b58);
  return !!e && chain.blockHeight <= e.lastValid;
}

let slotTimer = null;
function startSlotTimer() {
  if (slotTimer) clearInterval(slotTimer);
  slotTimer = null;
  if (faults.slotMs > 0) slotTimer = setInterval(newBlock, faults.slotMs);
}

newBlock();

function statusOf(rec, now = Date.now()) {
  const confirmed = now - rec.landedAt >= faults.confirmDelayMs;
  const finalized = confirmed && chain.slot - rec.slot >= FINALIZE_DEPTH;
  return {
    slot: rec.slot,
    confirmations: finalized ? null : chain.slot - rec.slot,
    err: rec.err,
    status: rec.err === null ? { Ok: null } : { Err: rec.err },
    confirmationStatus: finalized ? 'finalized' : confirmed ? 'confirmed' : 'processed',
  };
}

function record(sig, kind, err, extra = {}) {
  const rec = {
    index: records.length, signature: sig, kind, slot: chain.slot, blockHeight: chain.blockHeight,
    landedAt: Date.now(), err, memos: [], fee: 0, logs: null, bytes: null, unitsConsumed: 0,
    version: 'legacy', ...extra,
  };
  records.push(rec);
  bySig.set(sig, rec);
  if (records.length > opts.history) {
    const old = records[records.length - 1 - opts.history];
    old.bytes = null;
    old.logs = null;
  }
  return rec;
}

function countTransfers(parsed) {
  let n = 0;
  for (const ins of parsed.instructions) {
    if (parsed.accountKeys[ins.programIdIndex].equals(L.PROGRAM_KEYS.token) && ins.data.length > 0 &&
        (ins.data[0] === 12 || ins.data[0] === 3)) n++;
  }
  return n;
}

// Execute now. Returns { landed: bool, err (json or null), meta }.
function execute(tx, kind = 'tx') {
  const r = sendToSvm(tx);
  const failed = r instanceof FailedTransactionMetadata;
  const meta = failed ? r.meta() : r;
  const err = failed ? errJson(r.err()) : null;
  // a failure lands (fee charged, status with err) only when it got past fee validation:
  // LiteSVM then keeps it in its history
  if (failed && (err === 'AlreadyProcessed' || svm.getTransaction(tx.parsed.signatures[0]) === null)) {
    if (err === 'AlreadyProcessed') stats.txDuplicate++; else stats.txDropped++;
    vlog(`tx ${tx.signature} dropped: ${JSON.stringify(err)}`);
    return { landed: false, err, meta };
  }
  record(tx.signature, kind, err, {
    memos: L.memosOf(tx.parsed), fee: 5000 * tx.parsed.signatures.length, logs: meta.logs(),
    bytes: tx.bytes, unitsConsumed: Number(meta.computeUnitsConsumed()), version: tx.parsed.version,
  });
  if (kind === 'tx') {
    if (err) stats.txFailed++; else { stats.txLanded++; stats.transfers += countTransfers(tx.parsed); }
    keep({ k: 'tx', b: Buffer.from(tx.bytes).toString('base64') });
  }
  return { landed: true, err, meta };
}
function sendToSvm(tx) {
  return tx.parsed.version === 'legacy' ? svm.sendLegacyTransaction(tx.bytes) : svm.sendVersionedTransaction(tx.bytes);
}
function simulateInSvm(tx) {
  return tx.parsed.version === 'legacy' ? svm.simulateLegacyTransaction(tx.bytes) : svm.simulateVersionedTransaction(tx.bytes);
}

// Land an accepted transaction, now or after landDelayMs (then re-checking its blockhash).
function land(tx) {
  if (faults.dropRate > 0 && rand() < faults.dropRate) { stats.txDropped++; return; }
  if (faults.landDelayMs > 0) {
    pendingLandings++;
    setTimeout(() => {
      pendingLandings--;
      if (bySig.has(tx.signature)) { stats.txDuplicate++; return; }
      if (!blockhashValid(tx.blockhash)) { stats.txExpired++; return; }
      execute(tx);
    }, faults.landDelayMs);
    return;
  }
  execute(tx);
}

// ------------------------------------------------------------------ JSON-RPC helpers
class RpcError extends Error {
  constructor(code, message, data) { super(message); this.code = code; this.data = data; }
}
const invalidParams = (msg) => new RpcError(-32602, msg);

function cfgOf(params, i) {
  const c = params[i];
  if (c === undefined || c === null) return {};
  if (typeof c !== 'object' || Array.isArray(c)) throw invalidParams(`Invalid params: config must be an object`);
  return c;
}
function pubkeyParam(v) {
  const pk = L.pubkeyFrom(v);
  if (!pk) throw invalidParams(`Invalid param: Invalid`);
  return pk;
}
function ctx(value) { return { context: { slot: chain.slot, apiVersion: '2.2.0' }, value }; }

function uiAmountString(amount, decimals) {
  const s = amount.toString().padStart(decimals + 1, '0');
  if (decimals === 0) return s;
  const int = s.slice(0, s.length - decimals);
  const frac = s.slice(s.length - decimals).replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}
function tokenAmount(amount, decimals) {
  const s = uiAmountString(amount, decimals);
  return { amount: amount.toString(), decimals, uiAmount: Number(s), uiAmountString: s };
}

const TOKEN_ACCOUNT_LEN = 165;
const MINT_LEN = 82;
function parseTokenAccount(data) {
  if (data.length !== TOKEN_ACCOUNT_LEN) return null;
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  return {
    mint: b.subarray(0, 32), owner: b.subarray(32, 64), amount: b.readBigUInt64LE(64),
    delegate: b.readUInt32LE(72) ? b.subarray(76, 108) : null, state: b[108],
    isNative: b.readUInt32LE(109) !== 0, delegatedAmount: b.readBigUInt64LE(121),
    closeAuthority: b.readUInt32LE(129) ? b.subarray(133, 165) : null,
  };
}
function parseMint(data) {
  if (data.length !== MINT_LEN) return null;
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  return {
    mintAuthority: b.readUInt32LE(0) ? b.subarray(4, 36) : null, supply: b.readBigUInt64LE(36),
    decimals: b[44], isInitialized: b[45] !== 0,
    freezeAuthority: b.readUInt32LE(46) ? b.subarray(50, 82) : null,
  };
}
function mintDecimals(mintKey) {
  const a = svm.getAccount(mintKey);
  const m = a && parseMint(a.data());
  return m ? m.decimals : 0;
}

function encodeAccount(acc, encoding) {
  const data = Buffer.from(acc.data());
  const owner = L.b58encode(Buffer.from(acc.owner()));
  let d;
  if (encoding === 'base58') d = [L.b58encode(data), 'base58'];
  else if (encoding === 'jsonParsed' && owner === L.PROGRAMS.token) {
    const ta = parseTokenAccount(data);
    const mi = !ta && parseMint(data);
    if (ta) {
      const dec = mintDecimals(ta.mint);
      const info = {
        isNative: ta.isNative, mint: L.b58encode(ta.mint), owner: L.b58encode(ta.owner),
        state: ['uninitialized', 'initialized', 'frozen'][ta.state] || 'unknown',
        tokenAmount: tokenAmount(ta.amount, dec),
      };
      if (ta.delegate) {
        info.delegate = L.b58encode(ta.delegate);
        info.delegatedAmount = tokenAmount(ta.delegatedAmount, dec);
      }
      d = { program: 'spl-token', parsed: { type: 'account', info }, space: data.length };
    } else if (mi) {
      d = {
        program: 'spl-token', space: data.length,
        parsed: { type: 'mint', info: {
          decimals: mi.decimals, freezeAuthority: mi.freezeAuthority && L.b58encode(mi.freezeAuthority),
          isInitialized: mi.isInitialized, mintAuthority: mi.mintAuthority && L.b58encode(mi.mintAuthority),
          supply: mi.supply.toString() } },
      };
    }
  }
  if (!d) d = [data.toString('base64'), 'base64'];
  return {
    data: d, executable: acc.executable(), lamports: Number(acc.lamports()), owner,
    rentEpoch: 0, space: data.length,
  };
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
function decodeTx(params) {
  if (!Array.isArray(params) || typeof params[0] !== 'string') throw invalidParams('Invalid params: expected a transaction string');
  const cfg = cfgOf(params, 1);
  const enc = cfg.encoding || 'base58';
  let bytes;
  if (enc === 'base64') {
    if (params[0].length > 1644) throw invalidParams(`base64 encoded solana_transaction::versioned::VersionedTransaction too large: ${params[0].length} bytes (max: encoded/raw 1644/1232)`);
    if (params[0].length % 4 !== 0 || !B64_RE.test(params[0])) throw invalidParams('invalid base64 encoding: InvalidByte');
    bytes = Buffer.from(params[0], 'base64');
  } else if (enc === 'base58') {
    if (params[0].length > 1683) throw invalidParams(`base58 encoded solana_transaction::versioned::VersionedTransaction too large: ${params[0].length} bytes (max: encoded/raw 1683/1232)`);
    bytes = L.b58decode(params[0]);
    if (!bytes) throw invalidParams('invalid base58 encoding: InvalidCharacter');
  } else {
    throw invalidParams(`unsupported encoding: ${enc}. Supported encodings: base58, base64`);
  }
  if (bytes.length > 1232) throw invalidParams(`${enc} encoded solana_transaction::versioned::VersionedTransaction too large: ${bytes.length} bytes (max: encoded/raw ${enc === 'base64' ? 1644 : 1683}/1232)`);
  let parsed;
  try {
    parsed = L.parseTransaction(bytes);
  } catch (e) {
    throw invalidParams(`failed to deserialize solana_transaction::versioned::VersionedTransaction: ${e.message}`);
  }
  return {
    bytes, parsed, cfg, signature: L.b58encode(parsed.signatures[0]),
    blockhash: L.b58encode(parsed.recentBlockhash),
  };
}

function signaturesValid(tx) {
  const { parsed } = tx;
  for (let i = 0; i < parsed.signatures.length; i++) {
    const key = crypto.createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), parsed.accountKeys[i]]),
      format: 'der', type: 'spki',
    });
    if (!crypto.verify(null, parsed.message, key, parsed.signatures[i])) return false;
  }
  return true;
}

function simulationFailed(err, meta) {
  return new RpcError(-32002, `Transaction simulation failed: ${describeErr(err)}`, {
    accounts: null, err, innerInstructions: null, loadedAccountsDataSize: 0,
    logs: meta ? meta.logs() : [], replacementBlockhash: null, returnData: null,
    unitsConsumed: meta ? Number(meta.computeUnitsConsumed()) : 0,
  });
}
const SIG_FAILURE = () => new RpcError(-32003, 'Transaction signature verification failure');

function sendTransaction(params) {
  const tx = decodeTx(params);
  stats.txSent++;
  const { cfg } = tx;
  const dup = bySig.has(tx.signature);
  const hashOk = blockhashValid(tx.blockhash);
  if (cfg.skipPreflight) {
    if (dup) { stats.txDuplicate++; return tx.signature; }
    if (!hashOk) { stats.txExpired++; return tx.signature; }
    land(tx);
    return tx.signature;
  }
  if (!hashOk || dup) {
    stats.txRejected++;
    if (!signaturesValid(tx)) throw SIG_FAILURE();
    throw simulationFailed(hashOk ? 'AlreadyProcessed' : 'BlockhashNotFound', null);
  }
  const sim = simulateInSvm(tx);
  if (sim instanceof FailedTransactionMetadata) {
    stats.txRejected++;
    const err = errJson(sim.err());
    if (err === 'SignatureFailure') throw SIG_FAILURE();
    throw simulationFailed(err, sim.meta());
  }
  land(tx);
  return tx.signature;
}

function simulateTransaction(params) {
  const tx = decodeTx(params);
  const { cfg } = tx;
  let err = null;
  let meta = null;
  if (!cfg.replaceRecentBlockhash && !blockhashValid(tx.blockhash)) err = 'BlockhashNotFound';
  else if (bySig.has(tx.signature)) err = 'AlreadyProcessed';
  else {
    const verify = !!cfg.sigVerify;
    if (!verify) svm.setSigverify(false);
    try {
      const sim = simulateInSvm(tx);
      if (sim instanceof FailedTransactionMetadata) { err = errJson(sim.err()); meta = sim.meta(); } else meta = sim.meta();
    } finally {
      if (!verify) svm.setSigverify(true);
    }
  }
  return ctx({
    accounts: null, err, innerInstructions: null, logs: meta ? meta.logs() : [],
    replacementBlockhash: cfg.replaceRecentBlockhash ? { blockhash: chain.blockhash, lastValidBlockHeight: chain.blockhashes.get(chain.blockhash).lastValid } : null,
    returnData: null, unitsConsumed: meta ? Number(meta.computeUnitsConsumed()) : 0,
  });
}

function getTransaction(params) {
  if (!Array.isArray(params) || typeof params[0] !== 'string') throw invalidParams('Invalid params: expected a signature');
  const cfg = typeof params[1] === 'string' ? { encoding: params[1] } : cfgOf(params, 1);
  const rec = bySig.get(params[0]);
  if (!rec) return null;
  if (rec.version !== 'legacy' && cfg.maxSupportedTransactionVersion === undefined) {
    throw new RpcError(-32015, 'Transaction version (0) is not supported by the requesting client. Please try the request again with the following configuration parameter: "maxSupportedTransactionVersion": 0');
  }
  const out = {
    slot: rec.slot, blockTime: Math.floor(rec.landedAt / 1000),
    meta: {
      err: rec.err, status: rec.err === null ? { Ok: null } : { Err: rec.err }, fee: rec.fee,
      logMessages: rec.logs, preBalances: [], postBalances: [], innerInstructions: [],
      preTokenBalances: [], postTokenBalances: [], rewards: [], computeUnitsConsumed: rec.unitsConsumed,
    },
    transaction: null,
  };
  if (cfg.maxSupportedTransactionVersion !== undefined) out.version = rec.version;
  if (rec.bytes) {
    if (cfg.encoding === 'base64') out.transaction = [rec.bytes.toString('base64'), 'base64'];
    else if (cfg.encoding === 'base58') out.transaction = [L.b58encode(rec.bytes), 'base58'];
    else {
      const p = L.parseTransaction(rec.bytes);
      out.transaction = {
        signatures: p.signatures.map((s) => L.b58encode(s)),
        message: {
          accountKeys: p.accountKeys.map((k) => L.b58encode(k)), header: p.header,
          recentBlockhash: L.b58encode(p.recentBlockhash),
          instructions: p.instructions.map((i) => ({
            programIdIndex: i.programIdIndex, accounts: i.accounts, data: L.b58encode(i.data), stackHeight: null,
          })),
        },
      };
    }
  }
  return out;
}

// ------------------------------------------------------------------ setup
const setupState = {
  platform: null, treasury: null, energyMint: null, paymentMint: null, users: [], keyFiles: {},
};

function loadOrDeriveKey(label) {
  if (opts.keysDir) {
    const file = path.join(opts.keysDir, `${label}.json`);
    if (fs.existsSync(file)) {
      const arr = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (!Array.isArray(arr) || arr.length !== 64) throw new Error(`${file}: expected a JSON array of 64 bytes`);
      const kp = L.keypairFromSeed(Buffer.from(arr.slice(0, 32)));
      if (!kp.publicKey.equals(Buffer.from(arr.slice(32)))) throw new Error(`${file}: public key does not match`);
      setupState.keyFiles[label] = path.resolve(file);
      return kp;
    }
    const kp = L.keypairFromSeed(L.deriveSeed(opts.seed, label));
    fs.mkdirSync(opts.keysDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify([...kp.seed, ...kp.publicKey]) + '\n', { mode: 0o600 });
    setupState.keyFiles[label] = path.resolve(file);
    return kp;
  }
  return L.keypairFromSeed(L.deriveSeed(opts.seed, label));
}

function setupTx(instructions, signers) {
  const payer = setupState.platform;
  const { bytes, signature } = L.buildTransaction(payer, instructions, chain.blockhash, [payer, ...signers]);
  const tx = { bytes, parsed: L.parseTransaction(bytes), signature, blockhash: chain.blockhash };
  const sim = simulateInSvm(tx);
  if (sim instanceof FailedTransactionMetadata) {
    throw new Error(`setup transaction failed: ${JSON.stringify(errJson(sim.err()))}\n${sim.meta().logs().join('\n')}`);
  }
  execute(tx, 'setup');
  return signature;
}

function airdrop(pubkey, lamports) {
  svm.expireBlockhash(); // airdrops are deterministic transactions: make each one new
  const r = svm.airdrop(pubkey, BigInt(lamports));
  if (!r || r instanceof FailedTransactionMetadata) {
    throw new RpcError(-32603, `airdrop failed: ${r ? JSON.stringify(errJson(r.err())) : 'no result'}`);
  }
  const sig = L.b58encode(Buffer.from(r.signature()));
  record(sig, 'airdrop', null, { fee: 5000, logs: r.logs() });
  stats.airdrops++;
  return sig;
}

function setupBase() {
  const platform = loadOrDeriveKey('platform');
  setupState.platform = platform;
  setupState.treasury = loadOrDeriveKey('treasury');
  setupState.energyMint = loadOrDeriveKey('energy-mint');
  setupState.paymentMint = loadOrDeriveKey('payment-mint');
  airdrop(platform.publicKey, opts.platformLamports);
  const rent = svm.minimumBalanceForRentExemption(BigInt(MINT_LEN));
  const ixs = [];
  for (const [mint, dec] of [[setupState.energyMint, 3], [setupState.paymentMint, 6]]) {
    if (svm.getAccount(mint.publicKey)) continue;
    ixs.push(L.ix.createAccount(platform.publicKey, mint.publicKey, rent, MINT_LEN, L.PROGRAM_KEYS.token));
    ixs.push(L.ix.initializeMint2(mint.publicKey, dec, platform.publicKey));
  }
  const treasuryAta = L.associatedTokenAddress(setupState.treasury.publicKey, setupState.paymentMint.publicKey);
  ixs.push(L.ix.createAtaIdempotent(platform.publicKey, treasuryAta, setupState.treasury.publicKey, setupState.paymentMint.publicKey));
  // the vaults: the platform's associated token account of each mint holds what users deposit
  const em = setupState.energyMint.publicKey;
  const pm = setupState.paymentMint.publicKey;
  const vaultEnergy = L.associatedTokenAddress(platform.publicKey, em);
  const vaultPayment = L.associatedTokenAddress(platform.publicKey, pm);
  ixs.push(L.ix.createAtaIdempotent(platform.publicKey, vaultEnergy, platform.publicKey, em));
  ixs.push(L.ix.createAtaIdempotent(platform.publicKey, vaultPayment, platform.publicKey, pm));
  if (opts.vaultEnergyAmount > 0) ixs.push(L.ix.mintToChecked(em, vaultEnergy, platform.publicKey, BigInt(opts.vaultEnergyAmount), 3));
  if (opts.vaultPaymentAmount > 0) ixs.push(L.ix.mintToChecked(pm, vaultPayment, platform.publicKey, BigInt(opts.vaultPaymentAmount), 6));
  setupTx(ixs, [setupState.energyMint, setupState.paymentMint]);
  setupState.treasuryAccount = treasuryAta;
  setupState.vaults = { energy: vaultEnergy, payment: vaultPayment };
}

// Write a token account's delegate directly (for external wallets whose key we lack).
function forceDelegate(tokenAccount, delegate, amount) {
  const acc = svm.getAccount(tokenAccount);
  const data = Buffer.from(acc.data());
  data.writeUInt32LE(1, 72);
  delegate.copy(data, 76);
  data.writeBigUInt64LE(amount, 121);
  svm.setAccount(tokenAccount, new Account(acc.lamports(), data, acc.owner(), acc.executable(), 0n));
}

// spec: { name, pubkey?: base58, energyAmount?, paymentAmount?, approve? = true,
//         tokenAccounts? = true }. approve false: the platform is not the accounts' delegate;
// tokenAccounts false: no token accounts at all (nothing minted, nothing approved).
function addUser(spec) {
  const name = String(spec.name || '');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw invalidParams(`Invalid params: bad user name "${name}"`);
  if (setupState.users.some((u) => u.name === name)) throw invalidParams(`Invalid params: user "${name}" exists`);
  const platform = setupState.platform;
  let kp = null;
  let wallet;
  if (spec.pubkey) {
    wallet = L.pubkeyFrom(spec.pubkey);
    if (!wallet) throw invalidParams(`Invalid params: bad pubkey for user "${name}"`);
  } else {
    kp = loadOrDeriveKey(`user-${name}`);
    wallet = kp.publicKey;
  }
  const accounts = spec.tokenAccounts ?? true;
  const approving = accounts && (spec.approve ?? true);
  if (typeof accounts !== 'boolean' || typeof approving !== 'boolean') {
    throw invalidParams('Invalid params: approve and tokenAccounts are booleans');
  }
  const energyAmount = accounts ? BigInt(spec.energyAmount ?? opts.energyAmount) : 0n;
  const paymentAmount = accounts ? BigInt(spec.paymentAmount ?? opts.paymentAmount) : 0n;
  const approve = BigInt(opts.approveAmount);
  const em = setupState.energyMint.publicKey;
  const pm = setupState.paymentMint.publicKey;
  const ea = L.associatedTokenAddress(wallet, em);
  const pa = L.associatedTokenAddress(wallet, pm);
  const ixs = accounts ? [
    L.ix.createAtaIdempotent(platform.publicKey, ea, wallet, em),
    L.ix.createAtaIdempotent(platform.publicKey, pa, wallet, pm),
  ] : [];
  if (energyAmount > 0n) ixs.push(L.ix.mintToChecked(em, ea, platform.publicKey, energyAmount, 3));
  if (paymentAmount > 0n) ixs.push(L.ix.mintToChecked(pm, pa, platform.publicKey, paymentAmount, 6));
  if (opts.userLamports > 0) ixs.push(L.ix.systemTransfer(platform.publicKey, wallet, opts.userLamports));
  if (kp && approving) {
    ixs.push(L.ix.approveChecked(ea, em, platform.publicKey, wallet, approve, 3));
    ixs.push(L.ix.approveChecked(pa, pm, platform.publicKey, wallet, approve, 6));
    setupTx(ixs, [kp]);
  } else {
    if (ixs.length) setupTx(ixs, []);
    if (approving) {
      forceDelegate(ea, platform.publicKey, approve);
      forceDelegate(pa, platform.publicKey, approve);
    }
  }
  const user = {
    name, wallet: L.b58encode(wallet), walletSecretSeedHex: kp ? kp.seed.toString('hex') : null,
    walletKeypairFile: (kp && setupState.keyFiles[`user-${name}`]) || null,
    energyAccount: L.b58encode(ea), paymentAccount: L.b58encode(pa),
    energyAmount: Number(energyAmount), paymentAmount: Number(paymentAmount),
    tokenAccounts: accounts, approved: approving,
  };
  setupState.users.push(user);
  return user;
}

function setupJson() {
  const k = (kp, label) => ({
    pubkey: kp.address, secretSeedHex: kp.seed.toString('hex'), keypairFile: setupState.keyFiles[label] || null,
  });
  return {
    version: 1,
    rpcUrl: server && server.address() ? `http://${opts.host}:${boundPort}` : null,
    seed: opts.seed,
    programs: {
      token: L.PROGRAMS.token, associatedToken: L.PROGRAMS.ata, memo: L.PROGRAMS.memo,
      system: L.PROGRAMS.system, computeBudget: L.PROGRAMS.computeBudget,
    },
    platform: k(setupState.platform, 'platform'),
    treasury: { ...k(setupState.treasury, 'treasury'), paymentAccount: L.b58encode(setupState.treasuryAccount) },
    energyMint: { address: setupState.energyMint.address, decimals: 3, mintAuthority: setupState.platform.address },
    paymentMint: { address: setupState.paymentMint.address, decimals: 6, mintAuthority: setupState.platform.address },
    vaults: {
      owner: setupState.platform.address,
      energy: L.b58encode(setupState.vaults.energy),
      payment: L.b58encode(setupState.vaults.payment),
    },
    delegate: setupState.platform.address,
    approveAmount: opts.approveAmount,
    users: setupState.users,
    slotMs: faults.slotMs,
    blockhashValidity: faults.blockhashValidity,
    feeLamportsPerSignature: 5000,
  };
}

function writeSetupFile() {
  if (!opts.setupOut) return;
  const tmp = `${opts.setupOut}.tmp${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(setupJson(), null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, opts.setupOut);
}

// ------------------------------------------------------------------ admin
const FAULT_KEYS = {
  http429Rate: 'rate', http429Every: 'count', http5xxRate: 'rate', http5xxEvery: 'count',
  unhealthyRate: 'rate', retryAfterS: 'count', pausedMs: 'count', pauseMode: 'mode',
  confirmDelayMs: 'count', landDelayMs: 'count', dropRate: 'rate', blockhashValidity: 'count',
  slotMs: 'count', faultMethods: 'list', faultSeed: 'count',
};

function faultView() {
  return { ...faults, pausedRemainingMs: Math.max(0, pauseUntil - Date.now()) };
}

function objParam(params) {
  const p = Array.isArray(params) ? params[0] : params;
  if (p === undefined || p === null) return {};
  if (typeof p !== 'object' || Array.isArray(p)) throw invalidParams('Invalid params: expected an object');
  return p;
}

function setFaults(params) {
  const p = objParam(params);
  for (const [key, val] of Object.entries(p)) {
    const kind = FAULT_KEYS[key];
    if (!kind) throw invalidParams(`Invalid params: unknown fault "${key}"`);
    if (kind === 'rate' && !(typeof val === 'number' && val >= 0 && val <= 1)) throw invalidParams(`Invalid params: ${key} must be within 0..1`);
    if (kind === 'count' && !(Number.isInteger(val) && val >= 0)) throw invalidParams(`Invalid params: ${key} must be an integer >= 0`);
    if (kind === 'mode' && !['hang', 'reset', 'refuse'].includes(val)) throw invalidParams(`Invalid params: ${key} must be hang, reset or refuse`);
    if (kind === 'list' && !(Array.isArray(val) && val.every((x) => typeof x === 'string'))) throw invalidParams(`Invalid params: ${key} must be a list of method names`);
    if (key === 'blockhashValidity' && val < 1) throw invalidParams('Invalid params: blockhashValidity must be >= 1');
  }
  const order = Object.keys(p).sort((a, b) => (a === 'pausedMs') - (b === 'pausedMs')); // pause last
  for (const key of order) {
    const val = p[key];
    if (key === 'pausedMs') { setPause(val); continue; }
    if (key === 'faultSeed') { rngState = val >>> 0; continue; }
    faults[key] = val;
    if (key === 'slotMs') startSlotTimer();
    if (key === 'blockhashValidity') newBlock(); // the next getLatestBlockhash carries the new validity
  }
  log(`faults: ${JSON.stringify(p)}`);
  return faultView();
}

function resetFaults() {
  Object.assign(faults, {
    http429Rate: 0, http429Every: 0, http5xxRate: 0, http5xxEvery: 0, unhealthyRate: 0,
    confirmDelayMs: 0, landDelayMs: 0, dropRate: 0, faultMethods: [],
    blockhashValidity: startFaults.blockhashValidity, pauseMode: startFaults.pauseMode,
    retryAfterS: startFaults.retryAfterS,
  });
  newBlock(); // the next getLatestBlockhash carries the start validity again
  if (faults.slotMs !== startFaults.slotMs) { faults.slotMs = startFaults.slotMs; startSlotTimer(); }
  setPause(0);
  log('faults: reset');
  return faultView();
}

function listTransactions(params) {
  const p = objParam(params);
  const since = Number.isInteger(p.since) ? p.since : 0;
  const limit = Number.isInteger(p.limit) ? Math.min(p.limit, 100000) : 1000;
  const kinds = p.kinds || ['tx'];
  const now = Date.now();
  const out = [];
  let i = Math.max(0, since);
  for (; i < records.length && out.length < limit; i++) {
    const r = records[i];
    if (!kinds.includes(r.kind)) continue;
    if (p.memoContains && !r.memos.some((m) => m.includes(p.memoContains))) continue;
    if (p.failedOnly && r.err === null) continue;
    const st = statusOf(r, now);
    out.push({
      index: r.index, signature: r.signature, kind: r.kind, slot: r.slot, blockHeight: r.blockHeight,
      blockTime: Math.floor(r.landedAt / 1000), err: r.err, memos: r.memos,
      confirmationStatus: st.confirmationStatus,
    });
  }
  return { transactions: out, next: i, total: records.length };
}

function statsView() {
  return {
    ...stats, byMethod: { ...stats.byMethod }, uptimeMs: Date.now() - chain.started, slot: chain.slot,
    blockHeight: chain.blockHeight, recorded: records.length, pendingLandings,
    heldRequests: held.length, paused: pauseUntil > Date.now(),
  };
}

// ------------------------------------------------------------------ dispatch
const METHODS = {
  getHealth: () => 'ok',
  getVersion: () => ({ 'solana-core': `2.2.0-mce-ledger-${VERSION}`, 'feature-set': 0 }),
  getGenesisHash: () => L.b58encode(crypto.createHash('sha256').update(`mce-ledger:${opts.seed}:genesis`).digest()),
  getSlot: () => chain.slot,
  getBlockHeight: () => chain.blockHeight,
  getTransactionCount: () => records.length,
  getEpochInfo: () => ({
    absoluteSlot: chain.slot, blockHeight: chain.blockHeight, epoch: 0, slotIndex: chain.slot,
    slotsInEpoch: 432000, transactionCount: records.length,
  }),
  getLatestBlockhash: () => ctx({
    blockhash: chain.blockhash, lastValidBlockHeight: chain.blockhashes.get(chain.blockhash).lastValid,
  }),
  isBlockhashValid: (params) => {
    if (!Array.isArray(params) || typeof params[0] !== 'string') throw invalidParams('Invalid params: expected a blockhash');
    if (!L.pubkeyFrom(params[0])) throw invalidParams('Invalid param: Invalid');
    return ctx(blockhashValid(params[0]));
  },
  getFeeForMessage: (params) => {
    if (!Array.isArray(params) || typeof params[0] !== 'string') throw invalidParams('Invalid params: expected a message');
    const msg = Buffer.from(params[0], 'base64');
    const nsig = msg.length > 0 ? (msg[0] & 0x80 ? msg[1] : msg[0]) : 0;
    return ctx(nsig * 5000);
  },
  getMinimumBalanceForRentExemption: (params) => {
    const n = Array.isArray(params) ? params[0] : undefined;
    if (!Number.isInteger(n) || n < 0) throw invalidParams('Invalid params: expected a data length');
    return Number(svm.minimumBalanceForRentExemption(BigInt(n)));
  },
  getRecentPrioritizationFees: () => [],
  getBalance: (params) => {
    if (!Array.isArray(params)) throw invalidParams('Invalid params: expected a pubkey');
    const b = svm.getBalance(pubkeyParam(params[0]));
    return ctx(b === null ? 0 : Number(b));
  },
  getAccountInfo: (params) => {
    if (!Array.isArray(params)) throw invalidParams('Invalid params: expected a pubkey');
    const cfg = cfgOf(params, 1);
    const acc = svm.getAccount(pubkeyParam(params[0]));
    return ctx(acc && acc.lamports() > 0n ? encodeAccount(acc, cfg.encoding || 'base64') : null);
  },
  getMultipleAccounts: (params) => {
    if (!Array.isArray(params) || !Array.isArray(params[0])) throw invalidParams('Invalid params: expected a list of pubkeys');
    if (params[0].length > 100) throw invalidParams('Too many inputs provided; max 100');
    const cfg = cfgOf(params, 1);
    return ctx(params[0].map((k) => {
      const acc = svm.getAccount(pubkeyParam(k));
      return acc && acc.lamports() > 0n ? encodeAccount(acc, cfg.encoding || 'base64') : null;
    }));
  },
  getTokenAccountBalance: (params) => {
    if (!Array.isArray(params)) throw invalidParams('Invalid params: expected a pubkey');
    const acc = svm.getAccount(pubkeyParam(params[0]));
    if (!acc) throw invalidParams('Invalid param: could not find account');
    const ta = L.b58encode(Buffer.from(acc.owner())) === L.PROGRAMS.token && parseTokenAccount(acc.data());
    if (!ta) throw invalidParams('Invalid param: not a Token account');
    return ctx(tokenAmount(ta.amount, mintDecimals(ta.mint)));
  },
  getTokenSupply: (params) => {
    if (!Array.isArray(params)) throw invalidParams('Invalid params: expected a pubkey');
    const acc = svm.getAccount(pubkeyParam(params[0]));
    const m = acc && parseMint(acc.data());
    if (!m) throw invalidParams('Invalid param: not a Token mint');
    return ctx(tokenAmount(m.supply, m.decimals));
  },
  requestAirdrop: (params) => {
    if (!Array.isArray(params)) throw invalidParams('Invalid params: expected a pubkey and lamports');
    const pk = pubkeyParam(params[0]);
    if (!Number.isSafeInteger(params[1]) || params[1] <= 0) throw invalidParams('Invalid params: lamports');
    const sig = airdrop(pk, params[1]);
    keep({ k: 'airdrop', pk: L.b58encode(pk), l: params[1] });
    return sig;
  },
  sendTransaction,
  simulateTransaction,
  getSignatureStatuses: (params) => {
    if (!Array.isArray(params) || !Array.isArray(params[0])) throw invalidParams('Invalid params: expected a list of signatures');
    if (params[0].length > 256) throw invalidParams('Too many inputs provided; max 256');
    const cfg = cfgOf(params, 1);
    const now = Date.now();
    return ctx(params[0].map((s) => {
      if (typeof s !== 'string') throw invalidParams('Invalid param: Invalid');
      const r = bySig.get(s);
      if (!r) {
        const b = L.b58decode(s);
        if (!b || b.length !== 64) throw invalidParams('Invalid param: Invalid');
        return null;
      }
      // without searchTransactionHistory a node only knows its recent status cache
      if (!cfg.searchTransactionHistory && chain.slot - r.slot > 300) return null;
      return statusOf(r, now);
    }));
  },
  getTransaction,
  // ---- admin (never subject to faults)
  mce_setFaults: setFaults,
  mce_getFaults: () => faultView(),
  mce_resetFaults: resetFaults,
  mce_stats: () => statsView(),
  mce_listTransactions: listTransactions,
  mce_advanceSlots: (params) => {
    const p = Array.isArray(params) ? params[0] : params && params.n;
    const n = p === undefined ? 1 : p;
    if (!Number.isInteger(n) || n < 0 || n > 1000000) throw invalidParams('Invalid params: expected a slot count');
    for (let i = 0; i < n; i++) newBlock();
    keep({ k: 'height' });
    return { slot: chain.slot, blockHeight: chain.blockHeight };
  },
  mce_setBalance: (params) => {
    const p = objParam(params);
    const pk = pubkeyParam(p.pubkey);
    if (!Number.isSafeInteger(p.lamports) || p.lamports < 0) throw invalidParams('Invalid params: lamports');
    setBalance(pk, p.lamports);
    keep({ k: 'balance', pk: L.b58encode(pk), l: p.lamports });
    return Number(svm.getBalance(pk) ?? 0n);
  },
  mce_setup: () => setupJson(),
  mce_addUser: (params) => {
    const spec = objParam(params);
    const u = addUser(spec);
    keep({ k: 'user', spec });
    writeSetupFile();
    return u;
  },
};

function setBalance(pk, lamports) {
  const acc = svm.getAccount(pk);
  svm.setAccount(pk, acc
    ? new Account(BigInt(lamports), acc.data(), acc.owner(), acc.executable(), 0n)
    : new Account(BigInt(lamports), new Uint8Array(0), L.PROGRAM_KEYS.system, false, 0n));
}

// ------------------------------------------------------------------ state kept between runs
// --state FILE keeps the chain across restarts, so that a restarted local run (tools/run.sh
// keeps FILE in its folder) never holds a settlement the chain does not know. The setup is
// remade from the same keys; everything after it (each landed transaction, airdrop, balance
// set and user added, with the block height it came at) is appended to FILE as one JSON line
// when it happens, and replayed through the same programs at the next start. A line is
// written before the call is answered, so a kill -9 loses nothing that was answered; a line
// torn by one is dropped at the next start. The first line names the setup (platform and
// mints): a FILE made with other keys is refused rather than replayed against the wrong mints.
const stateLog = { fd: -1 };
function keep(entry) {
  if (stateLog.fd < 0) return;
  fs.writeSync(stateLog.fd, JSON.stringify({ h: chain.blockHeight, ...entry }) + '\n');
}

function setupNames() {
  return {
    platform: setupState.platform.address, energyMint: setupState.energyMint.address,
    paymentMint: setupState.paymentMint.address,
  };
}

function replayOne(e) {
  if (Number.isInteger(e.h) && e.h > chain.blockHeight) {
    chain.blockHeight = e.h - 1;
    newBlock();
  }
  switch (e.k) {
    case 'tx': {
      const bytes = Buffer.from(e.b, 'base64');
      const parsed = L.parseTransaction(bytes);
      const tx = { bytes, parsed, signature: L.b58encode(parsed.signatures[0]), blockhash: L.b58encode(parsed.recentBlockhash) };
      if (!bySig.has(tx.signature)) execute(tx);
      break;
    }
    case 'airdrop': airdrop(L.pubkeyFrom(e.pk), e.l); break;
    case 'balance': setBalance(L.pubkeyFrom(e.pk), e.l); break;
    case 'user': if (!setupState.users.some((u) => u.name === e.spec.name)) addUser(e.spec); break;
    case 'height': break;
    default: throw new Error(`unknown entry ${JSON.stringify(e.k)}`);
  }
  stats.replayed++;
}

// Replays FILE if it exists (else starts it with the setup's names) and opens it to append.
function openState(file) {
  const names = setupNames();
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { if (e.code !== 'ENOENT') throw e; }
  let good = 0; // bytes of whole, replayed lines
  if (text) {
    const lines = text.split('\n');
    const head = JSON.parse(lines[0]);
    for (const key of Object.keys(names)) {
      if (head[key] !== names[key]) {
        throw new Error(`${file} was made with another setup (${key} ${head[key]}, now ${names[key]}): ` +
          'give the same --keys-dir or --seed, or remove it to start a fresh chain');
      }
    }
    good = lines[0].length + 1;
    svm.setSigverify(false); // every line was verified when it first landed
    for (let i = 1; i < lines.length - 1; i++) {
      let e;
      try { e = JSON.parse(lines[i]); } catch { break; } // torn by a kill: the rest is lost
      replayOne(e);
      good += lines[i].length + 1;
    }
    svm.setSigverify(true);
    if (good < text.length) {
      log(`${file}: dropping a torn last line`);
      fs.truncateSync(file, Buffer.byteLength(text.slice(0, good)));
    }
  }
  stateLog.fd = fs.openSync(file, 'a', 0o600);
  if (!text) fs.writeSync(stateLog.fd, JSON.stringify({ k: 'setup', ...names }) + '\n');
  return stats.replayed;
}

function callOne(req) {
  const id = req && typeof req === 'object' && 'id' in req ? req.id : null;
  if (!req || typeof req !== 'object' || Array.isArray(req) || req.jsonrpc !== '2.0' || typeof req.method !== 'string') {
    return { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid request' }, id };
  }
  stats.rpcCalls++;
  stats.byMethod[req.method] = (stats.byMethod[req.method] || 0) + 1;
  const fn = Object.prototype.hasOwnProperty.call(METHODS, req.method) ? METHODS[req.method] : null;
  if (!fn) return { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id };
  if (!req.method.startsWith('mce_') && faults.unhealthyRate > 0 && faultApplies([req]) && rand() < faults.unhealthyRate) {
    stats.unhealthy++;
    return { jsonrpc: '2.0', error: { code: -32005, message: 'Node is unhealthy', data: {} }, id };
  }
  try {
    const result = fn(req.params === undefined ? [] : req.params);
    vlog(`${req.method} ok`);
    return { jsonrpc: '2.0', result, id };
  } catch (e) {
    if (e instanceof RpcError) {
      vlog(`${req.method} error ${e.code} ${e.message}`);
      const error = { code: e.code, message: e.message };
      if (e.data !== undefined) error.data = e.data;
      return { jsonrpc: '2.0', error, id };
    }
    log(`internal error in ${req.method}: ${e.stack || e}`);
    return { jsonrpc: '2.0', error: { code: -32603, message: `Internal error: ${e.message}` }, id };
  }
}

function faultApplies(calls) {
  return calls.some((c) => c && typeof c.method === 'string' && !c.method.startsWith('mce_') &&
    (faults.faultMethods.length === 0 || faults.faultMethods.includes(c.method)));
}

// ------------------------------------------------------------------ HTTP
const held = []; // requests held by a "hang" pause
let boundPort = opts.port;
let refusing = false;
let pauseTimer = null;
let faultCounter = 0;
let http5xxToggle = 0;

function setPause(ms) {
  if (pauseTimer) clearTimeout(pauseTimer);
  pauseTimer = null;
  if (ms > 0) {
    pauseUntil = Date.now() + ms;
    pauseTimer = setTimeout(endPause, ms);
    log(`paused for ${ms} ms (${faults.pauseMode})`);
    if (faults.pauseMode === 'refuse') setImmediate(startRefusing); // let an admin answer go out first
  } else {
    endPause();
  }
}

function endPause() {
  if (pauseTimer) clearTimeout(pauseTimer);
  pauseTimer = null;
  const was = pauseUntil > 0;
  pauseUntil = 0;
  if (refusing) stopRefusing();
  const list = held.splice(0);
  for (const h of list) {
    if (!h.res.destroyed && !h.req.socket.destroyed) serve(h.req, h.res, h.calls, h.batch);
  }
  if (was) log(`pause over (${list.length} held requests)`);
}

const sockets = new Set();
function startRefusing() {
  refusing = true;
  server.close();
  for (const s of sockets) s.destroy();
}
function stopRefusing() {
  refusing = false;
  server.listen(boundPort, opts.host);
}

function reply(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function serve(req, res, calls, batch) {
  const out = [];
  for (const c of calls) out.push(callOne(c));
  reply(res, 200, batch ? out : out[0]);
}

function onRequest(req, res) {
  stats.httpRequests++;
  if (req.method === 'GET' && (req.url === '/health' || req.url === '/')) {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok');
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { Allow: 'POST' });
    res.end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > 16 * 1024 * 1024) { req.destroy(); return; }
    chunks.push(c);
  });
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      reply(res, 200, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
      return;
    }
    const batch = Array.isArray(body);
    const calls = batch ? body : [body];
    if (batch && calls.length === 0) {
      reply(res, 200, { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid request' }, id: null });
      return;
    }
    if (faultApplies(calls)) {
      if (pauseUntil > Date.now()) {
        stats.pausedRequests++;
        if (faults.pauseMode === 'hang') { held.push({ req, res, calls, batch }); return; }
        req.socket.destroy();
        return;
      }
      faultCounter++;
      if ((faults.http429Every > 0 && faultCounter % faults.http429Every === 0) ||
          (faults.http429Rate > 0 && rand() < faults.http429Rate)) {
        stats.http429++;
        reply(res, 429, { jsonrpc: '2.0', error: { code: 429, message: 'Too many requests for a specific RPC call' }, id: batch ? null : (body.id ?? null) },
          { 'Retry-After': String(faults.retryAfterS) });
        return;
      }
      if ((faults.http5xxEvery > 0 && faultCounter % faults.http5xxEvery === 0) ||
          (faults.http5xxRate > 0 && rand() < faults.http5xxRate)) {
        stats.http5xx++;
        const code = (http5xxToggle++ % 2) ? 503 : 500;
        res.writeHead(code, code === 503 ? { 'Content-Type': 'text/plain', 'Retry-After': String(faults.retryAfterS) } : { 'Content-Type': 'text/plain' });
        res.end(code === 503 ? 'Service Unavailable' : 'Internal Server Error');
        return;
      }
    }
    serve(req, res, calls, batch);
  });
}

const server = http.createServer({ keepAliveTimeout: 30000 }, onRequest);
server.headersTimeout = 60000;
server.requestTimeout = 0; // a "hang" pause may hold a request for long
server.on('connection', (s) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  if (refusing) s.destroy();
});
server.on('error', (e) => {
  log(`server error: ${e.message}`);
  process.exit(1);
});

// ------------------------------------------------------------------ start
try {
  setupBase();
  for (let i = 1; i <= opts.users; i++) addUser({ name: `user${i}` });
  for (const u of opts.user) {
    const c = u.indexOf(':');
    addUser(c < 0 ? { name: u } : { name: u.slice(0, c), pubkey: u.slice(c + 1) });
  }
  if (opts.state) {
    const t0 = Date.now();
    const n = openState(opts.state);
    if (n) log(`${opts.state}: replayed ${n} changes in ${Date.now() - t0} ms (block height ${chain.blockHeight})`);
  }
} catch (e) {
  log(`setup failed: ${e.message}`);
  process.exit(1);
}

server.listen(opts.port, opts.host, () => {
  boundPort = server.address().port;
  startSlotTimer();
  if (opts.pausedMs > 0) setPause(opts.pausedMs);
  try {
    writeSetupFile();
  } catch (e) {
    log(`cannot write ${opts.setupOut}: ${e.message}`);
    process.exit(1);
  }
  log(`ready in ${Date.now() - chain.started} ms: ${setupState.users.length} users, platform ${setupState.platform.address}, energy mint ${setupState.energyMint.address}, payment mint ${setupState.paymentMint.address}${opts.setupOut ? `, setup in ${opts.setupOut}` : ''}`);
  process.stdout.write(`ledger: listening on ${opts.host}:${boundPort}\n`);
});

function shutdown(sig) {
  log(`${sig}: stopping`);
  keep({ k: 'height' });
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.stdout.on('error', () => {}); // a closed stdout pipe must not kill the ledger
process.on('uncaughtException', (e) => log(`uncaught: ${e.stack || e}`));

if (opts.watchPid > 0) {
  setInterval(() => {
    try { process.kill(opts.watchPid, 0); } catch (e) {
      if (e.code === 'ESRCH') { log(`process ${opts.watchPid} is gone: stopping`); process.exit(0); }
    }
  }, 500).unref();
}
