'use strict';
// Smoke test of the local ledger: `node tools/ledger/test.js` (exit status 0 = all passed).
// Starts ledger.js, checks its setup, settles a real TransferChecked + Memo transaction
// built with @solana/kit, the duplicate and error answers, and every fault knob.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const kit = require('@solana/kit');
const token = require('@solana-program/token');
const L = require('./lib');
const { startLedger, post, call, rpc, waitFor } = require('./testutil');

const MEMO = 'MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr';
let tmp;
let led;
let port;
let setup;
let platformSigner;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mce-ledger-test-'));
  const t0 = Date.now();
  led = await startLedger(['--port', '0', '--users', '4', '--slot-ms', '50',
    '--setup-out', path.join(tmp, 'setup.json'), '--keys-dir', path.join(tmp, 'keys'),
    '--watch-pid', String(process.pid)]);
  console.log(`# ledger ready in ${Date.now() - t0} ms on port ${led.port}`);
  port = led.port;
  setup = JSON.parse(fs.readFileSync(path.join(tmp, 'setup.json'), 'utf8'));
  platformSigner = await kit.createKeyPairSignerFromPrivateKeyBytes(Buffer.from(setup.platform.secretSeedHex, 'hex'));
});

after(async () => {
  if (led) await led.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function latest() {
  return (await rpc(port, 'getLatestBlockhash', [{ commitment: 'confirmed' }])).value;
}
async function tokenBalance(acct) {
  return BigInt((await rpc(port, 'getTokenAccountBalance', [acct])).value.amount);
}
async function status(sig) {
  return (await rpc(port, 'getSignatureStatuses', [[sig], { searchTransactionHistory: true }])).value[0];
}
async function waitConfirmed(sig) {
  return waitFor(`confirmation of ${sig}`, async () => {
    const s = await status(sig);
    return s && (s.confirmationStatus === 'confirmed' || s.confirmationStatus === 'finalized') && s;
  });
}
async function resetFaults() { await rpc(port, 'mce_resetFaults', []); }

// A settlement built with @solana/kit: energy seller->buyer, payment buyer->seller,
// fee buyer->treasury, all with the platform as delegate authority, plus a memo.
async function settlementTx({ seller, buyer, wh, value, fee, memo, blockhash }) {
  const bh = blockhash || await latest();
  const ixs = [
    token.getTransferCheckedInstruction({ source: kit.address(seller.energyAccount), mint: kit.address(setup.energyMint.address), destination: kit.address(buyer.energyAccount), authority: platformSigner, amount: BigInt(wh), decimals: 3 }),
    token.getTransferCheckedInstruction({ source: kit.address(buyer.paymentAccount), mint: kit.address(setup.paymentMint.address), destination: kit.address(seller.paymentAccount), authority: platformSigner, amount: BigInt(value - fee), decimals: 6 }),
    token.getTransferCheckedInstruction({ source: kit.address(buyer.paymentAccount), mint: kit.address(setup.paymentMint.address), destination: kit.address(setup.treasury.paymentAccount), authority: platformSigner, amount: BigInt(fee), decimals: 6 }),
    { programAddress: kit.address(MEMO), accounts: [], data: new TextEncoder().encode(memo) },
  ];
  const msg = kit.pipe(
    kit.createTransactionMessage({ version: 'legacy' }),
    (m) => kit.setTransactionMessageFeePayerSigner(platformSigner, m),
    (m) => kit.setTransactionMessageLifetimeUsingBlockhash({ blockhash: bh.blockhash, lastValidBlockHeight: BigInt(bh.lastValidBlockHeight) }, m),
    (m) => kit.appendTransactionMessageInstructions(ixs, m),
  );
  const signed = await kit.signTransactionMessageWithSigners(msg);
  return { b64: kit.getBase64EncodedWireTransaction(signed), signature: kit.getSignatureFromTransaction(signed) };
}

// A memo-only transaction built by hand with lib.js.
function memoTx(text, blockhash, payer) {
  const kp = payer || L.keypairFromSeed(Buffer.from(setup.platform.secretSeedHex, 'hex'));
  return L.buildTransaction(kp, [L.ix.memo(text)], blockhash, [kp]);
}

test('ready line is the only stdout; setup file describes keys and accounts', async () => {
  assert.equal(led.extraStdout(), '');
  assert.equal(setup.version, 1);
  assert.equal(setup.rpcUrl, `http://127.0.0.1:${port}`);
  assert.equal(setup.energyMint.decimals, 3);
  assert.equal(setup.paymentMint.decimals, 6);
  assert.equal(setup.users.length, 4);
  assert.equal(platformSigner.address, setup.platform.pubkey);
  assert.equal(setup.delegate, setup.platform.pubkey);
  // keypair files in Solana CLI format
  const kf = JSON.parse(fs.readFileSync(setup.platform.keypairFile, 'utf8'));
  assert.equal(Buffer.from(kf.slice(0, 32)).toString('hex'), setup.platform.secretSeedHex);
  // token accounts are the associated token addresses (checked against @solana/kit)
  for (const u of setup.users) {
    const [ea] = await token.findAssociatedTokenPda({ owner: kit.address(u.wallet), mint: kit.address(setup.energyMint.address), tokenProgram: token.TOKEN_PROGRAM_ADDRESS });
    const [pa] = await token.findAssociatedTokenPda({ owner: kit.address(u.wallet), mint: kit.address(setup.paymentMint.address), tokenProgram: token.TOKEN_PROGRAM_ADDRESS });
    assert.equal(u.energyAccount, ea);
    assert.equal(u.paymentAccount, pa);
    const kp = L.keypairFromSeed(Buffer.from(u.walletSecretSeedHex, 'hex'));
    assert.equal(kp.address, u.wallet);
  }
  // deterministic: same seed, same addresses (derivation documented in README)
  assert.equal(L.keypairFromSeed(L.deriveSeed('mce-local', 'platform')).address, setup.platform.pubkey);
  assert.equal(L.keypairFromSeed(L.deriveSeed('mce-local', 'user-user1')).address, setup.users[0].wallet);
});

test('read methods answer in the shapes of a Solana node (through @solana/kit rpc)', async () => {
  const k = kit.createSolanaRpc(`http://127.0.0.1:${port}`);
  assert.equal(await k.getHealth().send(), 'ok');
  const slot = await k.getSlot().send();
  const height = await k.getBlockHeight().send();
  assert.ok(slot > height);
  const bh = await k.getLatestBlockhash().send();
  assert.equal(bh.value.lastValidBlockHeight - (await k.getBlockHeight().send()) <= 150n, true);
  assert.equal((await k.isBlockhashValid(bh.value.blockhash).send()).value, true);
  assert.ok((await k.getBalance(kit.address(setup.platform.pubkey)).send()).value > 0n);
  const u1 = setup.users[0];
  const tb = (await k.getTokenAccountBalance(kit.address(u1.energyAccount)).send()).value;
  assert.equal(tb.amount, String(u1.energyAmount));
  assert.equal(tb.decimals, 3);
  assert.equal(tb.uiAmountString, String(u1.energyAmount / 1000));
  const info = (await k.getAccountInfo(kit.address(u1.paymentAccount), { encoding: 'jsonParsed' }).send()).value;
  assert.equal(info.data.parsed.info.delegate, setup.platform.pubkey);
  assert.equal(info.data.parsed.info.delegatedAmount.amount, setup.approveAmount);
  assert.equal(info.data.parsed.info.owner, u1.wallet);
  const raw = await rpc(port, 'getAccountInfo', [u1.paymentAccount, { encoding: 'base64' }]);
  assert.equal(raw.value.rentEpoch, 0);
  assert.equal(raw.value.owner, token.TOKEN_PROGRAM_ADDRESS);
  assert.equal(Buffer.from(raw.value.data[0], 'base64').length, 165);
  assert.equal((await rpc(port, 'getAccountInfo', [L.keypairFromSeed(Buffer.alloc(32, 9)).address])).value, null);
  // batch
  const r = await post(port, [
    { jsonrpc: '2.0', id: 1, method: 'getSlot' },
    { jsonrpc: '2.0', id: 'b', method: 'getBlockHeight' },
    { jsonrpc: '2.0', id: 3, method: 'noSuchMethod' },
  ]);
  assert.equal(r.body.length, 3);
  assert.equal(r.body[1].id, 'b');
  assert.equal(r.body[2].error.code, -32601);
  // parse error
  const pe = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let t = ''; res.on('data', (c) => { t += c; }); res.on('end', () => resolve(JSON.parse(t)));
    });
    req.on('error', reject);
    req.end('{not json');
  });
  assert.equal(pe.error.code, -32700);
});

