'use strict';
// Throughput of the local ledger: `node tools/ledger/bench.js [--seconds 5] [--per-tx 10]
// [--concurrency 4] [--skip-preflight]`. Starts its own ledger, sends transactions of
// PER_TX TransferChecked (platform as delegate) + a memo for SECONDS, reports one line.

const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const L = require('./lib');
const { startLedger, post, rpc } = require('./testutil');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };
const seconds = opt('--seconds', 5);
const perTx = opt('--per-tx', 10);
const concurrency = opt('--concurrency', 4);
const skipPreflight = args.includes('--skip-preflight');

(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mce-ledger-bench-'));
  const users = Math.max(2, 2 * perTx);
  const led = await startLedger(['--users', String(users), '--setup-out', path.join(tmp, 's.json'), '--watch-pid', String(process.pid)], { stderr: 'ignore' });
  try {
    const setup = JSON.parse(fs.readFileSync(path.join(tmp, 's.json'), 'utf8'));
    const platform = L.keypairFromSeed(Buffer.from(setup.platform.secretSeedHex, 'hex'));
    const mint = L.pubkeyFrom(setup.energyMint.address);
    const ea = setup.users.map((u) => L.pubkeyFrom(u.energyAccount));
    let bh = (await rpc(led.port, 'getLatestBlockhash')).value.blockhash;
    let bhAt = Date.now();
    let n = 0;
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const lat = [];
    let errors = 0;
    const end = Date.now() + seconds * 1000;
    async function worker() {
      while (Date.now() < end) {
        if (Date.now() - bhAt > 2000) { bhAt = Date.now(); bh = (await rpc(led.port, 'getLatestBlockhash', [], { agent })).value.blockhash; }
        const k = n++;
        const ixs = [];
        for (let i = 0; i < perTx; i++) {
          const a = (k + 2 * i) % ea.length;
          const b = (k + 2 * i + 1) % ea.length;
          ixs.push(L.ix.transferChecked(ea[a], mint, ea[b], platform.publicKey, 1 + (k % 7), 3));
        }
        ixs.push(L.ix.memo(`bench:${k}`));
        const tx = L.buildTransaction(platform, ixs, bh, [platform]);
        const t0 = process.hrtime.bigint();
        const r = await post(led.port, { jsonrpc: '2.0', id: k, method: 'sendTransaction', params: [tx.bytes.toString('base64'), { encoding: 'base64', skipPreflight }] }, { agent });
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.status !== 200 || r.body.error) { errors++; if (errors < 3) console.error(JSON.stringify(r.body).slice(0, 300)); }
      }
    }
    const t0 = Date.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const secs = (Date.now() - t0) / 1000;
    const st = await rpc(led.port, 'mce_stats');
    lat.sort((a, b) => a - b);
    const txs = st.txLanded;
    console.log(`bench: ${txs} tx landed in ${secs.toFixed(1)} s = ${(txs / secs).toFixed(0)} tx/s, ` +
      `${(st.transfers / secs).toFixed(0)} TransferChecked/s (${perTx}/tx, preflight ${skipPreflight ? 'off' : 'on'}, ` +
      `concurrency ${concurrency}), latency p50 ${lat[Math.floor(lat.length / 2)].toFixed(2)} ms ` +
      `p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(2)} ms, errors ${errors}`);
    if (errors) process.exitCode = 1;
  } finally {
    await led.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
