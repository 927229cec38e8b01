'use strict';
// Helpers shared by test.js and bench.js: start a ledger, talk JSON-RPC to it, poll.

const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');

const LEDGER = path.join(__dirname, 'ledger.js');

// Start ledger.js with args; resolves { proc, port, url, stop() } once the ready line came.
function startLedger(args, { timeoutMs = 15000, stderr = 'inherit' } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [LEDGER, ...args], { stdio: ['ignore', 'pipe', stderr] });
    let out = '';
    let done = false;
    const timer = setTimeout(() => fail(new Error(`ledger not ready within ${timeoutMs} ms`)), timeoutMs);
    function fail(e) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(e);
    }
    proc.on('exit', (code, sig) => fail(new Error(`ledger exited (${code ?? sig}) before it was ready`)));
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      out += d;
      if (done) return;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      const m = /^ledger: listening on 127\.0\.0\.1:(\d+)$/.exec(line);
      if (!m) { fail(new Error(`unexpected ready line: ${JSON.stringify(line)}`)); return; }
      done = true;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({
        proc, port, url: `http://127.0.0.1:${port}`,
        extraStdout: () => out.slice(nl + 1),
        stop: () => new Promise((res) => {
          if (proc.exitCode !== null || proc.signalCode !== null) { res(); return; }
          proc.once('exit', () => res());
          proc.kill('SIGTERM');
        }),
      });
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

// POST a JSON body; resolves { status, headers, body (parsed or text) }; rejects on network errors.
function post(port, payload, { timeoutMs = 10000, agent: ag = agent } = {}) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(payload));
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/', agent: ag,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try { body = JSON.parse(text); } catch { /* keep text */ }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(data);
  });
}

let nextId = 1;
// One JSON-RPC call; resolves the whole answer object ({result} or {error}).
async function call(port, method, params = [], opts) {
  const r = await post(port, { jsonrpc: '2.0', id: nextId++, method, params }, opts);
  if (r.status !== 200) throw Object.assign(new Error(`HTTP ${r.status} for ${method}`), { status: r.status, headers: r.headers });
  return r.body;
}
// One JSON-RPC call; resolves result, throws on a JSON-RPC error.
async function rpc(port, method, params = [], opts) {
  const a = await call(port, method, params, opts);
  if (a.error) throw Object.assign(new Error(`${method}: ${a.error.code} ${a.error.message}`), { rpc: a.error });
  return a.result;
}

// Poll fn() until it returns a truthy value; throws after deadlineMs.
async function waitFor(what, fn, { deadlineMs = 10000, everyMs = 20 } = {}) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

module.exports = { startLedger, post, call, rpc, waitFor, agent };
