// live.mjs — the dashboard's live path in detail, against a stand-in broadcaster (a few lines
// of WebSocket over node:http below) that speaks broadcaster/PROTOCOL.md: the real one is
// driven by dashboard.mjs, where the bus decides what happens; here the test does, so it can
// make what the bus rarely does: a lost update, a snapshot that already has the update
// following it, a new epoch, the broadcaster going away.
//
//   node tests/browser/live.mjs <gateway-url> <ws-port> <user> <password>
//
// The gateway's gateway.broadcaster_url must be ws://127.0.0.1:<ws-port>, where nothing else
// listens; the user must exist. Checked: the page subscribes to its market's channels (the
// current epoch's book without an epoch); applies each snapshot and the updates after it
// (what changed, in the snapshot's shape), skipping an update the snapshot it holds already
// has (seq at or below it, prev below it: not a gap) and a trade listed twice; on a gap
// (prev above the seq it holds) applies nothing until it has subscribed again and the new
// snapshot has replaced its book; follows a new epoch's book; shows the server's errors;
// reads no market data over HTTP while live; takes its orders and account channels with the
// token once signed in (the messages name the user), shows the balances they bring (no
// balances over HTTP meanwhile) and unsubscribes both with the same token on sign-out,
// keeping the connection; and when the broadcaster goes away it says "polling", shows the
// gateway's data (the balances too) again, and reconnects once the broadcaster is back.
//
// The gateway's lists of deposits and withdrawals have a stand-in too (Playwright's routing
// answers GET /api/account/deposits and /withdrawals), whose statuses the test moves on: the
// page must follow them by itself until every one is final, showing why one failed and the
// transaction that moved another, and then stop reading.
//
// Exit status: 0 passed; 1 the dashboard misbehaved; 2 this machine cannot run it.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { Failure, Inbox, STEP_MS, balancesAre, depthIs, outcome, run, say, until } from './lib.mjs';

const NAME = 'live';
const [url, wsPort, user, password] = process.argv.slice(2);
if (!url || !wsPort || !user || !password) {
    console.error('usage: node live.mjs <gateway-url> <ws-port> <user> <password>');
    process.exit(2);
}
const log = (text) => say(NAME, text);

// ---------------------------------------------------------------------------------------
// The stand-in broadcaster. It keeps each channel's state and answers a subscribe with a
// snapshot of it at the bus seq it has reached, as the real one does. The test makes events
// (each one bus seq more, applied to the state at once, its change held back); flush() sends
// what changed since the last flush as one update per channel, with `prev` the seq of the
// channel's previous update, as the real one does every flush_ms. Text frames only; no
// fragmentation (browsers do not fragment these). The subprotocol is optional, as the real
// one's: the page asks for none.

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KINDS = ['depth', 'trades', 'ticker', 'epochs', 'indicative', 'settlements', 'orders', 'account', 'my_settlements'];
const PRIVATE = ['orders', 'account']; // a user's own channels, taken with a token
const MAX_SUBSCRIPTIONS = 64;

function frame(text, opcode = 1) {
    const payload = Buffer.from(text);
    const n = payload.length;
    let head;
    if (n < 126) head = Buffer.from([0x80 | opcode, n]);
    else if (n < 65536) {
        head = Buffer.from([0x80 | opcode, 126, 0, 0]);
        head.writeUInt16BE(n, 2);
    }
    else {
        head = Buffer.alloc(10);
        head[0] = 0x80 | opcode;
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(n), 2);
    }
    return Buffer.concat([head, payload]);
}

// One spelling per price and amount, to key and compare levels ("0.150000" is "0.15").
const norm = (text) => {
    const [whole, frac = ''] = String(text).split('.');
    const f = frac.replace(/0+$/, '');
    return String(Number(whole)) + (f ? '.' + f : '');
};
const isZero = (text) => /^0*(\.0*)?$/.test(String(text));

// Balances as the API sends them: [available, reserved, total] of energy and of payment.
const balances = (energy, payment) => Object.fromEntries([['energy', energy], ['payment', payment]]
    .map(([asset, [available, reserved, total]]) => [asset, { available, reserved, total }]));

// A JWT's claims, unchecked (the stand-in has no key; the real broadcaster checks it).
function claimsOf(token) {
    try {
        return JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString());
    } catch (e) {
        return null;
    }
}

class Broadcaster {
    // markets: the market ids it knows; current: market -> its current epoch
    constructor(port, markets, current) {
        this.port = Number(port);
        this.markets = markets;
        this.current = current;
        this.seq = 100;          // stream m: every channel's but settlements'
        this.sSeq = 0;           // stream s: settlements'
        this.channels = new Map(); // key -> {kind, market, epoch, user, state, last, pending, subs}
        this.sockets = new Set();
        this.inbox = new Inbox();
        this.received = this.inbox.items; // every message from a client, parsed, in order
        this.sent = [];          // every message to a client
        this.connections = 0;
        this.holding = null;     // while set, answers to subscriptions wait here
    }