test('a settlement lands once: balances move, memo recorded, resending is harmless', async () => {
  const [seller, buyer] = setup.users;
  const before = {
    se: await tokenBalance(seller.energyAccount), be: await tokenBalance(buyer.energyAccount),
    sp: await tokenBalance(seller.paymentAccount), bp: await tokenBalance(buyer.paymentAccount),
    tp: await tokenBalance(setup.treasury.paymentAccount),
  };
  const lamports0 = (await rpc(port, 'getBalance', [setup.platform.pubkey])).value;
  const tx = await settlementTx({ seller, buyer, wh: 1500, value: 300000, fee: 3000, memo: 'mce:trade=42,43' });
  const sig = await rpc(port, 'sendTransaction', [tx.b64, { encoding: 'base64', skipPreflight: false, preflightCommitment: 'confirmed', maxRetries: 0 }]);
  assert.equal(sig, tx.signature);
  const st = await waitConfirmed(sig);
  assert.equal(st.err, null);
  assert.deepEqual(st.status, { Ok: null });
  assert.equal(await tokenBalance(seller.energyAccount), before.se - 1500n);
  assert.equal(await tokenBalance(buyer.energyAccount), before.be + 1500n);
  assert.equal(await tokenBalance(seller.paymentAccount), before.sp + 297000n);
  assert.equal(await tokenBalance(buyer.paymentAccount), before.bp - 300000n);
  assert.equal(await tokenBalance(setup.treasury.paymentAccount), before.tp + 3000n);
  assert.equal((await rpc(port, 'getBalance', [setup.platform.pubkey])).value, lamports0 - 5000);

  // the memo, through mce_listTransactions and getTransaction
  const list = await rpc(port, 'mce_listTransactions', [{ memoContains: 'trade=42' }]);
  assert.equal(list.transactions.length, 1);
  assert.equal(list.transactions[0].signature, sig);
  assert.deepEqual(list.transactions[0].memos, ['mce:trade=42,43']);
  const gt = await rpc(port, 'getTransaction', [sig, { encoding: 'json', maxSupportedTransactionVersion: 0 }]);
  assert.ok(gt.meta.logMessages.some((l) => l.includes('mce:trade=42,43')));
  assert.equal(gt.transaction.signatures[0], sig);
  const gt64 = await rpc(port, 'getTransaction', [sig, { encoding: 'base64' }]);
  assert.equal(gt64.transaction[0], tx.b64);

  // same bytes again: with preflight AlreadyProcessed, without it the same signature; no double transfer
  const again = await call(port, 'sendTransaction', [tx.b64, { encoding: 'base64' }]);
  assert.equal(again.error.code, -32002);
  assert.equal(again.error.data.err, 'AlreadyProcessed');
  assert.match(again.error.message, /^Transaction simulation failed: /);
  assert.equal(await rpc(port, 'sendTransaction', [tx.b64, { encoding: 'base64', skipPreflight: true }]), sig);
  assert.equal(await tokenBalance(seller.energyAccount), before.se - 1500n);
  assert.equal((await rpc(port, 'getBalance', [setup.platform.pubkey])).value, lamports0 - 5000);
});

