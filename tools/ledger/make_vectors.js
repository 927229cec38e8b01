#!/usr/bin/env node
'use strict';
// make_vectors.js — the reference encodings the settler's unit tests (tests/unit/test_soltx.c)
// compare its hand-written Solana code with, produced here by the Solana JS library
// (@solana/kit 8.4 and @solana-program/token 0.16, not by lib.js, which is our own code too).
//
//   node tools/ledger/make_vectors.js > tests/vectors/soltx.json
//
// Every input is derived from fixed labels (sha256 of "mce-vectors:" + label), so running it
// again writes the same file byte for byte; the committed file is what the tests read.
//
// What it holds:
//   compactU16    value -> bytes (hex), from kit's shortU16 codec
//   base58        bytes (hex) -> text, from kit's base58 codec (leading zero bytes included)
//   offCurve      32 bytes (hex) -> whether they are NOT an ed25519 point (isOffCurveAddress)
//   ata           owner, mint -> associated token account and bump (findAssociatedTokenPda)
//   addressOrder  strings sorted by kit's address comparator (Intl.Collator "en", lower first),
//                 which orders the accounts inside each role group of a compiled message
//   transactions  settlements -> the signed legacy transaction (base64) and its signature:
//                 per settlement TransferChecked energy seller->buyer, payment buyer->seller,
//                 fee buyer->treasury (each only when its amount is not zero), then one Memo;
//                 the platform key is fee payer and the authority (delegate) of every transfer
//   vaults        the platform's associated token accounts of both mints (the escrow)
//   escrowTransactions  settlements out of escrow: energy vault->buyer, payment vault->seller
//                 (value - fee), payment vault->treasury (fee), the platform signing as the
//                 vaults' owner, then one Memo
//   transferTransactions  deposits (user's token account -> vault, the platform as delegate,
//                 memo "mce:d=…") and withdrawals (vault -> user's token account, memo "mce:w=…")
//
// New keys go at the end, so that what earlier versions wrote stays byte for byte the same.

const crypto = require('node:crypto');
const kit = require('@solana/kit');
const token = require('@solana-program/token');

const MEMO = kit.address('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr');
const hash = (label) => crypto.createHash('sha256').update(`mce-vectors:${label}`).digest();
const hex = (b) => Buffer.from(b).toString('hex');
const addressOf = (bytes) => kit.getAddressDecoder().decode(bytes);

async function keyPair(label) {
  const seed = hash(label);
  const kp = await kit.createKeyPairFromPrivateKeyBytes(seed, true);
  const pub = new Uint8Array(await crypto.webcrypto.subtle.exportKey('raw', kp.publicKey));
  return { seed, kp, address: addressOf(pub) };
}

async function ata(owner, mint) {
  const [addr, bump] = await token.findAssociatedTokenPda({
    owner, mint, tokenProgram: token.TOKEN_PROGRAM_ADDRESS,
  });
  return { addr, bump };
}