    // -- channels

    channel(kind, market, epoch, who) {
        const key = PRIVATE.includes(kind) ? `${kind}/${who}` : kind === 'depth' ? `depth/${market}/${epoch}` : `${kind}/${market}`;
        let ch = this.channels.get(key);
        if (!ch) {
            const state = {
                depth: () => ({ bids: [], asks: [] }),
                trades: () => ({ trades: [] }),
                ticker: () => ({ market, seq: 0, epoch: this.current[market], status: 'open', best_bid: null, best_ask: null, spread: null, last_price: null, volume_24h: '0', trades_24h: 0, change_24h: null, active_orders: 0 }),
                epochs: () => ({ current: null, recent: [] }),
                settlements: () => ({ settlements: [] }),
                orders: () => ({ orders: [] }),
                account: () => ({ balances: balances(['0', '0', '0'], ['0', '0', '0']) }),
            }[kind]();
            ch = { key, kind, market, epoch, user: who, state, last: 0, pending: null, subs: new Set() };
            this.channels.set(key, ch);
        }
        return ch;
    }

    // What names a channel in its messages: the user for a private one, else the market (and the
    // epoch for depth).
    static names(ch) {
        if (PRIVATE.includes(ch.kind)) return { channel: ch.kind, user: ch.user };
        return ch.kind === 'depth' ? { channel: ch.kind, market: ch.market, epoch: ch.epoch } : { channel: ch.kind, market: ch.market };
    }

    // Notes an event on ch: a bus seq more, the state changed by apply(state, pending) now,
    // the change sent at the next flush.
    event(ch, apply) {
        const seq = ch.kind === 'settlements' ? ++this.sSeq : ++this.seq;
        if (!ch.pending) ch.pending = { seq, changes: new Map() };
        ch.pending.seq = seq;
        apply(ch.state, ch.pending.changes);
        return seq;
    }

    // Events. Depth: {bids, asks} of levels as they now are ("0" kWh: gone).
    depth(market, epoch, levels) {
        const ch = this.channel('depth', market, epoch);
        return this.event(ch, (state, changes) => {
            for (const side of ['bids', 'asks'])
                for (const l of levels[side] || []) {
                    const rest = state[side].filter((x) => norm(x.price) !== norm(l.price));
                    if (!isZero(l.energy_amount)) rest.push(l);
                    rest.sort((a, b) => (side === 'bids' ? Number(b.price) - Number(a.price) : Number(a.price) - Number(b.price)));
                    state[side] = rest;
                    changes.set(side + ' ' + norm(l.price), [side, l]); // the latest word on it
                }
        });
    }

    trade(market, trade) {
        return this.event(this.channel('trades', market), (state, changes) => {
            state.trades.unshift(trade);
            changes.set(trade.trade_id, trade);
        });
    }

    ticker(market, stats) {
        return this.event(this.channel('ticker', market), (state, changes) => {
            Object.keys(state).forEach((k) => delete state[k]);
            Object.assign(state, stats);
            changes.set('stats', stats);
        });
    }

    // rows: epochs that changed phase; current: the epoch status now (for snapshots)
    epochs(market, rows, current) {
        return this.event(this.channel('epochs', market), (state, changes) => {
            for (const e of rows) {
                state.recent = state.recent.filter((x) => x.epoch !== e.epoch);
                if (e.state !== 'pending' && e.state !== 'active') state.recent.push(e);
                changes.set(e.epoch, e);
            }
            state.recent.sort((a, b) => b.epoch - a.epoch);
            if (current) state.current = current;
        });
    }

    orders(who, orders) {
        return this.event(this.channel('orders', null, null, who), (state, changes) => {
            for (const o of orders) {
                const i = state.orders.findIndex((x) => x.order_id === o.order_id);
                if (i >= 0) state.orders[i] = o;
                else state.orders.unshift(o);
                changes.set(o.order_id, o);
            }
        });
    }

    // The balances, whole (available and reserved of each asset; total is their sum).
    account(who, balances) {
        return this.event(this.channel('account', null, null, who), (state, changes) => {
            state.balances = balances;
            changes.set('balances', balances);
        });
    }

    // The update's data: what changed, in the snapshot's shape.
    static changes(ch) {
        const values = [...ch.pending.changes.values()];
        switch (ch.kind) {
            case 'depth': {
                const data = { bids: [], asks: [] };
                for (const [side, l] of values) data[side].push(l);
                data.bids.sort((a, b) => Number(b.price) - Number(a.price));
                data.asks.sort((a, b) => Number(a.price) - Number(b.price));
                return data;
            }
            case 'trades': return { trades: values.reverse() }; // newest first
            case 'ticker': return values[values.length - 1];
            case 'epochs': return { epochs: values };
            case 'settlements': return { settlements: values };
            case 'orders': return { orders: values };
            case 'account': return { balances: values[values.length - 1] }; // whole, as it now is
        }
        return {};
    }