test('base58 encoding (the default) is accepted', async () => {
  const bh = await latest();
  const t = memoTx('b58 memo', bh.blockhash);
  const sig = await rpc(port, 'sendTransaction', [L.b58encode(t.bytes)]);
  assert.equal(sig, t.signature);
  await waitConfirmed(sig);
});

test('preflight failures answer -32002 with data.err; bad signature -32003; bad params -32602', async () => {
  const [a, b] = setup.users;
  // more than the balance: token program custom error 1 (InsufficientFunds) in instruction 0
  const big = await settlementTx({ seller: a, buyer: b, wh: 10 ** 12, value: 10, fee: 1, memo: 'too much' });
  let r = await call(port, 'sendTransaction', [big.b64, { encoding: 'base64' }]);
  assert.equal(r.error.code, -32002);
  assert.deepEqual(r.error.data.err, { InstructionError: [0, { Custom: 1 }] });
  assert.ok(Array.isArray(r.error.data.logs));
  assert.equal(await status(big.signature), null);

  // the same with skipPreflight: it lands with the error and costs the fee
  const lamports0 = (await rpc(port, 'getBalance', [setup.platform.pubkey])).value;
  assert.equal(await rpc(port, 'sendTransaction', [big.b64, { encoding: 'base64', skipPreflight: true }]), big.signature);
  const st = await waitFor('failed tx status', () => status(big.signature));
  assert.deepEqual(st.err, { InstructionError: [0, { Custom: 1 }] });
  assert.equal((await rpc(port, 'getBalance', [setup.platform.pubkey])).value, lamports0 - 5000);

  // expired blockhash
  const old = await latest();
  await rpc(port, 'mce_advanceSlots', [old.lastValidBlockHeight - (await rpc(port, 'getBlockHeight')) + 1]);
  assert.ok((await rpc(port, 'getBlockHeight')) > old.lastValidBlockHeight);
  assert.equal((await rpc(port, 'isBlockhashValid', [old.blockhash])).value, false);
  const expired = memoTx('expired', old.blockhash);
  r = await call(port, 'sendTransaction', [expired.bytes.toString('base64'), { encoding: 'base64' }]);
  assert.equal(r.error.code, -32002);
  assert.equal(r.error.data.err, 'BlockhashNotFound');
  // with skipPreflight it is silently dropped
  assert.equal(await rpc(port, 'sendTransaction', [expired.bytes.toString('base64'), { encoding: 'base64', skipPreflight: true }]), expired.signature);
  assert.equal(await status(expired.signature), null);

  // unknown fee payer
  const bh = await latest();
  const stranger = L.keypairFromSeed(Buffer.alloc(32, 7));
  const nf = memoTx('stranger', bh.blockhash, stranger);
  r = await call(port, 'sendTransaction', [nf.bytes.toString('base64'), { encoding: 'base64' }]);
  assert.equal(r.error.code, -32002);
  assert.equal(r.error.data.err, 'AccountNotFound');

  // fee payer without enough lamports (mce_setBalance writes an account's lamports)
  const poor = L.keypairFromSeed(Buffer.alloc(32, 8));
  assert.equal(await rpc(port, 'mce_setBalance', [{ pubkey: poor.address, lamports: 3000 }]), 3000);
  const pt = memoTx('poor', bh.blockhash, poor);
  r = await call(port, 'sendTransaction', [pt.bytes.toString('base64'), { encoding: 'base64' }]);
  assert.equal(r.error.code, -32002);
  assert.equal(r.error.data.err, 'InsufficientFundsForFee');
  // a fee payer the fee would leave below the rent-exempt minimum
  const poor2 = L.keypairFromSeed(Buffer.alloc(32, 10));
  await rpc(port, 'requestAirdrop', [poor2.address, 890880]);
  const pt2 = memoTx('poor2', bh.blockhash, poor2);
  r = await call(port, 'sendTransaction', [pt2.bytes.toString('base64'), { encoding: 'base64' }]);
  assert.equal(r.error.code, -32002);
  assert.deepEqual(r.error.data.err, { InsufficientFundsForRent: { account_index: 0 } });
  // and with skipPreflight such a transaction does not land
  await rpc(port, 'sendTransaction', [pt2.bytes.toString('base64'), { encoding: 'base64', skipPreflight: true }]);
  assert.equal(await status(pt2.signature), null);
  assert.equal((await rpc(port, 'getBalance', [poor2.address])).value, 890880);

  // bad signature
  const good = memoTx('tampered', bh.blockhash);
  const bad = Buffer.from(good.bytes);
  bad[bad.length - 1] ^= 1; // change the memo text, keep the signature
  r = await call(port, 'sendTransaction', [bad.toString('base64'), { encoding: 'base64' }]);
  assert.equal(r.error.code, -32003);

  // bad params
  for (const params of [[], ['%%%', { encoding: 'base64' }], ['AAAA', { encoding: 'base64' }],
    [good.bytes.toString('base64'), { encoding: 'hex' }], [Buffer.alloc(1300).toString('base64'), { encoding: 'base64' }]]) {
    r = await call(port, 'sendTransaction', params);
    assert.equal(r.error.code, -32602, JSON.stringify(params).slice(0, 80));
  }
  r = await call(port, 'getBalance', ['notakey']);
  assert.equal(r.error.code, -32602);
  r = await call(port, 'getSignatureStatuses', [Array(257).fill(good.signature)]);
  assert.equal(r.error.code, -32602);
  r = await call(port, 'getTokenAccountBalance', [setup.platform.pubkey]);
  assert.equal(r.error.code, -32602);
});