async function main() {
  const out = {
    generator: 'tools/ledger/make_vectors.js (@solana/kit 8.4.0, @solana-program/token 0.16.1)',
  };

  const u16 = kit.getShortU16Encoder();
  out.compactU16 = [0, 1, 5, 0x7f, 0x80, 0xff, 0x100, 300, 0x3fff, 0x4000, 0x7fff, 0xffff]
    .map((v) => ({ value: v, hex: hex(u16.encode(v)) }));

  const b58 = kit.getBase58Decoder();
  out.base58 = [];
  for (let i = 0; i < 40; i++) {
    const h = hash(`base58-${i}`);
    const len = i % 3 === 0 ? 32 : i % 3 === 1 ? 64 : 1 + (h[0] % 40);
    const bytes = Buffer.alloc(len);
    for (let j = 0; j < len; j++) bytes[j] = hash(`base58-${i}-${j}`)[0];
    const zeros = i % 5; // leading zero bytes, each one a leading '1'
    bytes.fill(0, 0, Math.min(zeros, len));
    out.base58.push({ hex: hex(bytes), text: b58.decode(bytes) });
  }

  out.offCurve = [];
  for (let i = 0; i < 64; i++) {
    const bytes = hash(`curve-${i}`);
    out.offCurve.push({ hex: hex(bytes), offCurve: kit.isOffCurveAddress(addressOf(bytes)) });
  }
  // real public keys are always on the curve
  for (let i = 0; i < 8; i++) {
    const k = await keyPair(`curve-key-${i}`);
    out.offCurve.push({ hex: hex(kit.getAddressEncoder().encode(k.address)), offCurve: false });
  }

  const energyMint = (await keyPair('energy-mint')).address;
  const paymentMint = (await keyPair('payment-mint')).address;
  out.ata = [];
  for (let i = 0; i < 24; i++) {
    const owner = (await keyPair(`owner-${i}`)).address;
    const mint = i % 2 ? paymentMint : energyMint;
    const a = await ata(owner, mint);
    out.ata.push({ owner, mint, address: a.addr, bump: a.bump });
  }

  const cmp = kit.getAddressComparator();
  const strings = ['abc', 'ABC', 'aBc', 'Abc', 'abC', 'ab', 'AB', 'b', 'B', 'a1', 'A1', '1a', '1A',
    '9', '19', 'z', 'Z', 'zz', 'Zz', 'zZ', 'ZZ', 'a', 'A', '11', '1'];
  for (let i = 0; i < 40; i++) strings.push(addressOf(hash(`order-${i}`)));
  for (let i = 0; i < 8; i++) { // pairs that differ only in case somewhere
    const s = addressOf(hash(`case-${i}`));
    const j = s.search(/[a-km-zA-HJ-NP-Z]/);
    const c = s[j];
    const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
    if ('0OIl'.includes(flipped)) continue;
    strings.push(s, s.slice(0, j) + flipped + s.slice(j + 1));
  }
  out.addressOrder = [...new Set(strings)].sort(cmp);

  const platform = await keyPair('platform');
  const platformSigner = await kit.createSignerFromKeyPair(platform.kp);
  const treasuryOwner = (await keyPair('treasury')).address;
  const treasury = (await ata(treasuryOwner, paymentMint)).addr;
  const users = [];
  for (let i = 0; i < 12; i++) {
    const w = (await keyPair(`user-${i}`)).address;
    users.push({ wallet: w, energy: (await ata(w, energyMint)).addr, payment: (await ata(w, paymentMint)).addr });
  }
  out.platform = { seedHex: hex(platform.seed), pubkey: platform.address };
  out.energyMint = { address: energyMint, decimals: 3 };
  out.paymentMint = { address: paymentMint, decimals: 6 };
  out.treasury = { owner: treasuryOwner, paymentAccount: treasury };
  out.users = users;

  const cases = [
    { name: 'one settlement', memo: 'mce:t=7', s: [[0, 1, 12345, 1851000, 4628]] },
    {
      name: 'four settlements, shared users, one without fee',
      memo: 'mce:t=10,11,12,13',
      s: [[2, 3, 1000, 150000, 375], [3, 2, 2000, 300000, 0], [2, 4, 1, 1, 1], [5, 3, 999999, 149999850, 374999]],
    },
    {
      name: 'five distinct pairs and two reversed',
      memo: 'mce:t=100,101,102,103,104,105,106',
      s: [[0, 1, 10, 1, 0], [2, 3, 20, 2, 0], [4, 5, 30, 3, 0], [6, 7, 40, 4, 0],
        [8, 9, 50, 5, 0], [1, 0, 70, 7, 1], [3, 2, 80, 8, 0]],
    },
    { name: 'payment and fee zero', memo: 'mce:t=9', s: [[11, 10, 5, 0, 0]] },
  ];
  out.transactions = [];
  for (let c = 0; c < cases.length; c++) {
    const blockhash = b58.decode(hash(`blockhash-${c}`));
    const ixs = [];
    const settlements = [];
    for (const [sel, buy, qty, pay, fee] of cases[c].s) {
      const seller = users[sel];
      const buyer = users[buy];
      settlements.push({ seller: sel, buyer: buy, energy: qty, payment: pay, fee });
      const t = (source, mint, destination, amount, decimals) => token.getTransferCheckedInstruction({
        source, mint, destination, authority: platformSigner, amount: BigInt(amount), decimals,
      });
      ixs.push(t(seller.energy, energyMint, buyer.energy, qty, 3));
      if (pay) ixs.push(t(buyer.payment, paymentMint, seller.payment, pay, 6));
      if (fee) ixs.push(t(buyer.payment, paymentMint, treasury, fee, 6));
    }
    ixs.push({ programAddress: MEMO, data: new TextEncoder().encode(cases[c].memo) });
    const message = kit.pipe(
      kit.createTransactionMessage({ version: 'legacy' }),
      (m) => kit.setTransactionMessageFeePayerSigner(platformSigner, m),
      (m) => kit.setTransactionMessageLifetimeUsingBlockhash({ blockhash, lastValidBlockHeight: 1000n }, m),
      (m) => kit.appendTransactionMessageInstructions(ixs, m),
    );
    const signed = await kit.signTransactionMessageWithSigners(message);
    const wire = kit.getBase64EncodedWireTransaction(signed);
    out.transactions.push({
      name: cases[c].name, blockhash, memo: cases[c].memo, settlements,
      size: Buffer.from(wire, 'base64').length, base64: wire,
      signature: kit.getSignatureFromTransaction(signed),
    });
  }
  const sign = async (ixs, blockhash) => {
    const message = kit.pipe(
      kit.createTransactionMessage({ version: 'legacy' }),
      (m) => kit.setTransactionMessageFeePayerSigner(platformSigner, m),
      (m) => kit.setTransactionMessageLifetimeUsingBlockhash({ blockhash, lastValidBlockHeight: 1000n }, m),
      (m) => kit.appendTransactionMessageInstructions(ixs, m),
    );
    const signed = await kit.signTransactionMessageWithSigners(message);
    const wire = kit.getBase64EncodedWireTransaction(signed);
    return { size: Buffer.from(wire, 'base64').length, base64: wire, signature: kit.getSignatureFromTransaction(signed) };
  };
  const transfer = (source, mint, destination, amount, decimals) => token.getTransferCheckedInstruction({
    source, mint, destination, authority: platformSigner, amount: BigInt(amount), decimals,
  });
  const memoIx = (text) => ({ programAddress: MEMO, data: new TextEncoder().encode(text) });
  const vaults = {
    energy: (await ata(platform.address, energyMint)).addr,
    payment: (await ata(platform.address, paymentMint)).addr,
  };
  out.vaults = vaults;

  const escrowCases = [
    { name: 'one settlement out of escrow', memo: 'mce:t=21', s: [[0, 1, 12345, 1851000, 4628]] },
    {
      name: 'three out of escrow, one without fee, one without payment',
      memo: 'mce:t=30,31,32',
      s: [[2, 3, 1000, 150000, 375], [3, 2, 2000, 300000, 0], [4, 5, 7, 0, 0]],
    },
  ];
  out.escrowTransactions = [];
  for (let c = 0; c < escrowCases.length; c++) {
    const blockhash = b58.decode(hash(`escrow-blockhash-${c}`));
    const ixs = [];
    const settlements = [];
    for (const [sel, buy, qty, pay, fee] of escrowCases[c].s) {
      settlements.push({ seller: sel, buyer: buy, energy: qty, payment: pay, fee });
      ixs.push(transfer(vaults.energy, energyMint, users[buy].energy, qty, 3));
      if (pay) ixs.push(transfer(vaults.payment, paymentMint, users[sel].payment, pay, 6));
      if (fee) ixs.push(transfer(vaults.payment, paymentMint, treasury, fee, 6));
    }
    ixs.push(memoIx(escrowCases[c].memo));
    out.escrowTransactions.push({
      name: escrowCases[c].name, blockhash, memo: escrowCases[c].memo, settlements, ...(await sign(ixs, blockhash)),
    });
  }

  // [user, asset, amount]; ids from the memo
  const transferCases = [
    { name: 'one deposit of energy', kind: 'deposit', memo: 'mce:d=1', t: [[0, 'energy', 5000]] },
    {
      name: 'three deposits, two of one user',
      kind: 'deposit',
      memo: 'mce:d=7,8,9',
      t: [[1, 'payment', 2500000], [2, 'energy', 1], [1, 'energy', 999]],
    },
    { name: 'one withdrawal of payment', kind: 'withdrawal', memo: 'mce:w=3', t: [[4, 'payment', 150000]] },
    {
      name: 'two withdrawals',
      kind: 'withdrawal',
      memo: 'mce:w=40,41',
      t: [[5, 'energy', 1234], [6, 'payment', 77]],
    },
  ];
  out.transferTransactions = [];
  for (let c = 0; c < transferCases.length; c++) {
    const blockhash = b58.decode(hash(`transfer-blockhash-${c}`));
    const ixs = [];
    const transfers = [];
    for (const [u, asset, amount] of transferCases[c].t) {
      transfers.push({ user: u, asset, amount });
      const energy = asset === 'energy';
      const mine = energy ? users[u].energy : users[u].payment;
      const vault = energy ? vaults.energy : vaults.payment;
      const deposit = transferCases[c].kind === 'deposit';
      ixs.push(transfer(deposit ? mine : vault, energy ? energyMint : paymentMint, deposit ? vault : mine, amount, energy ? 3 : 6));
    }
    ixs.push(memoIx(transferCases[c].memo));
    out.transferTransactions.push({
      name: transferCases[c].name, kind: transferCases[c].kind, blockhash, memo: transferCases[c].memo, transfers,
      ...(await sign(ixs, blockhash)),
    });
  }
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
}

main().catch((e) => {
  process.stderr.write(`make_vectors: ${e.stack || e}\n`);
  process.exit(1);
});