    // Sends every channel's changes as one update each. lose: the updates go to nobody (as if
    // lost on the way), though `prev` moves on.
    flush({ lose = false } = {}) {
        for (const ch of this.channels.values()) {
            if (!ch.pending) continue;
            const msg = Object.assign({ type: 'update' }, Broadcaster.names(ch),
                { seq: ch.pending.seq, prev: ch.last, data: Broadcaster.changes(ch) });
            ch.last = ch.pending.seq;
            ch.pending = null;
            if (!lose) for (const s of ch.subs) this.sendTo(s, msg);
        }
    }

    snapshot(ch) {
        return Object.assign({ type: 'snapshot' }, Broadcaster.names(ch),
            { seq: ch.kind === 'settlements' ? this.sSeq : this.seq, data: JSON.parse(JSON.stringify(ch.state)) });
    }

    // Holds answers to subscriptions until release(): a slow network, say.
    hold() { this.holding = []; }
    release() {
        const held = this.holding || [];
        this.holding = null;
        for (const [socket, ch] of held) this.sendTo(socket, this.snapshot(ch));
    }

    // -- requests

    request(socket, text) {
        let req;
        try { req = JSON.parse(text); } catch (e) { req = undefined; }
        this.inbox.push(req === undefined ? { bad: text } : req);
        const error = (code, field, message) => this.sendTo(socket, { type: 'error', code, message, field });
        if (!req || typeof req !== 'object' || Array.isArray(req)) return error('bad_json', null, 'expected a JSON object');
        for (const k of Object.keys(req))
            if (!['op', 'channel', 'market', 'epoch', 'token'].includes(k)) return error('bad_request', k, `unknown field "${k}"`);
        const { op, channel, market, epoch, token } = req;
        if (op !== 'subscribe' && op !== 'unsubscribe') return error('bad_request', 'op', 'op must be "subscribe" or "unsubscribe"');
        if (!KINDS.includes(channel)) return error('bad_request', 'channel', 'channel must be depth, trades, ticker, epochs, indicative, settlements, orders, account or my_settlements');
        const own = PRIVATE.includes(channel);
        if (!own && typeof market !== 'string') return error('bad_request', 'market', 'market is required');
        if (!own && !this.markets.includes(market)) return error('unknown_market', 'market', `no market "${market}"`);
        if (epoch !== undefined && (channel !== 'depth' || !Number.isInteger(epoch) || epoch < 0))
            return error('bad_request', 'epoch', 'epoch is a non-negative integer, for the depth channel only');
        let who = null;
        if (own) {
            const claims = token ? claimsOf(token) : null;
            if (!claims || !claims.sub || (claims.exp && claims.exp * 1000 < Date.now())) return error('bad_token', 'token', 'the token is refused');
            who = claims.sub;
        }
        const key = own ? `${channel}/${who}` : channel === 'depth'
            ? `depth/${market}/${epoch === undefined ? this.current[market] : epoch}` : `${channel}/${market}`;
        const subs = socket.subs;
        if (op === 'unsubscribe') {
            if (!subs.has(key)) return error('bad_request', 'channel', `not subscribed to ${key}`);
            const ch = this.channels.get(key);
            subs.delete(key);
            ch.subs.delete(socket);
            const names = Broadcaster.names(ch);
            return this.sendTo(socket, Object.assign({ type: 'unsubscribed' }, names));
        }
        const ch = this.channel(channel, market, epoch === undefined ? this.current[market] : epoch, who);
        if (!subs.has(key) && subs.size >= MAX_SUBSCRIPTIONS)
            return error('too_many_subscriptions', 'channel', `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`);
        subs.add(key);
        ch.subs.add(socket);
        if (own) this.sendTo(socket, { type: 'subscribed', channel, user: who });
        if (this.holding) this.holding.push([socket, ch]);
        else this.sendTo(socket, this.snapshot(ch));
    }

    // -- the WebSocket server