test('airdrops are distinct transactions', async () => {
  const who = L.keypairFromSeed(Buffer.alloc(32, 5)).address;
  const s1 = await rpc(port, 'requestAirdrop', [who, 1000000000]);
  const s2 = await rpc(port, 'requestAirdrop', [who, 1000000000]);
  assert.notEqual(s1, s2);
  assert.equal((await rpc(port, 'getBalance', [who])).value, 2000000000);
  assert.ok(await status(s2));
});

test('mce_addUser: an external wallet gets token accounts with the platform as delegate', async () => {
  const ext = L.keypairFromSeed(Buffer.alloc(32, 11));
  const u = await rpc(port, 'mce_addUser', [{ name: 'carol', pubkey: ext.address, energyAmount: 5000 }]);
  assert.equal(u.walletSecretSeedHex, null);
  assert.equal(await tokenBalance(u.energyAccount), 5000n);
  const s = JSON.parse(fs.readFileSync(path.join(tmp, 'setup.json'), 'utf8'));
  assert.ok(s.users.some((x) => x.name === 'carol'));
  setup = s;
  const tx = await settlementTx({ seller: u, buyer: setup.users[1], wh: 700, value: 1000, fee: 10, memo: 'carol sells' });
  await waitConfirmed(await rpc(port, 'sendTransaction', [tx.b64, { encoding: 'base64' }]));
  assert.equal(await tokenBalance(u.energyAccount), 4300n);
});