    listen() {
        this.server = createServer((req, res) => res.writeHead(426).end());
        this.server.on('upgrade', (req, socket) => this.accept(req, socket));
        return new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(this.port, '127.0.0.1', resolve);
        });
    }

    accept(req, socket) {
        // No subprotocol asked: none answered. The one it knows, mce.v1, asked: answered.
        // Only others: refused, as libwebsockets does.
        const asked = (req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim()).filter(Boolean);
        if (asked.length && !asked.includes('mce.v1')) {
            socket.destroy();
            return;
        }
        const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + WS_GUID).digest('base64');
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${accept}\r\n` + (asked.length ? 'Sec-WebSocket-Protocol: mce.v1\r\n' : '') + '\r\n');
        this.connections++;
        this.sockets.add(socket);
        socket.subs = new Set();
        const forget = () => {
            this.sockets.delete(socket);
            for (const key of socket.subs) {
                const ch = this.channels.get(key);
                if (ch) ch.subs.delete(socket);
            }
            socket.subs.clear();
        };
        socket.on('close', forget);
        socket.on('error', () => {});
        let buf = Buffer.alloc(0);
        socket.on('data', (chunk) => {
            buf = Buffer.concat([buf, chunk]);
            for (;;) {
                if (buf.length < 2) return;
                const op = buf[0] & 0x0f, masked = buf[1] & 0x80;
                let len = buf[1] & 0x7f, off = 2;
                if (len === 126) {
                    if (buf.length < 4) return;
                    len = buf.readUInt16BE(2);
                    off = 4;
                }
                else if (len === 127) {
                    if (buf.length < 10) return;
                    len = Number(buf.readBigUInt64BE(2));
                    off = 10;
                }
                const mask = off;
                if (masked) off += 4;
                if (buf.length < off + len) return;
                const data = Buffer.from(buf.subarray(off, off + len));
                if (masked) for (let i = 0; i < len; i++) data[i] ^= buf[mask + (i % 4)];
                buf = buf.subarray(off + len);
                if (op === 1) this.request(socket, data.toString());
                else if (op === 9) socket.write(frame(data.toString(), 10)); // ping: pong
                else if (op === 8) {
                    socket.end(frame('', 8));
                    forget();
                }
            }
        });
    }

    sendTo(socket, msg) {
        this.sent.push(msg);
        if (!socket.destroyed) socket.write(frame(JSON.stringify(msg)));
    }

    // Sends msg to every connection, whatever it follows.
    sendAll(msg) {
        for (const s of this.sockets) this.sendTo(s, msg);
    }

    // Waits until a received message at index `from` or later matches pred; returns it.
    waitFor(what, pred, from = 0) {
        return this.inbox.waitFor(what, pred, from);
    }

    count(pred) {
        return this.received.filter(pred).length;
    }

    // Goes away as a crashed server would: connections dropped, the port closed.
    stop() {
        for (const s of this.sockets) s.destroy();
        return new Promise((resolve) => this.server.close(resolve));
    }
}

const isSub = (channel, market) => (m) => m.op === 'subscribe' && m.channel === channel && (!market || m.market === market);
const isUnsub = (channel) => (m) => m.op === 'unsubscribe' && m.channel === channel;
const connState = () => document.querySelector('[data-testid=conn-state]').dataset.state;

// Waits until the deposits and withdrawals list shows `want` ("kind id status|..."), in that order.
const transfersAre = (page, what, want) => until(page, what, (want) =>
    [...document.querySelectorAll('[data-testid=transfers] tr[data-testid=transfer-row]')]
        .map((r) => `${r.dataset.kind} ${r.dataset.id} ${r.dataset.status}`).join('|') === want, want);

// Waits until the trades list shows the trades `want` ("9,8,7"), in that order.
const tradesAre = (page, what, want) => until(page, what, (want) =>
    [...document.querySelectorAll('[data-testid=trades] tr[data-testid=trade-row]')]
        .map((r) => r.dataset.tradeId).join(',') === want, want);

// ---------------------------------------------------------------------------------------

await run(NAME, async ({ page }) => {
    const config = await (await fetch(new URL('/api/dashboard/config', url))).json();
    const wsUrl = `ws://127.0.0.1:${wsPort}`;
    if (config.broadcaster_url !== wsUrl)
        throw new Failure(`the gateway's broadcaster_url is "${config.broadcaster_url}", not ${wsUrl}`);
    const markets = config.markets.map((m) => m.id);
    const market = markets[0];
    const epoch = 1234;
    const current = Object.fromEntries(markets.map((m) => [m, epoch]));

    // What the stand-in holds when the page comes: a book, a trade, the ticker, the epochs,
    // the user's order.
    const bc = new Broadcaster(wsPort, markets, current);
    const level = (price, energy_amount, orders) => ({ price, energy_amount, orders });
    bc.depth(market, epoch, { bids: [level('0.150000', '12.500', 3)], asks: [level('0.160000', '5.000', 1)] });
    const trade = (id, price, kwh) => ({
        trade_id: id, epoch, price, energy_amount: kwh, value: '0', aggressor: 'Buy', time: '2026-11-22T05:00:00.000000Z',
    });
    bc.trade(market, trade('7', '0.150000', '3.000'));
    const stats = (bid, ask, last, n) => ({
        market, seq: bc.seq, epoch, status: 'open', best_bid: bid, best_ask: ask, spread: null,
        last_price: last, volume_24h: '4.5', trades_24h: n, change_24h: '0.005', active_orders: 2,
    });
    bc.ticker(market, stats('0.15', '0.16', '0.15', 1));
    const end = new Date(Date.now() + 600000).toISOString();
    const status = (e, lastCleared, lastPrice) => ({
        market, seq: bc.seq, epoch: e, state: 'active', start: '2026-11-22T05:00:00.000000Z', end,
        seconds_remaining: 600, market_status: 'open', last_cleared_epoch: lastCleared,
        last_clearing_price: lastPrice, last_volume: '42',
    });
    bc.epochs(market, [{ epoch: epoch - 1, state: 'cleared', start: '2026-11-22T04:45:00.000000Z', end: '2026-11-22T05:00:00.000000Z', clearing_price: '0.151', volume: '42', trades: 3 }],
        status(epoch, epoch - 1, '0.151'));
    const order = (id, status, filled) => ({
        order_id: id, client_order_id: null, market, epoch, side: 'Buy', order_type: 'Limit', time_in_force: 'GTC',
        post_only: false, energy_amount: '1', price: '0.155', filled_amount: filled, remaining_amount: String(1 - Number(filled)),
        average_price: null, status, energy_source: null, expires_at: null,
        created_at: '2026-11-22T05:00:00.000000Z', updated_at: '2026-11-22T05:00:00.000000Z',
    });
    bc.orders(user, [order('42', 'open', '0')]);
    bc.flush(); // nobody follows yet: only `prev` moves on
    // Two events not yet sent when the page subscribes: its snapshots have them, and the
    // updates that carry them come after (at or below the snapshot's seq).
    bc.depth(market, epoch, { asks: [level('0.170000', '2.000', 1)] });
    bc.trade(market, trade('8', '0.155000', '1.500'));

    // The user's balances on the account channel.
    bc.account(user, balances(['12.5', '2', '14.5'], ['3.25', '0.75', '4']));
    bc.flush();

    await bc.listen();
    let restReads = 0; // market data read over HTTP (the user's own trades have no channel)
    let balanceReads = 0; // balances read over HTTP
    page.on('request', (r) => {
        if (r.url().includes('/api/market/') && !r.url().includes('/api/market/trades/my-history')) restReads++;
        if (r.url().includes('/api/account/balances')) balanceReads++;
    });
    // The lists of deposits and withdrawals, as the test sets them.
    const lists = { deposits: [], withdrawals: [] };
    const listReads = { deposits: 0, withdrawals: 0 };
    for (const name of ['deposits', 'withdrawals'])
        await page.route((u) => u.pathname === '/api/account/' + name, (route) => {
            if (route.request().method() !== 'GET') return route.continue();
            listReads[name]++;
            const body = { [name]: lists[name], limit: 20, offset: 0, total: lists[name].length };
            return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
        });

    await page.goto(url, { waitUntil: 'load', timeout: STEP_MS });
    await until(page, 'the page to go live', () => document.querySelector('[data-testid=conn-state]').dataset.state === 'live');
    const readsWhenLive = restReads;
    const depthSub = await bc.waitFor('a depth subscription', isSub('depth', market));
    if ('epoch' in depthSub) throw new Failure(`the current epoch's book is asked with an epoch: ${JSON.stringify(depthSub)}`);
    for (const c of ['trades', 'ticker', 'epochs']) await bc.waitFor(`a ${c} subscription`, isSub(c, market));
    log(`live; subscribed to depth, trades, ticker, epochs of ${market}`);

    // The snapshots.
    await depthIs(page, 'the depth snapshot drawn', 'bids:0.15@12.5|asks:0.16@5,0.17@7');
    await tradesAre(page, 'the trades snapshot listed, the newest first', '8,7');
    await until(page, 'the ticker shown', () => document.getElementById('best').textContent === '0.15 / 0.16');
    await until(page, 'the epoch shown', (e) => document.getElementById('epoch-number').textContent.startsWith(String(e)) &&
        document.getElementById('last-clearing').textContent.includes('0.151'), epoch);
    log('snapshots of depth, trades, ticker and epochs shown');

    // The updates of what the snapshots already had (at or below their seq): not a gap,
    // nothing twice. Then what came after, levels that changed several times sent once.
    bc.trade(market, trade('9', '0.156000', '0.500'));
    bc.flush(); // depth: the 0.17 ask again; trades: 9 and 8 (8 is in the snapshot)
    await tradesAre(page, 'the new trade listed once, on top', '9,8,7');
    bc.depth(market, epoch, { bids: [level('0.140000', '1.000', 1)] });
    bc.depth(market, epoch, { bids: [level('0.140000', '2.500', 2)] });
    bc.depth(market, epoch, { asks: [level('0.160000', '0', 0)] });
    bc.ticker(market, stats('0.15', '0.17', '0.156', 3));
    bc.flush();
    const lastDepth = bc.sent.filter((m) => m.type === 'update' && m.channel === 'depth').pop();
    if (lastDepth.data.bids.length !== 1 || lastDepth.data.asks.length !== 1 || 'side' in lastDepth.data)
        throw new Failure(`the stand-in did not gather the changes: ${JSON.stringify(lastDepth)}`);
    await depthIs(page, 'a level added, one changed twice, one removed', 'bids:0.15@12.5,0.14@15|asks:0.17@2');
    await until(page, 'the ticker replaced whole', () => document.getElementById('best').textContent === '0.15 / 0.17' &&
        document.getElementById('last-price').textContent === '0.156');
    const ladder = await page.getByTestId('book-bids').locator('tr').count();
    if (ladder !== 2) throw new Failure(`the ladder shows ${ladder} bid levels, not 2`);
    const orderOfBids = await page.getByTestId('book-bids').locator('tr').evaluateAll((rows) => rows.map((r) => r.dataset.price).join(','));
    if (orderOfBids !== '0.150000,0.140000') throw new Failure(`the bids are listed ${orderOfBids}, not best first`);
    log('depth and trades: updates applied on the snapshots, the ones they already had skipped');

    // A gap: an update lost on the way. The next one's prev is above the seq the page holds;
    // it applies nothing, subscribes again (for the book it holds), and applies nothing until
    // the snapshot comes; then the snapshot replaces the book.
    bc.depth(market, epoch, { bids: [level('0.130000', '1.000', 1)] });
    bc.flush({ lose: true });
    bc.hold();
    const mark = bc.received.length;
    bc.depth(market, epoch, { bids: [level('0.120000', '2.000', 1)] });
    bc.ticker(market, stats('0.15', '0.17', '0.156', 3)); // the bus moves on: the snapshot's seq is past the depth update's
    bc.flush();
    const again = await bc.waitFor('a new depth subscription after the gap', isSub('depth', market), mark);
    if (bc.count(isSub('depth', market)) !== 2)
        throw new Failure(`${bc.count(isSub('depth', market))} depth subscriptions, not 2: only the gap is one`);
    if (again.epoch !== epoch) throw new Failure(`asked again for ${JSON.stringify(again)}, not the book of epoch ${epoch} it holds`);
    bc.depth(market, epoch, { asks: [level('0.180000', '1.000', 1)] });
    bc.flush(); // before the snapshot: not applied
    const early = bc.sent.filter((m) => m.type === 'update' && m.channel === 'depth').pop();
    if (!early.data.asks.some((l) => norm(l.price) === '0.18'))
        throw new Failure(`the stand-in did not send the update before the snapshot: ${JSON.stringify(early)}`);
    // Then a ticker update the page does apply: once it shows, the page has handled the depth
    // update before it (messages are handled in order), and must have left the book as it was.
    bc.ticker(market, stats('0.15', '0.17', '0.1575', 3));
    bc.flush();
    await until(page, 'the ticker update sent after the early depth update shown',
        () => document.getElementById('last-price').textContent === '0.1575');
    const unchanged = await page.getByTestId('depth-chart').getAttribute('data-signature');
    if (unchanged !== 'bids:0.15@12.5,0.14@15|asks:0.17@2')
        throw new Failure(`an update after a gap, before its snapshot, was applied: the chart shows ${unchanged}`);
    bc.ticker(market, stats('0.15', '0.17', '0.156', 3)); // the bus moves on before the snapshot
    bc.release();
    const held = bc.seq; // the snapshot's
    await depthIs(page, 'the snapshot after the gap drawn', 'bids:0.15@12.5,0.14@15,0.13@16,0.12@18|asks:0.17@2,0.18@3');
    // After the snapshot, the next update's prev is below the seq the page holds: not a gap.
    bc.depth(market, epoch, { bids: [level('0.150000', '10.000', 2)] });
    bc.flush();
    const next = bc.sent.filter((m) => m.type === 'update' && m.channel === 'depth').pop();
    if (!(next.prev < held)) throw new Failure(`the stand-in sent prev ${next.prev}, not below the snapshot's ${held}`);
    await depthIs(page, 'the update after the snapshot applied', 'bids:0.15@10,0.14@12.5,0.13@13.5,0.12@15.5|asks:0.17@2,0.18@3');
    if (bc.count(isSub('depth', market)) !== 2) throw new Failure('the page subscribed again for an update that was no gap');
    log('depth: a gap made the page subscribe again, and the new snapshot replaced the book');

    // A new epoch: the page leaves the old book and takes the new one by its number.
    bc.depth(market, epoch + 1, { bids: [level('0.200000', '1.000', 1)] });
    const newEnd = new Date(Date.now() + 1200000).toISOString();
    bc.epochs(market, [
        { epoch, state: 'cleared', start: '2026-11-22T05:00:00.000000Z', end, clearing_price: '0.152', volume: '7', trades: 2 },
        { epoch: epoch + 1, state: 'active', start: end, end: newEnd, clearing_price: null, volume: '0', trades: 0 },
    ], status(epoch + 1, epoch, '0.152'));
    current[market] = epoch + 1;
    const markEpoch = bc.received.length;
    bc.flush();
    await until(page, 'the new epoch shown', (e) => document.getElementById('epoch-number').textContent.startsWith(String(e)) &&
        document.getElementById('last-clearing').textContent.includes('0.152'), epoch + 1);
    const left = await bc.waitFor('the old book left', isUnsub('depth'), markEpoch);
    if (left.epoch !== epoch) throw new Failure(`left ${JSON.stringify(left)}, not the book of epoch ${epoch}`);
    const taken = await bc.waitFor('the new book taken', isSub('depth', market), markEpoch);
    if (taken.epoch !== epoch + 1) throw new Failure(`took ${JSON.stringify(taken)}, not the book of epoch ${epoch + 1}`);
    await depthIs(page, 'the new epoch\'s book drawn', 'bids:0.2@1|asks:');
    bc.depth(market, epoch, { bids: [level('0.110000', '1.000', 1)] }); // the old book, not followed
    bc.depth(market, epoch + 1, { asks: [level('0.210000', '3.000', 1)] });
    bc.flush();
    await depthIs(page, 'the new epoch\'s book updated', 'bids:0.2@1|asks:0.21@3');
    log(`a new epoch: book of ${epoch} left, book of ${epoch + 1} followed`);

    bc.sendAll({ type: 'error', code: 'bad_request', message: 'unknown channel "depht"', field: 'channel' });
    await outcome(page, 'the broadcaster\'s error shown', 'error', /broadcaster: bad_request/);

    // Signed in: the private orders and account channels, with the token; their messages name
    // the user. A deposit and a withdrawal on their way.
    // kind id, made at minute, as GET /api/account/deposits or /withdrawals lists it
    const transfer = (kind, id, minute, asset, amount, status, more) => Object.assign({
        [kind + '_id']: id, asset, amount, status, signature: null, attempts: 0, error: null,
        created_at: `2026-11-22T05:0${minute}:00.000000Z`, updated_at: '2026-11-22T05:10:00.000000Z',
    }, more);
    lists.deposits = [transfer('deposit', '12', 1, 'energy', '5', 'pending')];
    lists.withdrawals = [transfer('withdrawal', '3', 2, 'payment', '1.5', 'requested')];
    const signIn = async () => {
        await page.getByTestId('login-username').fill(user);
        await page.getByTestId('login-password').fill(password);
        await page.getByTestId('login-submit').click();
        await outcome(page, `signing in as ${user}`, 'ok', new RegExp('signed in as ' + user));
    };
    await signIn();
    const ordersSub = await bc.waitFor('an orders subscription', isSub('orders'));
    if (!ordersSub.token) throw new Failure('the orders subscription carries no token');
    const accountSub = await bc.waitFor('an account subscription', isSub('account'));
    if (accountSub.token !== ordersSub.token) throw new Failure('the account subscription carries another token than the orders one');
    await balancesAre(page, 'the balances of the account snapshot', 'ws', '12.5 2 14.5 3.25 0.75 4');
    const balanceReadsLive = balanceReads;
    bc.account(user, balances(['10.5', '4', '14.5'], ['3.25', '0.75', '4']));
    bc.flush();
    await balancesAre(page, 'the balances of an account update', 'ws', '10.5 4 14.5 3.25 0.75 4');
    log('account channel taken with the token; its snapshot and update shown');

    // The deposits and withdrawals, followed until every one is final.
    await transfersAre(page, 'the deposit and the withdrawal listed', 'withdrawal 3 requested|deposit 12 pending');
    if (!(await page.evaluate(() => document.getElementById('transfers-panel').dataset.followMs)))
        throw new Failure('the page does not follow a pending deposit');
    const txSig = '5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW';
    lists.deposits = [transfer('deposit', '13', 3, 'energy', '5000', 'failed', { error: 'custom program error: 0x1 (insufficient funds)', attempts: 1 }),
        transfer('deposit', '12', 1, 'energy', '5', 'processing', { signature: txSig, attempts: 1 })];
    lists.withdrawals = [transfer('withdrawal', '3', 2, 'payment', '1.5', 'failed', { error: 'the token account is frozen', attempts: 3 })];
    await transfersAre(page, 'the statuses moved on, read by the page itself',
        'deposit 13 failed|withdrawal 3 failed|deposit 12 processing');
    lists.deposits[1] = Object.assign({}, lists.deposits[1], { status: 'credited' });
    lists.withdrawals[0] = Object.assign({}, lists.withdrawals[0], { status: 'refunded' });
    await transfersAre(page, 'every one final', 'deposit 13 failed|withdrawal 3 refunded|deposit 12 credited');
    const shown = await page.locator('[data-testid=transfers] tr[data-testid=transfer-row]').evaluateAll((rows) => rows.map((r) => {
        const detail = r.cells[5];
        return { id: r.dataset.id, text: detail.textContent, title: detail.title };
    }));
    const failed = shown.find((r) => r.id === '13'), credited = shown.find((r) => r.id === '12');
    if (!failed.text.includes('insufficient funds')) throw new Failure(`the failed deposit shows "${failed.text}", not why it failed`);
    if (credited.title !== txSig || credited.text.length >= txSig.length || !credited.text.startsWith(txSig.slice(0, 4)))
        throw new Failure(`the credited deposit's signature shows "${credited.text}" (title "${credited.title}"), not shortened with the whole in its title`);
    await until(page, 'the page to stop reading once every one is final',
        () => document.getElementById('transfers-panel').dataset.followMs === '');
    log(`deposits and withdrawals followed to their final statuses (${listReads.deposits} reads), then left alone`);
    await until(page, 'the order from the orders snapshot', () => document.querySelector('[data-testid=my-orders] tr[data-order-id="42"]'));
    bc.orders(user, [order('42', 'filled', '1'), Object.assign(order('43', 'open', '0'), { price: '0.154' })]);
    bc.flush();
    await until(page, 'the orders update applied', () => {
        const rows = [...document.querySelectorAll('[data-testid=my-orders] tr[data-testid=my-order-row]')];
        return rows.map((r) => r.dataset.orderId + ':' + r.dataset.status).join(',') === '43:open,42:filled';
    });
    if (restReads !== readsWhenLive)
        throw new Failure(`the page read market data over HTTP ${restReads - readsWhenLive} times while live`);
    if (balanceReads !== balanceReadsLive)
        throw new Failure(`the page read balances over HTTP ${balanceReads - balanceReadsLive} times with the account channel live`);
    log('orders channel taken with the token; its snapshot and update shown');

    // Signed out: it leaves both channels with the same token, and keeps the connection.
    const connectionsBefore = bc.connections;
    const markOut = bc.received.length;
    await page.getByTestId('logout').click();
    for (const channel of ['orders', 'account']) {
        const leave = await bc.waitFor(`the ${channel} channel left`, isUnsub(channel), markOut);
        if (leave.token !== ordersSub.token) throw new Failure(`the ${channel} channel was left with another token than it was taken with`);
        if (bc.channels.get(`${channel}/${user}`).subs.size) throw new Failure(`the stand-in still sends the ${channel} channel`);
    }
    await balancesAre(page, 'no balances shown once signed out', '', '- - - - - -');
    if (await page.locator('[data-testid=transfers] tr[data-testid=transfer-row]').count())
        throw new Failure('deposits and withdrawals still listed after signing out');
    bc.orders(user, [order('44', 'open', '0')]);
    bc.flush();
    // Then a ticker update the page does apply: once it shows, whatever came before it has
    // been handled, and no order may be shown.
    bc.ticker(market, stats('0.15', '0.17', '0.1585', 3));
    bc.flush();
    await until(page, 'the ticker update sent after the orders shown',
        () => document.getElementById('last-price').textContent === '0.1585');
    if (await page.locator('[data-testid=my-orders] tr[data-order-id]').count())
        throw new Failure('orders still shown after signing out');
    if (bc.connections !== connectionsBefore || await page.evaluate(connState) !== 'live')
        throw new Failure('signing out dropped the connection: unsubscribing is enough');
    log('orders channel left with its token on sign-out, on the same connection');

    // The broadcaster goes away: polling, the gateway's own data, then live again.
    await bc.stop();
    await until(page, 'the page to say polling', () => document.querySelector('[data-testid=conn-state]').dataset.state === 'polling');
    const chart = await (await fetch(new URL('/api/market/depth-chart?market=' + encodeURIComponent(market), url))).json();
    const sig = (side) => side.map((l) => norm(l.price) + '@' + l.cumulative_energy).join(',');
    await depthIs(page, 'the gateway\'s book drawn again', 'bids:' + sig(chart.bids) + '|asks:' + sig(chart.asks));
    const source = await page.getByTestId('depth-chart').getAttribute('data-source');
    if (source !== 'http') throw new Failure(`the chart's data came from "${source}", not http, while polling`);
    log('broadcaster gone: polling the gateway');
    // Signed in again: the gateway's balances (nothing deposited), read over HTTP.
    await signIn();
    await balancesAre(page, 'the gateway\'s balances while polling', 'http', '0 0 0 0 0 0');
    log('balances read over HTTP while polling');
    const back = new Broadcaster(wsPort, markets, current);
    back.depth(market, current[market], { bids: [level('0.190000', '4.000', 1)] });
    back.account(user, balances(['1', '0', '1'], ['2', '0', '2']));
    await back.listen();
    await until(page, 'live again once the broadcaster is back', () => document.querySelector('[data-testid=conn-state]').dataset.state === 'live');
    const resub = await back.waitFor('subscriptions on the new connection', isSub('depth', market));
    if ('epoch' in resub) throw new Failure(`a new connection asks for the current book with an epoch: ${JSON.stringify(resub)}`);
    await depthIs(page, 'the new connection\'s book drawn', 'bids:0.19@4|asks:');
    await back.waitFor('the account channel taken again', isSub('account'));
    await balancesAre(page, 'the new connection\'s balances shown', 'ws', '1 0 1 2 0 2');
    log('broadcaster back: live again');
    await back.stop();
});