// One TransferChecked (+ a memo) signed by the platform: as the delegate of a user's account
// (a deposit into a vault) or as the owner of a vault (a withdrawal or a settlement from it).
async function transferTx({ source, mint, destination, amount, decimals, memo }) {
  const bh = await latest();
  const ixs = [
    token.getTransferCheckedInstruction({ source: kit.address(source), mint: kit.address(mint), destination: kit.address(destination), authority: platformSigner, amount: BigInt(amount), decimals }),
    { programAddress: kit.address(MEMO), accounts: [], data: new TextEncoder().encode(memo) },
  ];
  const msg = kit.pipe(
    kit.createTransactionMessage({ version: 'legacy' }),
    (m) => kit.setTransactionMessageFeePayerSigner(platformSigner, m),
    (m) => kit.setTransactionMessageLifetimeUsingBlockhash({ blockhash: bh.blockhash, lastValidBlockHeight: BigInt(bh.lastValidBlockHeight) }, m),
    (m) => kit.appendTransactionMessageInstructions(ixs, m),
  );
  const signed = await kit.signTransactionMessageWithSigners(msg);
  return { b64: kit.getBase64EncodedWireTransaction(signed), signature: kit.getSignatureFromTransaction(signed) };
}

test('vaults: the platform\'s token accounts take deposits as delegate and pay out as owner', async () => {
  // the vaults are the platform's associated token accounts, in the setup file
  for (const [name, mint] of [['energy', setup.energyMint.address], ['payment', setup.paymentMint.address]]) {
    const [ata] = await token.findAssociatedTokenPda({ owner: kit.address(setup.platform.pubkey), mint: kit.address(mint), tokenProgram: token.TOKEN_PROGRAM_ADDRESS });
    assert.equal(setup.vaults[name], ata);
    const info = await rpc(port, 'getAccountInfo', [ata, { encoding: 'jsonParsed' }]);
    assert.equal(info.value.data.parsed.info.owner, setup.platform.pubkey);
    assert.equal(info.value.data.parsed.info.mint, mint);
  }
  assert.equal(setup.vaults.owner, setup.platform.pubkey);
  const u = setup.users[2];
  const v0 = await tokenBalance(setup.vaults.payment);
  const u0 = await tokenBalance(u.paymentAccount);
  // a deposit: user -> vault, the platform signing as the user's delegate
  const dep = await transferTx({ source: u.paymentAccount, mint: setup.paymentMint.address, destination: setup.vaults.payment, amount: 250000, decimals: 6, memo: 'mce:d=1' });
  await waitConfirmed(await rpc(port, 'sendTransaction', [dep.b64, { encoding: 'base64' }]));
  assert.equal(await tokenBalance(setup.vaults.payment), v0 + 250000n);
  assert.equal(await tokenBalance(u.paymentAccount), u0 - 250000n);
  // a withdrawal: vault -> user, the platform signing as the vault's owner
  const wd = await transferTx({ source: setup.vaults.payment, mint: setup.paymentMint.address, destination: u.paymentAccount, amount: 100000, decimals: 6, memo: 'mce:w=1' });
  await waitConfirmed(await rpc(port, 'sendTransaction', [wd.b64, { encoding: 'base64' }]));
  assert.equal(await tokenBalance(setup.vaults.payment), v0 + 150000n);
  assert.equal(await tokenBalance(u.paymentAccount), u0 - 150000n);
  // the vault cannot pay more than it holds: custom error 1 (insufficient funds)
  const over = await transferTx({ source: setup.vaults.payment, mint: setup.paymentMint.address, destination: u.paymentAccount, amount: v0 + 150001n, decimals: 6, memo: 'mce:w=2' });
  const r = await call(port, 'sendTransaction', [over.b64, { encoding: 'base64' }]);
  assert.deepEqual(r.error.data.err, { InstructionError: [0, { Custom: 1 }] });
});

test('mce_addUser: without approval, without token accounts; deposits from them are refused', async () => {
  const na = await rpc(port, 'mce_addUser', [{ name: 'noapprove', paymentAmount: 7000, approve: false }]);
  assert.equal(na.approved, false);
  assert.equal(na.tokenAccounts, true);
  assert.equal(await tokenBalance(na.paymentAccount), 7000n);
  const info = await rpc(port, 'getAccountInfo', [na.paymentAccount, { encoding: 'jsonParsed' }]);
  assert.equal(info.value.data.parsed.info.delegate, undefined);
  // the platform is no delegate: the token program says owner does not match (custom 4)
  const dep = await transferTx({ source: na.paymentAccount, mint: setup.paymentMint.address, destination: setup.vaults.payment, amount: 1000, decimals: 6, memo: 'mce:d=2' });
  let r = await call(port, 'sendTransaction', [dep.b64, { encoding: 'base64' }]);
  assert.deepEqual(r.error.data.err, { InstructionError: [0, { Custom: 4 }] });
  const nt = await rpc(port, 'mce_addUser', [{ name: 'notokens', tokenAccounts: false }]);
  assert.equal(nt.tokenAccounts, false);
  assert.equal(nt.energyAmount, 0);
  assert.equal((await rpc(port, 'getAccountInfo', [nt.energyAccount])).value, null);
  // a withdrawal to a token account that does not exist is refused (nothing is created)
  const wd = await transferTx({ source: setup.vaults.energy, mint: setup.energyMint.address, destination: nt.energyAccount, amount: 1, decimals: 3, memo: 'mce:w=3' });
  r = await call(port, 'sendTransaction', [wd.b64, { encoding: 'base64' }]);
  assert.equal(r.error.code, -32002);
  assert.ok(r.error.data.err.InstructionError, JSON.stringify(r.error.data.err));
  assert.equal((await rpc(port, 'getAccountInfo', [nt.energyAccount])).value, null);
  r = await call(port, 'mce_addUser', [{ name: 'bad', approve: 'yes' }]);
  assert.equal(r.error.code, -32602);
  setup = JSON.parse(fs.readFileSync(path.join(tmp, 'setup.json'), 'utf8'));
});

test('--vault-energy-amount and --vault-payment-amount fund the vaults at start', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'vault-'));
  const other = await startLedger(['--port', '0', '--users', '1', '--vault-energy-amount', '5000',
    '--vault-payment-amount', '7000000', '--setup-out', path.join(dir, 'setup.json'), '--watch-pid', String(process.pid)]);
  try {
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'setup.json'), 'utf8'));
    assert.equal(BigInt((await rpc(other.port, 'getTokenAccountBalance', [s.vaults.energy])).value.amount), 5000n);
    assert.equal(BigInt((await rpc(other.port, 'getTokenAccountBalance', [s.vaults.payment])).value.amount), 7000000n);
  } finally {
    await other.stop();
  }
});

test('fault: HTTP 429 with Retry-After, then 500/503, then -32005', async () => {
  await rpc(port, 'mce_setFaults', [{ http429Every: 1, retryAfterS: 2 }]);
  let r = await post(port, { jsonrpc: '2.0', id: 1, method: 'getSlot' });
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '2');
  // admin calls are never faulted
  assert.equal((await rpc(port, 'mce_getFaults')).http429Every, 1);
  await rpc(port, 'mce_setFaults', [{ http429Every: 0, http5xxEvery: 1 }]);
  const codes = [];
  for (let i = 0; i < 2; i++) codes.push((await post(port, { jsonrpc: '2.0', id: 1, method: 'getSlot' })).status);
  assert.deepEqual(codes.sort(), [500, 503]);
  await rpc(port, 'mce_setFaults', [{ http5xxEvery: 0, http5xxRate: 0.5, faultSeed: 7 }]);
  let n5 = 0;
  for (let i = 0; i < 40; i++) if ((await post(port, { jsonrpc: '2.0', id: 1, method: 'getSlot' })).status >= 500) n5++;
  assert.ok(n5 > 5 && n5 < 35, `5xx rate 0.5 gave ${n5}/40`);
  // faultMethods limits the faults to some methods
  await rpc(port, 'mce_setFaults', [{ http5xxRate: 0, http429Every: 1, faultMethods: ['sendTransaction'] }]);
  assert.equal((await post(port, { jsonrpc: '2.0', id: 1, method: 'getSlot' })).status, 200);
  await resetFaults();
  await rpc(port, 'mce_setFaults', [{ unhealthyRate: 1 }]);
  const a = await call(port, 'getLatestBlockhash');
  assert.equal(a.error.code, -32005);
  await resetFaults();
  const stats = await rpc(port, 'mce_stats');
  assert.ok(stats.http429 >= 1 && stats.http5xx >= 2 && stats.unhealthy >= 1);
});

test('fault: pause (hang) holds requests until it ends', async () => {
  await rpc(port, 'mce_setFaults', [{ pauseMode: 'hang', pausedMs: 400 }]);
  const t0 = Date.now();
  const slot = await rpc(port, 'getSlot', [], { timeoutMs: 5000 });
  assert.ok(slot > 0);
  assert.ok(Date.now() - t0 >= 300, `answered after ${Date.now() - t0} ms`);
  // a client that gives up earlier sees a timeout
  await rpc(port, 'mce_setFaults', [{ pausedMs: 5000 }]);
  await assert.rejects(rpc(port, 'getSlot', [], { timeoutMs: 200 }), (e) => e.code === 'ETIMEDOUT' || e.code === 'ECONNRESET');
  assert.equal((await rpc(port, 'mce_getFaults')).pausedRemainingMs > 0, true);
  await rpc(port, 'mce_setFaults', [{ pausedMs: 0 }]); // end it early
  assert.ok(await rpc(port, 'getSlot'));
  await resetFaults();
});

test('fault: pause (reset) closes connections; pause (refuse) closes the port', async () => {
  await rpc(port, 'mce_setFaults', [{ pauseMode: 'reset', pausedMs: 300 }]);
  await assert.rejects(rpc(port, 'getSlot', [], { agent: new http.Agent() }), (e) => e.code === 'ECONNRESET' || e.code === 'ECONNREFUSED' || /socket hang up/.test(e.message));
  await waitFor('reset pause to end', () => rpc(port, 'getSlot', [], { agent: new http.Agent() }).catch(() => false));
  await rpc(port, 'mce_setFaults', [{ pauseMode: 'refuse', pausedMs: 1000 }]);
  await waitFor('port to close', () => rpc(port, 'getSlot', [], { agent: new http.Agent() }).then(() => false, (e) => e.code === 'ECONNREFUSED'), { deadlineMs: 2000 });
  await waitFor('port to reopen', () => rpc(port, 'getSlot', [], { agent: new http.Agent() }).catch(() => false), { deadlineMs: 5000 });
  await resetFaults();
});

test('fault: slow confirmations stay "processed" first', async () => {
  await rpc(port, 'mce_setFaults', [{ confirmDelayMs: 800 }]);
  const bh = await latest();
  const t = memoTx('slow confirm', bh.blockhash);
  const sig = await rpc(port, 'sendTransaction', [t.bytes.toString('base64'), { encoding: 'base64' }]);
  const first = await status(sig);
  assert.equal(first.confirmationStatus, 'processed');
  const t0 = Date.now();
  await waitConfirmed(sig);
  assert.ok(Date.now() - t0 >= 300);
  await resetFaults();
});

test('fault: delayed landing (status null first), drops, and an expired blockhash while waiting', async () => {
  await rpc(port, 'mce_setFaults', [{ landDelayMs: 600 }]);
  let bh = await latest();
  const t = memoTx('late landing', bh.blockhash);
  const sig = await rpc(port, 'sendTransaction', [t.bytes.toString('base64'), { encoding: 'base64' }]);
  assert.equal(await status(sig), null);
  await waitConfirmed(sig);
  // its blockhash expires before it would land: it never lands
  const t2 = memoTx('never lands', bh.blockhash);
  await rpc(port, 'sendTransaction', [t2.bytes.toString('base64'), { encoding: 'base64' }]);
  await rpc(port, 'mce_advanceSlots', [200]);
  await waitFor('landing queue to drain', async () => (await rpc(port, 'mce_stats')).pendingLandings === 0);
  assert.equal(await status(t2.signature), null);
  await resetFaults();
  await rpc(port, 'mce_setFaults', [{ dropRate: 1 }]);
  bh = await latest();
  const t3 = memoTx('dropped', bh.blockhash);
  assert.equal(await rpc(port, 'sendTransaction', [t3.bytes.toString('base64'), { encoding: 'base64' }]), t3.signature);
  assert.equal(await status(t3.signature), null);
  await resetFaults();
  // resend the same bytes once the drops stop: it lands (same signature)
  await rpc(port, 'sendTransaction', [t3.bytes.toString('base64'), { encoding: 'base64' }]);
  await waitConfirmed(t3.signature);
});

test('fault: short blockhash validity', async () => {
  await rpc(port, 'mce_setFaults', [{ blockhashValidity: 3, slotMs: 0 }]);
  const bh = await latest();
  const h = await rpc(port, 'getBlockHeight');
  assert.equal(bh.lastValidBlockHeight, h + 3);
  await rpc(port, 'mce_advanceSlots', [3]);
  assert.equal((await rpc(port, 'isBlockhashValid', [bh.blockhash])).value, true);
  await rpc(port, 'mce_advanceSlots', [1]);
  assert.equal((await rpc(port, 'isBlockhashValid', [bh.blockhash])).value, false);
  await resetFaults();
  const bh2 = await latest();
  assert.equal(bh2.lastValidBlockHeight - (await rpc(port, 'getBlockHeight')), 150);
  // slots advance on the timer again
  const s0 = await rpc(port, 'getSlot');
  await waitFor('slot timer', async () => (await rpc(port, 'getSlot')) > s0);
});

test('statuses become finalized; stats count what happened', async () => {
  const list = await rpc(port, 'mce_listTransactions', [{ since: 0 }]);
  const sig = list.transactions[0].signature;
  await rpc(port, 'mce_advanceSlots', [40]);
  const s = await status(sig);
  assert.equal(s.confirmationStatus, 'finalized');
  assert.equal(s.confirmations, null);
  const st = await rpc(port, 'mce_stats');
  assert.ok(st.txLanded >= 4, JSON.stringify(st));
  assert.ok(st.txFailed >= 1);
  assert.ok(st.txRejected >= 4);
  assert.ok(st.transfers >= 6);
});

test('--state keeps the chain through kill -9: statuses, balances and users come back; other keys are refused', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'state-'));
  const state = path.join(dir, 'chain.jsonl');
  const args = ['--port', '0', '--users', '2', '--slot-ms', '50', '--keys-dir', path.join(dir, 'keys'),
    '--setup-out', path.join(dir, 'setup.json'), '--state', state, '--watch-pid', String(process.pid)];
  let one = await startLedger(args);
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'setup.json'), 'utf8'));
  const kp = L.keypairFromSeed(Buffer.from(s.platform.secretSeedHex, 'hex'));
  const bh = (await rpc(one.port, 'getLatestBlockhash', [])).value.blockhash;
  const [a, b] = s.users;
  const ix = L.ix.transferChecked(L.pubkeyFrom(a.energyAccount), L.pubkeyFrom(s.energyMint.address),
    L.pubkeyFrom(b.energyAccount), kp.publicKey, 700n, 3);
  const tx = L.buildTransaction(kp, [ix, L.ix.memo('mce:state')], bh, [kp]);
  const sig = await rpc(one.port, 'sendTransaction', [tx.bytes.toString('base64'), { encoding: 'base64' }]);
  const who = L.keypairFromSeed(Buffer.alloc(32, 9)).address;
  await rpc(one.port, 'requestAirdrop', [who, 3000000]);
  const carol = await rpc(one.port, 'mce_addUser', [{ name: 'carol' }]);
  const height = (await rpc(one.port, 'mce_advanceSlots', [5])).blockHeight;
  const balanceOf = async (port, acct) => (await rpc(port, 'getTokenAccountBalance', [acct])).value.amount;
  const before = { a: await balanceOf(one.port, a.energyAccount), b: await balanceOf(one.port, b.energyAccount) };
  assert.equal(BigInt(before.b) - BigInt(before.a), 1400n);
  one.proc.kill('SIGKILL');
  await new Promise((r) => one.proc.once('exit', r));
  fs.appendFileSync(state, '{"h":1,"k":"torn","b":"AA'); // a line torn by the kill

  let two = await startLedger(args);
  try {
    const st = (await rpc(two.port, 'getSignatureStatuses', [[sig], { searchTransactionHistory: true }])).value[0];
    assert.ok(st, 'the transaction is known after the restart');
    assert.equal(st.err, null);
    assert.equal(await balanceOf(two.port, a.energyAccount), before.a);
    assert.equal(await balanceOf(two.port, b.energyAccount), before.b);
    assert.equal((await rpc(two.port, 'getBalance', [who])).value, 3000000);
    assert.equal(await balanceOf(two.port, carol.energyAccount), String(s.users[0].energyAmount));
    assert.ok((await rpc(two.port, 'getBlockHeight', [])) >= height);
    assert.ok(!fs.readFileSync(state, 'utf8').includes('torn'), 'the torn line is dropped');
    const again = await call(two.port, 'sendTransaction', [tx.bytes.toString('base64'), { encoding: 'base64', skipPreflight: true }]);
    assert.equal(again.result, sig);
    assert.equal(await balanceOf(two.port, a.energyAccount), before.a, 'resending after a restart moves nothing');
  } finally {
    await two.stop();
  }
  // the same state with other keys: refused, naming the difference
  const other = args.map((x) => (x === path.join(dir, 'keys') ? path.join(dir, 'other-keys') : x));
  let refused = null;
  try { await (await startLedger([...other, '--seed', 'another'], { stderr: 'ignore' })).stop(); } catch (e) { refused = e; }
  assert.match(String(refused), /exited \(1\)/);
});
