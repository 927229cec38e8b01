/*  mce dashboard — market data, sign-up and sign-in, orders, balances, deposits and
    withdrawals, and admin controls, over the gateway's HTTP API and the broadcaster's WebSocket
    (broadcaster/PROTOCOL.md).

    Signing up proves the wallet: the gateway's challenge is signed by the browser's injected
    Solana wallet (signMessage, as Phantom and Solflare offer it), or, without one, shown to be
    signed elsewhere and the signature pasted.

    Live data comes from the broadcaster when its WebSocket is open: each channel's snapshot
    replaces what the page holds, each update (what changed, in the snapshot's shape) applies
    on top, and an update whose `prev` is greater than the seq we hold means we missed one, so
    we subscribe again for a fresh snapshot. While the WebSocket is not open (the broadcaster
    is down, or not configured) the page reads the same data over HTTP every POLL_MS, and
    keeps trying to reconnect with a growing delay. A signed-in user's orders and balances come
    the same way, on the private `orders` and `account` channels.

    Deposits, withdrawals and the user's trades (with how their settlement stands) have no
    channel: they change on chain, and the page reads them over HTTP after each action or fill,
    and again while any of them may still change (a deposit not yet credited or failed, a
    settlement not yet confirmed), less often while nothing does.

    Prices and amounts stay decimal strings as the API sends them. Where the page must add
    them (cumulative depth from WebSocket levels, the spread) it uses exact BigInt units;
    only the charts turn them into floating point, to place pixels.

    No inline script or style: the page's Content-Security-Policy allows only this file and
    style.css, and connections only to this origin and the broadcaster.
*/
(function () {
    'use strict';

    const POLL_MS = 2000;
    const WS_RETRY_MIN_MS = 1000;
    const WS_RETRY_MAX_MS = 30000;
    const BOOK_LEVELS = 15;      // per side in the ladder
    const TRADES_KEPT = 50;
    const EPOCHS_CHARTED = 96;   // a day of 15-minute epochs
    const ADMIN_MS = 5000;       // the operator's view is read again this often
    const TOKEN_KEY = 'mce.token';
    const KWH = 3;               // decimals of kWh (Wh)
    const PRICE = 6;             // decimals of prices (micro-units)
    const OPEN_STATES = ['open', 'partially_filled'];
    const PRIVATE = ['orders', 'account']; // the signed-in user's channels, taken with the token
    const HISTORY_KEPT = 20;     // deposits, withdrawals and trades of the user listed
    const HISTORY_MIN_MS = 2000; // following what may still change: the first read again...
    const HISTORY_MAX_MS = 60000; // ...doubling up to this while nothing changes
    const HISTORY_EXPECT_MS = 30000; // after an action or a fill: how long to look for its result
    // The statuses after which nothing changes any more.
    const FINAL = {
        deposit: ['credited', 'failed'],
        withdrawal: ['paid', 'refunded'],
        trade: ['confirmed', 'failed'],
    };
    const SCALE = { energy: KWH, payment: PRICE }; // decimals of each asset's amounts
    const UNIT = { energy: 'kWh of energy', payment: 'payment tokens' };
    const SIG_SHOWN = 6;         // characters shown at each end of a transaction signature

    const $ = (id) => document.getElementById(id);

    const S = {
        config: { broadcaster_url: '', markets: [] },
        market: '',          // selected market id
        epoch: '',           // selected epoch number as text, '' = the current one
        token: null, user: '', role: '', expiryTimer: null,
        ws: null, live: false, wsRetry: WS_RETRY_MIN_MS, wsTimer: null,
        wsCount: { attempts: 0, opens: 0, failures: 0 }, // connections tried, opened, failed to open
        subs: new Map(),     // channel|market (orders: channel|user) -> {sel, seq, epoch}:
                             // what we asked the broadcaster for, and what we hold of it
        privateLeaving: 0,   // unsubscribes from private channels awaiting their answer
        book: { bids: new Map(), asks: new Map() }, // price key -> {price, energy_amount, orders}
        trades: [], stats: null, epochStatus: null, epochs: [], orders: [],
        indicative: new Map(), // auction markets: epoch -> its latest indicative clearing
        balances: null, balancesSource: '', // {energy, payment: {available, reserved, total}}
        filled: new Map(),   // order id -> filled Wh seen, to notice a new fill
        history: {           // the user's deposits, withdrawals and trades (HTTP only)
            deposits: [], withdrawals: [], trades: [], source: '',
            transfersError: null, tradesError: null,
            shown: '',       // what was last read, to tell whether anything changed
            timer: null, delay: HISTORY_MIN_MS, until: 0, busy: false, again: false,
        },
        chart: { bids: [], asks: [] }, // what the depth chart shows
        epochEnd: null,      // ms since the Unix epoch, for the countdown
        polling: false, pollAgain: false, pollError: '',
        challenge: null,     // sign-up without a browser wallet: {wallet, username, nonce} shown
        amending: null,      // the order the amend form is for
    };

    // ------------------------------------------------------------------------------------
    // Exact decimals

    // "12.5" at scale 3 -> 12500n. The API never sends more decimals than the scale.
    function units(text, scale) {
        const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text));
        if (!m) return 0n;
        const v = BigInt(m[2] + (m[3] || '').padEnd(scale, '0').slice(0, scale));
        return m[1] ? -v : v;
    }

    // 12500n at scale 3 -> "12.5"
    function decimal(v, scale) {
        const neg = v < 0n;
        const digits = (neg ? -v : v).toString().padStart(scale + 1, '0');
        const whole = digits.slice(0, digits.length - scale);
        const frac = digits.slice(digits.length - scale).replace(/0+$/, '');
        return (neg ? '-' : '') + whole + (frac ? '.' + frac : '');
    }

    // The currency's label (gateway.currency), beside every amount of money.
    const currency = () => S.config.currency || '';

    // One spelling per price ("0.150000" and "0.15" are one level).
    const priceKey = (p) => decimal(units(p, PRICE), PRICE);

    // ------------------------------------------------------------------------------------
    // HTTP API

    class ApiError extends Error {
        constructor(status, code, message, field) {
            super(message);
            this.status = status;
            this.code = code;
            this.field = field;
        }
    }

    // method path [body] [auth]: the parsed JSON answer, or throws ApiError with the API's
    // {"error": {code, message, field}}.
    async function api(method, path, body, auth) {
        const headers = {};
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        if (auth && S.token) headers.Authorization = 'Bearer ' + S.token;
        let resp;
        try {
            resp = await fetch(path, {
                method, headers, cache: 'no-store',
                body: body === undefined ? undefined : JSON.stringify(body),
            });
        } catch (e) {
            throw new ApiError(0, 'network', 'cannot reach the gateway (' + e.message + ')', null);
        }
        const text = await resp.text();
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (!resp.ok) {
            const err = (json && json.error) || {};
            if (resp.status === 401 && auth) setToken(null); // expired or refused: sign out
            throw new ApiError(resp.status, err.code || 'http_' + resp.status,
                err.message || resp.statusText || 'request failed', err.field || null);
        }
        return json;
    }

    function marketQuery(withEpoch) {
        const q = new URLSearchParams();
        if (S.market) q.set('market', S.market);
        if (withEpoch && S.epoch) q.set('epoch', S.epoch);
        const s = q.toString();
        return s ? '?' + s : '';
    }

    // ------------------------------------------------------------------------------------
    // Status line

    function say(kind, text) {
        const el = $('status');
        el.textContent = text;
        el.className = 'status ' + kind;
        el.dataset.kind = kind;
    }

    function errorText(err) {
        if (err instanceof ApiError)
            return err.code + ': ' + err.message + (err.field ? ' (field ' + err.field + ')' : '');
        return 'error: ' + (err && err.message ? err.message : String(err));
    }

    // Shows err, and marks the form's input the API blamed.
    function fail(err, form) {
        say('error', errorText(err));
        if (form && err instanceof ApiError && err.field) {
            const input = form.querySelector('[name="' + CSS.escape(err.field) + '"]');
            if (input) input.classList.add('invalid');
        }
    }

    // ------------------------------------------------------------------------------------
    // Small DOM helpers

    function cell(tr, text, cls) {
        const td = document.createElement('td');
        td.textContent = text === null || text === undefined ? '-' : String(text);
        if (cls) td.className = cls;
        tr.appendChild(td);
        return td;
    }

    function emptyRow(tbody, cols, text) {
        const tr = document.createElement('tr');
        tr.className = 'empty';
        const td = cell(tr, text);
        td.colSpan = cols;
        tbody.appendChild(tr);
    }

    // "2026-11-21T21:45:00.000000Z" -> ms (Date.parse wants at most milliseconds)
    const parseTime = (t) => (t ? Date.parse(String(t).replace(/(\.\d{3})\d+/, '$1')) : NaN);

    // An epoch as people think of it: its delivery period in local time ("14:15-14:30", with
    // seconds for epochs shorter than a minute); its number where the period is not known.
    function period(x) {
        const a = parseTime(x.delivery_start), b = parseTime(x.delivery_end);
        if (isNaN(a) || isNaN(b)) return String(x.epoch);
        const opts = b - a < 60000 ? { hour12: false } : { hour12: false, hour: '2-digit', minute: '2-digit' };
        const at = (ms) => new Date(ms).toLocaleTimeString([], opts);
        // a period of a day or more (or across midnight) names its days too
        const day = (ms) => new Date(ms).toLocaleDateString([], { month: 'short', day: 'numeric' });
        if (b - a >= 86400000 || day(a) !== day(b - 1)) return day(a) + ' ' + at(a) + '\u2013' + day(b) + ' ' + at(b);
        return at(a) + '\u2013' + at(b);
    }

    function clockTime(t) {
        const ms = parseTime(t);
        return isNaN(ms) ? '-' : new Date(ms).toLocaleTimeString([], { hour12: false });
    }

    function duration(seconds) {
        const s = Math.max(0, Math.floor(seconds));
        const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
        const m = Math.floor(s / 60) % 60, sec = s % 60;
        const two = (n) => String(n).padStart(2, '0');
        if (d > 0) return d + 'd ' + h + 'h ' + two(m) + 'm';
        if (h > 0) return h + ':' + two(m) + ':' + two(sec);
        return m + ':' + two(sec);
    }

    // ------------------------------------------------------------------------------------
    // Rendering

    function renderEpochStatus() {
        const st = S.epochStatus;
        if (!st) return;
        $('epoch-number').textContent = period(st) + ' (epoch ' + st.epoch + (st.state ? ', ' + st.state : '') + ')';
        $('market-status').textContent = st.market_status;
        // an auction's clearing price; in continuous mode the epoch's average price
        const lastPrice = st.last_clearing_price !== null && st.last_clearing_price !== undefined
            ? st.last_clearing_price : (st.last_average_price ?? null);
        $('last-clearing').textContent = lastPrice !== null
            ? lastPrice + ' x ' + st.last_volume + ' kWh (epoch ' + st.last_cleared_epoch + ')'
            : (st.last_cleared_epoch !== null
                ? 'no trades (epoch ' + st.last_cleared_epoch + ', volume ' + st.last_volume + ' kWh)'
                : '-');
        S.epochEnd = parseTime(st.end);
        tickCountdown();
        updateEpochOptions();
    }

    function tickCountdown() {
        if (S.epochEnd === null || isNaN(S.epochEnd)) return;
        $('countdown').textContent = duration((S.epochEnd - Date.now()) / 1000);
    }

    function renderStats() {
        const st = S.stats;
        if (!st) return;
        $('best').textContent = (st.best_bid || '-') + ' / ' + (st.best_ask || '-');
        $('last-price').textContent = st.last_price || '-';
        $('volume-24h').textContent = st.volume_24h + ' kWh (' + st.trades_24h + ' trades)';
    }

    // The book's levels, best first: bids by price down, asks by price up.
    function sortedLevels(map, descending) {
        const levels = [...map.values()];
        levels.sort((a, b) => {
            const d = units(a.price, PRICE) - units(b.price, PRICE);
            return (d < 0n ? -1 : d > 0n ? 1 : 0) * (descending ? -1 : 1);
        });
        return levels;
    }

    function setBook(bids, asks) {
        S.book.bids = new Map(bids.map((l) => [priceKey(l.price), l]));
        S.book.asks = new Map(asks.map((l) => [priceKey(l.price), l]));
    }

    function renderBook() {
        const bids = sortedLevels(S.book.bids, true), asks = sortedLevels(S.book.asks, false);
        const fill = (tbody, levels) => {
            tbody.replaceChildren();
            for (const l of levels) {
                const tr = document.createElement('tr');
                tr.dataset.price = l.price;
                cell(tr, l.price);
                cell(tr, l.energy_amount);
                cell(tr, l.orders);
                tbody.appendChild(tr);
            }
        };
        fill($('asks'), asks.slice(0, BOOK_LEVELS).reverse()); // the best ask next to the spread
        fill($('bids'), bids.slice(0, BOOK_LEVELS));
        // An auction book is crossed by design until gate closure: what it would clear at
        // now says more than a (negative) spread.
        const x = isAuction() ? S.indicative.get(shownEpoch()) : null;
        $('spread').textContent = x ? indicativeText(x)
            : bids.length && asks.length
                ? 'spread ' + decimal(units(asks[0].price, PRICE) - units(bids[0].price, PRICE), PRICE)
                : (bids.length || asks.length ? 'one-sided book' : 'empty book');
    }

    function isAuction() {
        const market = S.config && S.config.markets.find((m) => m.id === S.market);
        return Boolean(market && market.mode !== 'continuous');
    }

    // The epoch whose book is shown: the one chosen, else the one the depth channel holds.
    function shownEpoch() {
        if (S.epoch) return Number(S.epoch);
        const sub = S.subs.get(subKey('depth', S.market));
        if (sub && sub.epoch !== null) return sub.epoch;
        return S.epochStatus ? S.epochStatus.epoch : null;
    }

    function indicativeText(x) {
        if (!x.crossed) return 'indicative: nothing crosses yet';
        let text = 'indicative ' + x.price + ' \u00b7 ' + x.volume + ' kWh';
        if (x.imbalance_side) text += ' \u00b7 ' + x.imbalance_side.toLowerCase() + ' imbalance ' + x.imbalance + ' kWh';
        if (units(x.grid_sold, KWH) > 0n) text += ' \u00b7 grid sells ' + x.grid_sold;
        if (units(x.grid_bought, KWH) > 0n) text += ' \u00b7 grid buys ' + x.grid_bought;
        return text;
    }

    function setIndicatives(rows) {
        for (const x of rows) S.indicative.set(x.epoch, x);
        renderBook();
    }

    // Cumulative depth from the book we hold (WebSocket levels), best first, exact.
    function cumulative(levels) {
        let sum = 0n;
        return levels.map((l) => {
            sum += units(l.energy_amount, KWH);
            return { price: l.price, cumulative_energy: decimal(sum, KWH) };
        });
    }

    function renderTrades() {
        const tbody = $('trades');
        tbody.replaceChildren();
        for (const t of S.trades.slice(0, TRADES_KEPT)) {
            const tr = document.createElement('tr');
            tr.dataset.testid = 'trade-row';
            tr.dataset.tradeId = t.trade_id;
            cell(tr, clockTime(t.time));
            cell(tr, t.price);
            cell(tr, t.energy_amount);
            cell(tr, t.aggressor || 'auction', t.aggressor || '');
            cell(tr, period(t)).title = 'epoch ' + t.epoch;
            tbody.appendChild(tr);
        }
        if (!S.trades.length) emptyRow(tbody, 5, 'no trades yet');
    }

    function renderOrders() {
        const tbody = $('my-orders');
        tbody.replaceChildren();
        const mine = S.orders.filter((o) => !S.market || o.market === S.market);
        for (const o of mine) {
            const tr = document.createElement('tr');
            tr.dataset.testid = 'my-order-row';
            tr.dataset.orderId = o.order_id;
            tr.dataset.status = o.status;
            cell(tr, o.order_id);
            cell(tr, o.side, o.side);
            cell(tr, o.price === null ? 'market' : o.price);
            cell(tr, o.energy_amount);
            cell(tr, o.filled_amount);
            // why it ended, beside how: "cancelled (self_trade)", "expired (epoch_close)"
            cell(tr, o.end_reason && o.end_reason !== 'filled' && o.end_reason !== 'user'
                ? o.status + ' (' + o.end_reason + ')' : o.status);
            cell(tr, period(o)).title = 'epoch ' + o.epoch;
            const td = cell(tr, '');
            if (OPEN_STATES.includes(o.status)) {
                const button = (text, testid) => {
                    const b = document.createElement('button');
                    b.type = 'button';
                    b.textContent = text;
                    b.dataset.testid = testid;
                    b.dataset.orderId = o.order_id;
                    return b;
                };
                const amend = button('Amend', 'amend-order');
                amend.dataset.amend = '1';
                td.replaceChildren(amend, button('Cancel', 'cancel-order'));
                td.classList.add('actions');
            }
            tbody.appendChild(tr);
        }
        if (!mine.length) emptyRow(tbody, 8, 'no orders in this market');
    }

    // A panel's own line (a form's outcome, a list that could not be read): kind 'ok' or
    // 'error'; no text hides it.
    function note(id, kind, text) {
        const el = $(id);
        el.hidden = !text;
        el.textContent = text || '';
        el.className = 'note ' + (kind || '');
        el.dataset.kind = text ? kind : '';
    }

    function renderBalances() {
        const b = S.balances;
        for (const asset of ['energy', 'payment'])
            for (const part of ['available', 'reserved', 'total'])
                $(asset + '-' + part).textContent = b && b[asset] ? b[asset][part] : '-';
        $('balances').dataset.source = S.balancesSource; // where they came from: ws or http
    }

    // "5Kx…9fQz", the whole signature in the cell's title.
    function signatureCell(tr, signature) {
        const short = signature && signature.length > 2 * SIG_SHOWN + 1
            ? signature.slice(0, SIG_SHOWN) + '…' + signature.slice(-SIG_SHOWN) : signature;
        const td = cell(tr, short, 'sig');
        if (signature) {
            td.title = signature;
            td.dataset.signature = signature;
        }
        return td;
    }

    // A status word, coloured by where it stands: final and good, final and not, on its way.
    function statusCell(tr, kind, status) {
        const cls = !status ? '' : status === 'failed' || status === 'refunded' ? 'state bad'
            : FINAL[kind].includes(status) ? 'state good' : 'state busy';
        return cell(tr, status, cls);
    }

    // Deposits and withdrawals in one list, the newest first.
    function renderTransfers() {
        const h = S.history;
        const rows = h.deposits.map((d) => ({ kind: 'deposit', id: d.deposit_id, t: d }))
            .concat(h.withdrawals.map((w) => ({ kind: 'withdrawal', id: w.withdrawal_id, t: w })));
        const at = (r) => r.t.created_at || '';
        rows.sort((a, b) => (at(a) < at(b) ? 1 : at(a) > at(b) ? -1 : 0));
        const tbody = $('transfers');
        tbody.replaceChildren();
        for (const { kind, id, t } of rows) {
            const tr = document.createElement('tr');
            tr.dataset.testid = 'transfer-row';
            tr.dataset.kind = kind;
            tr.dataset.id = id;
            tr.dataset.status = t.status;
            // What a phone shows first, then what it scrolls to.
            cell(tr, kind + ' ' + id);
            statusCell(tr, kind, t.status);
            cell(tr, t.amount);
            cell(tr, t.asset);
            cell(tr, clockTime(t.created_at));
            // Why it failed (or why its last attempt did), else the transaction that moved it.
            if (t.error) {
                const td = cell(tr, t.error, 'reason');
                td.title = t.error;
                tr.dataset.error = t.error;
            }
            else signatureCell(tr, t.signature);
            tbody.appendChild(tr);
        }
        if (!rows.length) emptyRow(tbody, 6, 'no deposits or withdrawals yet');
        note('transfers-note', 'error', h.transfersError ? errorText(h.transfersError) : '');
    }

    function renderMyTrades() {
        const h = S.history;
        const tbody = $('my-trades');
        tbody.replaceChildren();
        for (const t of h.trades) {
            const tr = document.createElement('tr');
            tr.dataset.testid = 'my-trade-row';
            tr.dataset.tradeId = t.trade_id;
            tr.dataset.orderId = t.order_id || '';
            tr.dataset.settlement = t.settlement_status || '';
            // What a phone shows first, then what it scrolls to.
            cell(tr, clockTime(t.time));
            cell(tr, t.side, t.side);
            cell(tr, t.price);
            cell(tr, t.energy_amount);
            const td = statusCell(tr, 'trade', t.settlement_status);
            if (!t.settlement_status)
                td.title = h.source === 'recent' ? 'the trade history is not answering: unknown for now'
                    : 'not recorded by the settler yet';
            signatureCell(tr, t.signature);
            cell(tr, t.order_id);
            cell(tr, t.value);
            cell(tr, t.market);
            tbody.appendChild(tr);
        }
        if (!h.trades.length) emptyRow(tbody, 9, 'no trades of yours yet');
        note('my-trades-note', 'error', h.tradesError ? errorText(h.tradesError) : '');
    }

    // The epoch selector: the current epoch, the future ones that accept orders, and the
    // recent ones we know of. Rebuilt only when that list changes, keeping the selection.
    function updateEpochOptions() {
        const cur = S.epochStatus ? S.epochStatus.epoch : null;
        const market = S.config.markets.find((m) => m.id === S.market);
        const ahead = market ? market.future_epochs : 0;
        const options = [['', cur === null ? 'current' : 'current (' + cur + ')']];
        if (cur !== null)
            for (let e = cur + 1; e <= cur + ahead; e++) options.push([String(e), e + ' (future)']);
        for (const ep of S.epochs)
            if (cur === null || ep.epoch < cur) options.push([String(ep.epoch), ep.epoch + ' (' + ep.state + ')']);
        const select = $('epoch');
        const signature = options.map((o) => o.join(':')).join(',');
        if (select.dataset.signature === signature) return;
        select.dataset.signature = signature;
        select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
        if (!options.some(([value]) => value === S.epoch)) S.epoch = '';
        select.value = S.epoch;
    }

    // ------------------------------------------------------------------------------------
    // Charts (canvas, by hand)

    // Sizes the canvas for its CSS box and the screen's pixel ratio; returns its 2D context
    // in CSS pixels, with w and h.
    function canvasContext(canvas) {
        const ratio = window.devicePixelRatio || 1;
        const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
        if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
            canvas.width = Math.round(w * ratio);
            canvas.height = Math.round(h * ratio);
        }
        const ctx = canvas.getContext('2d');
        ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
        ctx.clearRect(0, 0, w, h);
        ctx.font = '11px system-ui, sans-serif';
        return { ctx, w, h };
    }

    const COLORS = { bid: '#2fbf71', ask: '#e5534b', axis: '#8a96a3', grid: '#2a3440', line: '#4c9aff', bar: '#3b4b5c' };

    // A chart's kWh label: whole numbers from 100 up, one decimal below.
    const amount = (n) => (n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1));

    function label(ctx, text, x, y, align) {
        ctx.fillStyle = COLORS.axis;
        ctx.textAlign = align || 'left';
        ctx.fillText(text, x, y);
    }

    // bids and asks: [{price, cumulative_energy}], best first (GET /api/market/depth-chart).
    // source: 'http' or 'ws', where they came from.
    function drawDepth(bids, asks, seq, source) {
        S.chart = { bids, asks, seq, source }; // drawn again as it was when the window resizes
        const canvas = $('depth-chart');
        // What was drawn, for tests and people: it changes exactly when the picture does.
        const sig = (side) => side.map((l) => priceKey(l.price) + '@' + l.cumulative_energy).join(',');
        canvas.dataset.signature = 'bids:' + sig(bids) + '|asks:' + sig(asks);
        canvas.dataset.bids = bids.length;
        canvas.dataset.asks = asks.length;
        if (seq !== undefined) canvas.dataset.seq = seq;
        canvas.dataset.source = source || '';

        const { ctx, w, h } = canvasContext(canvas);
        const pad = { l: 12, r: 12, t: 16, b: 22 };
        if (!bids.length && !asks.length) {
            label(ctx, 'no orders in this book', w / 2, h / 2, 'center');
            return;
        }
        const points = (side) => side.map((l) => [Number(l.price), Number(l.cumulative_energy)]);
        const b = points(bids), a = points(asks);
        const prices = b.concat(a).map((p) => p[0]);
        let lo = Math.min(...prices), hi = Math.max(...prices);
        const span = hi - lo || Math.max(hi * 0.1, 0.01);
        lo -= span * 0.1;
        hi += span * 0.1;
        const top = Math.max(...b.concat(a).map((p) => p[1])) * 1.1;
        const x = (p) => pad.l + ((p - lo) / (hi - lo)) * (w - pad.l - pad.r);
        const y = (q) => h - pad.b - (q / top) * (h - pad.t - pad.b);

        ctx.strokeStyle = COLORS.grid;
        ctx.beginPath();
        ctx.moveTo(pad.l, pad.t);
        ctx.lineTo(pad.l, h - pad.b);
        ctx.lineTo(w - pad.r, h - pad.b);
        ctx.stroke();

        // A step curve from the best price outwards: quantity jumps at each level's price.
        const side = (pts, edge, color) => {
            if (!pts.length) return;
            ctx.beginPath();
            ctx.moveTo(x(pts[0][0]), y(0));
            let prev = 0;
            for (const [p, q] of pts) {
                ctx.lineTo(x(p), y(prev));
                ctx.lineTo(x(p), y(q));
                prev = q;
            }
            ctx.lineTo(x(edge), y(prev));
            ctx.lineTo(x(edge), y(0));
            ctx.closePath();
            ctx.globalAlpha = 0.25;
            ctx.fillStyle = color;
            ctx.fill();
            ctx.globalAlpha = 1;
            ctx.strokeStyle = color;
            ctx.lineWidth = 1.5;
            ctx.stroke();
        };
        side(b, lo, COLORS.bid);
        side(a, hi, COLORS.ask);

        priceAxis(ctx, lo, hi, x, h - pad.b, pad.l, w - pad.r);
        label(ctx, amount(top / 1.1) + ' kWh', pad.l + 4, y(top / 1.1) - 3, 'left');
        // The last trade's price, where it falls on the axis: a dashed line and its value.
        const last = lastTradePrice();
        if (last !== null && last >= lo && last <= hi) {
            ctx.strokeStyle = COLORS.axis;
            ctx.setLineDash([3, 3]);
            ctx.beginPath();
            ctx.moveTo(x(last), pad.t);
            ctx.lineTo(x(last), h - pad.b);
            ctx.stroke();
            ctx.setLineDash([]);
            label(ctx, 'last ' + fixed(last), x(last) + 3, pad.t + 8, x(last) > w * 0.8 ? 'right' : 'left');
        }
        canvas.dataset.last = last === null ? '' : fixed(last);
    }

    // The selected market's tick as a number and its decimals ("0.01": 0.01, 2).
    function tickOf() {
        const m = S.config.markets.find((x) => x.id === S.market);
        const t = m ? String(m.tick) : '0.01';
        const frac = (t.split('.')[1] || '').replace(/0+$/, '');
        return { step: Number(t) || 0.01, places: frac.length };
    }
    const fixed = (p) => p.toFixed(tickOf().places);

    function lastTradePrice() {
        const p = (S.stats && S.stats.last_price) || (S.trades[0] && S.trades[0].price);
        return p ? Number(p) : null;
    }

    // Price labels along the bottom at whole multiples of the tick (a multiple of it chosen so
    // that four to seven fit), written with the tick's decimals: each names a price one can bid.
    function priceAxis(ctx, lo, hi, x, y, left, right) {
        const { step } = tickOf();
        let every = step;
        search: for (let mag = step; ; mag *= 10) { // 1, 2, 5, 10, 20, 50 ... ticks apart
            for (const k of [1, 2, 5]) {
                every = mag * k;
                if ((hi - lo) / every <= 6) break search;
            }
        }
        ctx.strokeStyle = COLORS.grid;
        for (let n = Math.ceil(lo / every); n * every <= hi; n++) {
            const p = n * every, px = x(p);
            if (px < left + 16 || px > right - 16) continue; // not over the edges' labels
            ctx.beginPath();
            ctx.moveTo(px, y);
            ctx.lineTo(px, y + 3);
            ctx.stroke();
            label(ctx, fixed(p), px, y + 14, 'center');
        }
    }

    function drawDepthFromBook(seq) {
        drawDepth(cumulative(sortedLevels(S.book.bids, true)),
            cumulative(sortedLevels(S.book.asks, false)), seq, 'ws');
    }

    // Volume bars and the clearing price line of recent epochs, oldest on the left. Reads
    // the same with none (one line in the middle), one (a bar of a sensible width, not the
    // whole chart) and a day of 96: bars never wider than 48 px, the delivery times under a
    // few of them, the volume scale on the left and the price scale on the right.
    function drawEpochs() {
        const canvas = $('epochs-chart');
        const { ctx, w, h } = canvasContext(canvas);
        // Future (pending) epochs have nothing to show yet.
        const eps = S.epochs.filter((e) => e.state !== 'pending').slice(0, EPOCHS_CHARTED).reverse();
        canvas.dataset.epochs = eps.length;
        if (!eps.length) {
            label(ctx, 'no epoch has closed yet', w / 2, h / 2, 'center');
            return;
        }
        const pad = { l: 60, r: 56, t: 12, b: 22 };
        const vols = eps.map((e) => Number(e.volume || 0));
        // the clearing price, or (continuous mode) the epoch's average price
        const priceOf = (e) => e.clearing_price ?? e.average_price ?? null;
        const prices = eps.map((e) => (priceOf(e) === null ? null : Number(priceOf(e))));
        const known = prices.filter((p) => p !== null);
        const vtop = Math.max(...vols), vmax = vtop || 1;
        const pmin = known.length ? Math.min(...known) : 0, pmax = known.length ? Math.max(...known) : 1;
        // 10 % of room above and below the prices; one price alone sits in the middle
        const pspan = pmax - pmin || Math.max(pmax * 0.1, 0.01);
        const plo = pmax > pmin ? pmin - pspan * 0.1 : pmin - pspan / 2;
        const phi = pmax > pmin ? pmax + pspan * 0.1 : pmax + pspan / 2;
        const plot = w - pad.l - pad.r;
        const slot = Math.min(plot / eps.length, 48);
        const x0 = pad.l + (plot - slot * eps.length) / 2; // few epochs: centred
        const yv = (v) => h - pad.b - (v / vmax) * (h - pad.t - pad.b);
        const yp = (p) => h - pad.b - ((p - plo) / (phi - plo)) * (h - pad.t - pad.b);

        ctx.strokeStyle = COLORS.grid;
        ctx.beginPath();
        ctx.moveTo(pad.l, h - pad.b);
        ctx.lineTo(w - pad.r, h - pad.b);
        ctx.stroke();
        ctx.fillStyle = COLORS.bar;
        eps.forEach((e, i) => {
            const v = vols[i];
            if (v > 0) ctx.fillRect(x0 + i * slot + slot * 0.15, yv(v), slot * 0.7, h - pad.b - yv(v));
        });
        ctx.strokeStyle = COLORS.line;
        ctx.fillStyle = COLORS.line;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        let pen = false;
        prices.forEach((p, i) => {
            if (p === null) { pen = false; return; }
            const px = x0 + (i + 0.5) * slot;
            if (pen) ctx.lineTo(px, yp(p)); else ctx.moveTo(px, yp(p));
            pen = true;
            ctx.fillRect(px - 2, yp(p) - 2, 4, 4);
        });
        ctx.stroke();

        // Delivery times under the bars, as many as fit without touching (about 70 px each).
        const every = Math.max(1, Math.ceil(70 / slot));
        for (let i = eps.length - 1; i >= 0; i -= every) // the newest always labelled
            label(ctx, period(eps[i]).split('\u2013')[0], x0 + (i + 0.5) * slot, h - 6, 'center');
        // The scales: volume on the left, price on the right, each at its top and bottom.
        if (vtop > 0) {
            label(ctx, amount(vtop) + ' kWh', pad.l - 4, yv(vmax) + 8, 'right');
            label(ctx, '0', pad.l - 4, h - pad.b, 'right');
        }
        if (known.length) {
            label(ctx, fixed(pmax), w - pad.r + 4, yp(pmax) + 4, 'left');
            if (pmin !== pmax) label(ctx, fixed(pmin), w - pad.r + 4, yp(pmin) + 4, 'left');
            label(ctx, currency() + '/kWh', w - pad.r + 4, pad.t - 2, 'left');
        }
    }

    // ------------------------------------------------------------------------------------
    // Reading over HTTP (while the WebSocket is not open, and at start)

    async function refreshMarket() {
        const market = S.market, epoch = S.epoch;
        const mq = marketQuery(false), eq = marketQuery(true);
        const results = await Promise.allSettled([
            api('GET', '/api/market/depth-chart' + eq),
            api('GET', '/api/market/depth' + eq),
            api('GET', '/api/market/trades' + mq + (mq ? '&' : '?') + 'limit=' + TRADES_KEPT),
            api('GET', '/api/market/epoch/status' + mq),
            api('GET', '/api/market/epochs' + mq + (mq ? '&' : '?') + 'limit=' + EPOCHS_CHARTED),
            api('GET', '/api/market/stats' + mq),
            // a closed epoch has none (404): not a failure of the refresh
            isAuction() ? api('GET', '/api/market/indicative' + eq).catch(() => null) : Promise.resolve(null),
        ]);
        // Too late: the selection moved, or live data took over while we waited.
        if (market !== S.market || epoch !== S.epoch || S.live) return null;
        const [chart, depth, trades, status, epochs, stats, indicative] = results.map((r) =>
            r.status === 'fulfilled' ? r.value : null);
        if (depth) { setBook(depth.bids, depth.asks); renderBook(); }
        if (chart) drawDepth(chart.bids, chart.asks, chart.seq, 'http');
        if (trades) { S.trades = trades.trades; renderTrades(); }
        if (status) { S.epochStatus = status; renderEpochStatus(); }
        if (epochs) { S.epochs = epochs.epochs; drawEpochs(); updateEpochOptions(); }
        if (stats) { S.stats = stats; renderStats(); }
        if (indicative) setIndicatives([indicative]);
        const failed = results.find((r) => r.status === 'rejected');
        return failed ? failed.reason : null;
    }

    async function refreshOrders() {
        const token = S.token;
        if (!token) return null;
        try {
            const list = await api('GET', '/api/trading/orders' + marketQuery(false) +
                (S.market ? '&' : '?') + 'limit=50', undefined, true);
            // Not when the orders channel has taken over, nor for someone who signed out.
            if (!ordersLive() && S.token === token) {
                S.orders = list.orders;
                renderOrders();
                noteFills(list.orders);
            }
            return null;
        } catch (e) {
            return e;
        }
    }

    async function refreshBalances() {
        const token = S.token;
        if (!token) return null;
        try {
            const r = await api('GET', '/api/account/balances', undefined, true);
            // Not when the account channel has taken over, nor for someone who signed out.
            if (!accountLive() && S.token === token) setBalances(r.balances, 'http');
            return null;
        } catch (e) {
            return e;
        }
    }

    function setBalances(balances, source) {
        S.balances = balances || null;
        S.balancesSource = source;
        renderBalances();
    }

    // Orders as they now are: a fill we had not seen made a trade, which the history will show.
    function noteFills(orders) {
        let grew = false;
        for (const o of orders) {
            const filled = units(o.filled_amount, KWH);
            if (filled > (S.filled.get(o.order_id) || 0n)) grew = true;
            S.filled.set(o.order_id, filled);
        }
        if (grew && S.token) followHistory();
    }

    // Deposits, withdrawals and trades may still change while one is not in a final state.
    // A trade the settler has not recorded yet (no status, from Postgres) will be.
    function historyOpen() {
        const h = S.history;
        return h.deposits.some((d) => !FINAL.deposit.includes(d.status)) ||
            h.withdrawals.some((w) => !FINAL.withdrawal.includes(w.status)) ||
            h.trades.some((t) => (t.settlement_status ? !FINAL.trade.includes(t.settlement_status)
                : h.source === 'postgres'));
    }

    // An action or a fill: what it brings shows in the history soon; look for it from now.
    function followHistory() {
        S.history.until = Date.now() + HISTORY_EXPECT_MS;
        S.history.delay = HISTORY_MIN_MS;
        refreshHistory();
    }

    // One read at a time; a call during a read asks for one more. Then the next read is set:
    // soon after a change, later and later while nothing changes, none once nothing can.
    async function refreshHistory() {
        const h = S.history;
        if (h.busy) {
            h.again = true;
            return;
        }
        h.busy = true;
        try {
            do {
                h.again = false;
                await readHistory();
            } while (h.again && S.token);
        } finally {
            h.busy = false;
        }
        clearTimeout(h.timer);
        h.timer = null;
        const failed = h.transfersError || h.tradesError;
        if (S.token && (historyOpen() || failed || Date.now() < h.until))
            h.timer = setTimeout(refreshHistory, h.delay);
        // When the next read is due, for tests and people: '' when none is.
        $('transfers-panel').dataset.followMs = h.timer ? h.delay : '';
    }

    async function readHistory() {
        const token = S.token;
        if (!token) return;
        const q = '?limit=' + HISTORY_KEPT;
        const [deposits, withdrawals, trades] = await Promise.allSettled([
            api('GET', '/api/account/deposits' + q, undefined, true),
            api('GET', '/api/account/withdrawals' + q, undefined, true),
            api('GET', '/api/market/trades/my-history' + q, undefined, true),
        ]);
        if (S.token !== token) return; // signed out meanwhile, or someone else signed in
        const h = S.history;
        if (deposits.status === 'fulfilled') h.deposits = deposits.value.deposits;
        if (withdrawals.status === 'fulfilled') h.withdrawals = withdrawals.value.withdrawals;
        if (trades.status === 'fulfilled') {
            h.trades = trades.value.trades;
            h.source = trades.value.source;
        }
        h.transfersError = [deposits, withdrawals].map((r) => r.reason).find((e) => e) || null;
        h.tradesError = trades.reason || null;
        renderTransfers();
        renderMyTrades();
        const shown = JSON.stringify([h.deposits, h.withdrawals, h.trades]);
        if (shown !== h.shown) {
            h.shown = shown;
            h.delay = HISTORY_MIN_MS;
            h.until = 0; // what was expected came (or something else did: it is read on)
        }
        else h.delay = Math.min(h.delay * 2, HISTORY_MAX_MS);
    }

    // Signed out: nothing of the user's stays.
    function clearAccount() {
        const h = S.history;
        clearTimeout(h.timer);
        Object.assign(h, {
            deposits: [], withdrawals: [], trades: [], source: '', transfersError: null,
            tradesError: null, shown: '', timer: null, delay: HISTORY_MIN_MS, until: 0,
        });
        $('transfers-panel').dataset.followMs = '';
        S.filled.clear();
        setBalances(null, '');
        renderTransfers();
        renderMyTrades();
        for (const id of ['order-note', 'deposit-note', 'withdraw-note']) $(id).hidden = true;
    }

    // One round of reads; a failure shows once on the status line, and its end is said too.
    async function refreshAll() {
        const errors = await Promise.all([refreshMarket(), refreshOrders(), refreshBalances()]);
        const err = errors.find((e) => e);
        if (err) {
            const text = errorText(err);
            if (text !== S.pollError) say('error', text);
            S.pollError = text;
        }
        else if (S.pollError) {
            if ($('status').textContent === S.pollError) say('ok', 'the gateway answers again');
            S.pollError = '';
        }
    }

    // One round at a time; a call during a round asks for one more (an action's result must
    // not wait for the next tick because a round that began before it was under way).
    async function poll() {
        if (S.live) return;
        if (S.polling) {
            S.pollAgain = true;
            return;
        }
        S.polling = true;
        try {
            do {
                S.pollAgain = false;
                await refreshAll();
            } while (S.pollAgain && !S.live);
        } finally {
            S.polling = false;
        }
    }

    // After an action: read at once what live data will not bring.
    function afterAction() {
        if (!S.live) poll();
        else {
            if (!ordersLive()) refreshOrders();
            if (!accountLive()) refreshBalances();
        }
    }

    // ------------------------------------------------------------------------------------
    // Live data: the broadcaster's WebSocket (broadcaster/PROTOCOL.md)
    //
    // Each subscription holds the seq of the last snapshot or update it applied. An update
    // whose `prev` is greater than that means one went missing: we subscribe again, and the
    // snapshot that answers replaces what we hold. An update at or below the seq we hold is
    // already in what we hold (a snapshot taken while it waited to be sent): it is skipped.
    // Updates carry only what changed, in the snapshot's shape.

    function setConn() {
        const el = $('conn');
        const state = S.live ? 'live' : 'polling';
        el.textContent = state;
        el.className = 'conn ' + state;
        el.dataset.state = state;
        // What became of the connections tried, for tests and people: data-ws-attempts,
        // data-ws-opens, data-ws-failures (attempts that ended without opening).
        el.dataset.wsAttempts = S.wsCount.attempts;
        el.dataset.wsOpens = S.wsCount.opens;
        el.dataset.wsFailures = S.wsCount.failures;
    }

    // Subscriptions and the messages they receive go by channel and key: the user for the
    // private channels, the market for the others.
    const isPrivate = (channel) => PRIVATE.includes(channel);
    const subKey = (channel, who) => channel + '|' + who;
    const msgKey = (msg) => subKey(msg.channel, isPrivate(msg.channel) ? msg.user : msg.market);

    function wsSend(msg) {
        if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(msg));
    }

    // What names a subscription on the wire: a depth book by the epoch we hold once we know it
    // (the "current" book is some epoch's book; asking again must not move to another one).
    function wireSel(sub) {
        return sub.sel.channel === 'depth' && sub.epoch !== null
            ? Object.assign({}, sub.sel, { epoch: sub.epoch }) : sub.sel;
    }

    // sel: {channel, market[, epoch]} or {channel: 'orders' or 'account', token}.
    function subscribe(sel) {
        const who = isPrivate(sel.channel) ? S.user : sel.market;
        const sub = { sel, seq: null, epoch: sel.epoch === undefined ? null : sel.epoch };
        S.subs.set(subKey(sel.channel, who), sub);
        wsSend(Object.assign({ op: 'subscribe' }, sel));
        return sub;
    }

    // Asks again: until the snapshot comes, updates are not applied.
    function resubscribe(sub) {
        sub.seq = null;
        wsSend(Object.assign({ op: 'subscribe' }, wireSel(sub)));
    }

    function unsubscribe(key) {
        const sub = S.subs.get(key);
        if (!sub) return;
        S.subs.delete(key);
        wsSend(Object.assign({ op: 'unsubscribe' }, wireSel(sub)));
    }

    function marketSubscriptions() {
        const depth = { channel: 'depth', market: S.market };
        if (S.epoch) depth.epoch = Number(S.epoch);
        const channels = ['trades', 'ticker', 'epochs'].concat(isAuction() ? ['indicative'] : []);
        return [depth].concat(channels.map((c) => ({ channel: c, market: S.market })));
    }

    function subscribePrivate(token) {
        for (const channel of PRIVATE) subscribe({ channel, token });
    }

    function subscribeAll() {
        marketSubscriptions().forEach(subscribe);
        if (S.token) subscribePrivate(S.token);
    }

    // The market or epoch changed: drop the old subscriptions, take the new ones.
    function resubscribeMarket() {
        for (const [key, sub] of [...S.subs])
            if (!isPrivate(sub.sel.channel)) unsubscribe(key);
        marketSubscriptions().forEach(subscribe);
    }

    // A private channel is signed in with a token: the subscription answered with a snapshot.
    // Until then (or if the broadcaster refused the token) its data is read over HTTP.
    function privateLive(channel) {
        const sub = S.live && S.token ? S.subs.get(subKey(channel, S.user)) : null;
        return !!(sub && sub.seq !== null);
    }
    const ordersLive = () => privateLive('orders');
    const accountLive = () => privateLive('account');

    // Signed out (or another user signed in): the private channels go, by unsubscribing with
    // the token they were taken with. An expired token would be refused for that too: then,
    // and if the broadcaster refuses it anyway, a fresh connection drops them.
    function leavePrivate(token, user) {
        for (const channel of PRIVATE) S.subs.delete(subKey(channel, user));
        const claims = claimsOf(token);
        if (claims && claims.exp && claims.exp * 1000 <= Date.now() + 5000) {
            reconnectWs();
            return;
        }
        S.privateLeaving = PRIVATE.length;
        for (const channel of PRIVATE) wsSend({ op: 'unsubscribe', channel, token });
    }

    function connectWs() {
        clearTimeout(S.wsTimer);
        const url = S.config.broadcaster_url;
        if (!url || !window.WebSocket) return;
        let ws, opened = false;
        S.wsCount.attempts++;
        try {
            ws = new WebSocket(url); // no subprotocol: the broadcaster negotiates none
        } catch (e) {
            S.wsCount.failures++;
            setConn();
            scheduleWs();
            return;
        }
        S.ws = ws;
        setConn();
        ws.onopen = () => {
            if (S.ws !== ws) return;
            opened = true;
            S.wsCount.opens++;
            S.live = true;
            S.wsRetry = WS_RETRY_MIN_MS;
            S.subs.clear();
            S.privateLeaving = 0;
            setConn();
            subscribeAll();
        };
        ws.onmessage = (ev) => {
            if (S.ws !== ws) return;
            let msg;
            try { msg = JSON.parse(ev.data); } catch (e) { return; }
            if (msg && typeof msg === 'object') onWsMessage(msg);
        };
        ws.onclose = () => {
            if (S.ws !== ws) return;
            S.ws = null;
            S.live = false;
            S.subs.clear();
            S.privateLeaving = 0;
            if (!opened) S.wsCount.failures++;
            setConn();
            scheduleWs();
            poll(); // at once, not at the next tick
        };
        ws.onerror = () => {}; // onclose follows, and handles it
    }

    function scheduleWs() {
        clearTimeout(S.wsTimer);
        S.wsTimer = setTimeout(connectWs, S.wsRetry);
        S.wsRetry = Math.min(S.wsRetry * 2, WS_RETRY_MAX_MS);
    }

    // Drops the connection and makes a new one.
    function reconnectWs() {
        const ws = S.ws;
        S.ws = null;
        S.live = false;
        S.subs.clear();
        S.privateLeaving = 0;
        setConn();
        if (ws) ws.close();
        S.wsRetry = WS_RETRY_MIN_MS;
        connectWs();
    }

    function onWsMessage(msg) {
        switch (msg.type) {
            case 'error':
                say('error', 'broadcaster: ' + msg.code + ': ' + msg.message);
                // A private channel could not be left with its token: leave the connection.
                if (msg.code === 'bad_token' && S.privateLeaving > 0) reconnectWs();
                return;
            case 'unsubscribed':
                if (isPrivate(msg.channel) && S.privateLeaving > 0) S.privateLeaving--;
                return;
            case 'snapshot':
            case 'update':
                break;
            default:
                return; // 'subscribed', and whatever a later version adds
        }
        const sub = S.subs.get(msgKey(msg));
        if (!sub) return; // not ours, or not any more
        // Another epoch's book (one we left, or not the one we asked for) is not ours.
        if (msg.channel === 'depth' && sub.epoch !== null && msg.epoch !== sub.epoch) return;
        if (msg.type === 'snapshot') {
            sub.seq = msg.seq;
            if (msg.channel === 'depth') sub.epoch = msg.epoch;
            applySnapshot(msg);
            return;
        }
        if (sub.seq === null) return; // an update before its snapshot: wait for the snapshot
        if (msg.prev > sub.seq) {
            // A gap: what we hold is no longer right. Ask again; the snapshot replaces it.
            resubscribe(sub);
            return;
        }
        if (msg.seq <= sub.seq) return; // already in the snapshot we hold
        sub.seq = msg.seq;
        applyUpdate(msg);
    }

    function applySnapshot(msg) {
        const d = msg.data || {};
        switch (msg.channel) {
            case 'depth':
                setBook(d.bids || [], d.asks || []);
                renderBook();
                drawDepthFromBook(msg.seq);
                break;
            case 'trades':
                S.trades = (d.trades || []).slice(0, TRADES_KEPT);
                renderTrades();
                break;
            case 'ticker':
                S.stats = d;
                renderStats();
                break;
            case 'indicative':
                S.indicative = new Map();
                setIndicatives(d.indicatives || []);
                break;
            case 'epochs':
                if (d.current) { S.epochStatus = d.current; renderEpochStatus(); }
                S.epochs = d.recent || [];
                drawEpochs();
                updateEpochOptions();
                break;
            case 'orders':
                S.orders = d.orders || [];
                renderOrders();
                noteFills(S.orders);
                break;
            case 'account':
                setBalances(d.balances, 'ws');
                break;
        }
    }

    // An update's data: the snapshot's shape, with only what changed.
    function applyUpdate(msg) {
        const d = msg.data || {};
        switch (msg.channel) {
            case 'depth': {
                // The levels that changed, as they now are; "0" kWh: the level is gone.
                for (const [name, side] of [['bids', S.book.bids], ['asks', S.book.asks]])
                    for (const l of d[name] || []) {
                        if (units(l.energy_amount, KWH) === 0n) side.delete(priceKey(l.price));
                        else side.set(priceKey(l.price), { price: l.price, energy_amount: l.energy_amount, orders: l.orders });
                    }
                renderBook();
                drawDepthFromBook(msg.seq);
                break;
            }
            case 'trades': {
                // The new trades, newest first (one the snapshot already had is not listed twice).
                const known = new Set(S.trades.map((t) => t.trade_id));
                const fresh = (d.trades || []).filter((t) => !known.has(t.trade_id));
                if (fresh.length) {
                    S.trades = fresh.concat(S.trades).slice(0, TRADES_KEPT);
                    renderTrades();
                }
                break;
            }
            case 'ticker': // the whole object
                S.stats = d;
                renderStats();
                break;
            case 'epochs':
                applyEpochRows(d.epochs || []);
                break;
            case 'indicative':
                setIndicatives(d.indicatives || []);
                break;
            case 'orders': {
                // The orders that changed, as they now are; new ones are the newest.
                const fresh = [];
                for (const o of d.orders || []) {
                    const i = S.orders.findIndex((x) => x.order_id === o.order_id);
                    if (i >= 0) S.orders[i] = o;
                    else fresh.unshift(o);
                }
                S.orders = fresh.concat(S.orders);
                renderOrders();
                noteFills(d.orders || []);
                break;
            }
            case 'account': // the balances, whole
                setBalances(d.balances, 'ws');
                break;
        }
    }

    // Epochs that changed phase: [{epoch, state, start, end, clearing_price, volume, trades}].
    function applyEpochRows(rows) {
        const st = S.epochStatus ? Object.assign({}, S.epochStatus) : null;
        for (const e of rows) {
            const i = S.epochs.findIndex((x) => x.epoch === e.epoch);
            if (i >= 0) S.epochs[i] = e;
            else S.epochs.push(e);
            if (st && e.state === 'active' && e.epoch > st.epoch) {
                Object.assign(st, {
                    epoch: e.epoch, state: e.state, start: e.start, end: e.end,
                    delivery_start: e.delivery_start, delivery_end: e.delivery_end,
                });
                if (!S.epoch) currentEpochMoved(e.epoch);
            }
            else if (st && e.epoch === st.epoch) st.state = e.state;
            if (st && (e.state === 'cleared' || e.state === 'settled') &&
                (st.last_cleared_epoch === null || e.epoch >= st.last_cleared_epoch)) {
                Object.assign(st, {
                    last_cleared_epoch: e.epoch, last_clearing_price: e.clearing_price,
                    last_average_price: e.average_price ?? null, last_volume: e.volume,
                });
            }
        }
        S.epochs.sort((a, b) => b.epoch - a.epoch);
        if (st) { S.epochStatus = st; renderEpochStatus(); }
        drawEpochs();
        updateEpochOptions();
    }

    // A new current epoch: the "current" depth book is another book now. The old one is left,
    // the new one taken by its number.
    function currentEpochMoved(epoch) {
        const sub = S.subs.get(subKey('depth', S.market));
        if (!sub || sub.epoch === epoch) return;
        if (sub.epoch !== null) wsSend(Object.assign({ op: 'unsubscribe' }, wireSel(sub)));
        sub.epoch = epoch;
        resubscribe(sub);
    }

    // ------------------------------------------------------------------------------------
    // Signing in

    function claimsOf(token) {
        try {
            const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
            return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
        } catch (e) {
            return null;
        }
    }

    // Keeps token (null: signs out) in sessionStorage, and shows what its role may do.
    function setToken(token) {
        const claims = token ? claimsOf(token) : null;
        const valid = claims && (!claims.exp || claims.exp * 1000 > Date.now());
        const had = S.token, hadUser = S.user;
        S.token = valid ? token : null;
        S.user = valid ? claims.sub : '';
        S.role = valid ? claims.role : '';
        if (S.token) sessionStorage.setItem(TOKEN_KEY, S.token);
        else sessionStorage.removeItem(TOKEN_KEY);
        clearTimeout(S.expiryTimer);
        if (S.token && claims.exp) {
            const left = claims.exp * 1000 - Date.now();
            if (left < 2147483647) // setTimeout's limit
                S.expiryTimer = setTimeout(() => {
                    setToken(null);
                    say('error', 'your session expired: sign in again');
                }, left);
        }
        if (S.token !== had) {
            S.orders = [];
            renderOrders();
            clearAccount();
        }
        const signedIn = !!S.token;
        // Signed in: the name once, in the bar, with the way out; the forms make room for
        // the order form.
        $('account').hidden = signedIn;
        $('logout').hidden = !signedIn;
        for (const id of ['order-panel', 'orders-panel', 'balances-panel', 'transfers-panel', 'my-trades-panel'])
            $(id).hidden = !signedIn;
        $('admin-panel').hidden = S.role !== 'admin';
        $('whoami').textContent = signedIn ? S.user + (S.role === 'admin' ? ' (admin)' : '') : 'not signed in';
        if (S.role === 'admin' && !had) refreshAdmin();
        // The private channels follow the token: the old one's go, the new one's come.
        if (S.live && had && had !== S.token) leavePrivate(had, hadUser);
        if (S.live && S.token && S.token !== had) subscribePrivate(S.token);
    }

    // ------------------------------------------------------------------------------------
    // Wallets: sign-up proves the wallet with its signature of the gateway's challenge

    const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

    function base58(bytes) {
        let n = 0n, text = '';
        for (const b of bytes) n = n * 256n + BigInt(b);
        for (; n > 0n; n /= 58n) text = B58[Number(n % 58n)] + text;
        for (const b of bytes) { if (b !== 0) break; text = '1' + text; }
        return text;
    }

    // The injected Solana wallet (Phantom, Solflare and others expose this interface), or null.
    function browserWallet() {
        const w = (window.phantom && window.phantom.solana) || window.solana;
        return w && typeof w.connect === 'function' && typeof w.signMessage === 'function' ? w : null;
    }

    // Connects the browser wallet: its public key in base58.
    async function connectWallet(w) {
        const r = await w.connect();
        const key = (r && r.publicKey) || w.publicKey;
        if (!key) throw new Error('the browser wallet did not say its public key');
        return typeof key.toBase58 === 'function' ? key.toBase58() : String(key);
    }

    // The browser wallet's signature of message, in base58.
    async function walletSign(w, message) {
        const r = await w.signMessage(new TextEncoder().encode(message), 'utf8');
        const sig = r && r.signature ? r.signature : r;
        if (!sig || sig.length !== 64) throw new Error('the browser wallet did not sign the message');
        return base58(Uint8Array.from(sig));
    }

    // Registers with a signed challenge: with the browser wallet when there is one (it fills
    // an empty wallet field); otherwise the first press shows the challenge to sign elsewhere
    // and the second sends the signature pasted. The answer once registered, else null.
    async function register(f) {
        const username = f.get('username').trim(), password = f.get('password');
        let wallet = f.get('wallet').trim();
        const w = browserWallet();
        if (w) {
            const connected = await connectWallet(w);
            if (wallet && wallet !== connected)
                throw new ApiError(0, 'wallet_mismatch', 'the browser wallet is ' + connected +
                    ', not the wallet typed: clear the field to use it', 'wallet');
            wallet = connected;
            $('register-wallet').value = wallet;
            const c = await api('POST', '/api/auth/challenge', { wallet, username });
            say('ok', 'sign the message in your wallet');
            const signature = await walletSign(w, c.message);
            return api('POST', '/api/auth/register', { username, password, wallet, signature, nonce: c.nonce });
        }
        const pasted = (f.get('signature') || '').trim();
        const c = S.challenge;
        if (pasted && c && c.wallet === wallet && c.username === username)
            return api('POST', '/api/auth/register', { username, password, wallet, signature: pasted, nonce: c.nonce });
        const answer = await api('POST', '/api/auth/challenge', { wallet, username });
        S.challenge = { wallet, username, nonce: answer.nonce };
        $('register-message').value = answer.message;
        $('register-signature').value = '';
        $('register-sign').hidden = false;
        say('ok', 'sign the message shown with your wallet, paste the signature, then press Register again');
        return null;
    }

    async function signIn(username, password) {
        const r = await api('POST', '/api/auth/login', { username, password });
        setToken(r.token);
        followHistory();
        await Promise.all([refreshOrders(), refreshBalances()]);
        return r;
    }

    // ------------------------------------------------------------------------------------
    // Forms and buttons

    // Runs action for a form's submit: no navigation, the button disabled meanwhile, errors
    // shown with the blamed field marked.
    function onSubmit(form, action) {
        form.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            form.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
            const button = form.querySelector('button[type=submit]');
            button.disabled = true;
            try {
                await action(new FormData(form));
            } catch (e) {
                fail(e, form);
            } finally {
                button.disabled = false;
            }
        });
    }

    function wire() {
        onSubmit($('login-form'), async (f) => {
            const r = await signIn(f.get('username').trim(), f.get('password'));
            $('login-password').value = '';
            say('ok', 'signed in as ' + r.username + ' (' + r.role + ')');
        });
        onSubmit($('register-form'), async (f) => {
            const username = f.get('username').trim(), password = f.get('password');
            const r = await register(f);
            if (!r) return;
            $('register-form').reset();
            $('register-sign').hidden = true;
            S.challenge = null;
            await signIn(username, password);
            say('ok', 'registered and signed in as ' + username + ' with wallet ' + r.wallet);
        });
        $('register-copy').addEventListener('click', async () => {
            const text = $('register-message').value;
            try {
                await navigator.clipboard.writeText(text);
                say('ok', 'message copied');
            } catch (e) {
                $('register-message').select(); // no clipboard here: select it for Ctrl-C
                say('ok', 'message selected: copy it with Ctrl-C');
            }
        });
        $('logout').addEventListener('click', () => {
            setToken(null);
            say('ok', 'signed out');
        });
        // Amend: the new remaining quantity, the new price, or both; what is unchanged is
        // not sent (a lower quantity alone keeps the order's place).
        onSubmit($('amend-form'), async (f) => {
            const o = S.amending;
            const body = {};
            const qty = f.get('energy_amount').trim(), price = f.get('price').trim();
            if (qty && qty !== o.remaining_amount) body.energy_amount = qty;
            if (price && o.price !== null && priceKey(price) !== priceKey(o.price)) body.price = price;
            if (!Object.keys(body).length) {
                say('error', 'order ' + o.order_id + ': change the quantity or the price first');
                return;
            }
            const r = await api('PATCH', '/api/trading/orders/' + encodeURIComponent(o.order_id), body, true);
            say('ok', 'order ' + r.order_id + ' amended: ' + r.status + ', ' + r.remaining_amount +
                ' kWh left' + (r.price ? ' at ' + r.price : ''));
            $('amend-form').hidden = true;
            afterAction();
        });
        $('amend-close').addEventListener('click', () => { $('amend-form').hidden = true; });
        onSubmit($('order-form'), async (f) => {
            const body = {
                market: S.market,
                side: f.get('side'),
                order_type: f.get('order_type'),
                energy_amount: f.get('energy_amount').trim(),
                time_in_force: f.get('time_in_force'),
            };
            if (body.order_type === 'Limit') body.price = f.get('price').trim();
            if (S.epoch) body.epoch = Number(S.epoch);
            $('order-note').hidden = true;
            let r;
            try {
                r = await api('POST', '/api/trading/orders', body, true);
            } catch (e) {
                if (e instanceof ApiError && e.code === 'insufficient_balance') explainShortfall(body);
                throw e;
            }
            say('ok', 'order ' + r.order_id + ' ' + r.status + ': ' + r.filled_amount + ' kWh filled, ' +
                r.remaining_amount + ' kWh open (delivery ' + period(r) + ', epoch ' + r.epoch + ')');
            afterAction();
            if (units(r.filled_amount, KWH) > 0n) followHistory();
        });
        $('order-deposit').addEventListener('click', () => {
            const b = $('order-deposit');
            $('deposit-asset').value = b.dataset.asset;
            $('deposit-amount').value = b.dataset.amount || '';
            $('deposit-form').scrollIntoView({ block: 'center' });
            $('deposit-amount').focus();
        });
        onSubmit($('deposit-form'), async (f) => {
            const body = { asset: f.get('asset'), amount: f.get('amount').trim() };
            note('deposit-note', '', '');
            let r;
            try {
                r = await api('POST', '/api/account/deposits', body, true);
            } catch (e) {
                note('deposit-note', 'error', errorText(e));
                throw e;
            }
            const text = 'deposit ' + r.deposit_id + ' recorded: ' + body.amount + ' ' + UNIT[body.asset] +
                ' on the way to the vault, credited once the chain confirms it (see its status below)';
            note('deposit-note', 'ok', text);
            say('ok', text);
            $('deposit-amount').value = '';
            followHistory();
        });
        onSubmit($('withdraw-form'), async (f) => {
            const body = { asset: f.get('asset'), amount: f.get('amount').trim() };
            note('withdraw-note', '', '');
            let r;
            try {
                r = await api('POST', '/api/account/withdrawals', body, true);
            } catch (e) {
                note('withdraw-note', 'error', errorText(e) + withdrawHint(e, body.asset));
                throw e;
            }
            const text = 'withdrawal ' + r.withdrawal_id + ' ' + r.status + ': ' + body.amount + ' ' +
                UNIT[body.asset] + ' debited, to be paid to your wallet (see its status below)';
            note('withdraw-note', 'ok', text);
            say('ok', text);
            $('withdraw-amount').value = '';
            afterAction();
            followHistory();
        });
        $('order-type').addEventListener('change', () => {
            $('order-price').disabled = $('order-type').value === 'Market';
        });
        $('my-orders').addEventListener('click', async (ev) => {
            const b = ev.target.closest('button[data-order-id]');
            if (!b) return;
            if (b.dataset.amend) {
                openAmend(S.orders.find((o) => String(o.order_id) === b.dataset.orderId));
                return;
            }
            b.disabled = true;
            try {
                const r = await api('DELETE', '/api/trading/orders/' + encodeURIComponent(b.dataset.orderId), undefined, true);
                say('ok', 'order ' + r.order_id + ' ' + r.status);
                afterAction();
            } catch (e) {
                fail(e);
                b.disabled = false;
            }
        });
        $('admin-panel').addEventListener('click', async (ev) => {
            const retry = ev.target.closest('button[data-settlement-id]');
            if (retry) {
                retrySettlement(retry);
                return;
            }
            const b = ev.target.closest('button[data-action]');
            if (!b) return;
            // A control acts on a live market for everyone: say what, and ask first.
            if (!window.confirm(CONTROLS[b.dataset.action] + ' in ' + S.market + '?')) return;
            b.disabled = true;
            try {
                const r = await api('POST', '/api/admin/market/control', { market: S.market, action: b.dataset.action }, true);
                say('ok', b.dataset.action + ' on ' + S.market + ': ' + r.status + ' (seq ' + r.seq + ')');
                afterAction();
            } catch (e) {
                fail(e);
            } finally {
                b.disabled = false;
            }
        });
        $('market').addEventListener('change', () => selectionChanged($('market').value, ''));
        $('epoch').addEventListener('change', () => selectionChanged(S.market, $('epoch').value));
        window.addEventListener('resize', () => {
            drawEpochs();
            drawDepth(S.chart.bids, S.chart.asks, S.chart.seq, S.chart.source);
        });
    }

    function openAmend(o) {
        if (!o) return;
        S.amending = o;
        $('amend-id').textContent = o.order_id + ' (' + o.side + ')';
        $('amend-amount').value = o.remaining_amount;
        $('amend-price').value = o.price === null ? '' : priceKey(o.price);
        $('amend-price').disabled = o.price === null;
        $('amend-form').hidden = false;
        $('amend-amount').focus();
    }

    // ------------------------------------------------------------------------------------
    // The operator's view (admins): health, failed settlements with their retry, controls

    const CONTROLS = {
        pause_trading: 'Pause trading (new orders are refused until resumed)',
        resume_trading: 'Resume trading',
        trigger_matching: 'Run matching now',
        clear_epoch: 'Clear the current epoch now (its auction runs; no more orders for it)',
        snapshot: 'Take a matcher snapshot',
    };

    function healthRow(tbody, part, up, detail) {
        const tr = document.createElement('tr');
        tr.dataset.testid = 'health-row';
        tr.dataset.part = part;
        tr.dataset.state = up === null ? 'off' : up ? 'up' : 'down';
        cell(tr, part);
        cell(tr, tr.dataset.state, up === null ? 'state' : up ? 'state good' : 'state bad');
        cell(tr, detail);
        tbody.appendChild(tr);
    }

    // What the gateway can tell of every part: itself, the matcher (its heartbeat on the
    // bus), the bus, Postgres and Redis (/api/health); the settler (it answers the list of
    // failed settlements, or not); the broadcaster (this page's own connection to it).
    async function refreshAdmin() {
        if (S.role !== 'admin' || !S.token) return;
        const [health, failed, recon] = await Promise.allSettled([
            api('GET', '/api/health'),
            api('GET', '/api/admin/settlements?state=failed&limit=50', undefined, true),
            api('GET', '/api/admin/reconciliation', undefined, true),
        ]);
        renderReconciliation(recon.status === 'fulfilled' ? recon.value : null,
            recon.status === 'rejected' ? recon.reason : null);
        const tbody = $('admin-health');
        tbody.replaceChildren();
        const h = health.status === 'fulfilled' ? health.value : null;
        healthRow(tbody, 'gateway', !!h, h ? 'version ' + h.version + ', up ' + duration(h.uptime_s) : errorText(health.reason));
        if (h) {
            healthRow(tbody, 'matcher', h.matcher.up, h.matcher.up ? h.matcher.in_flight + ' commands in flight, ' +
                h.matcher.timeouts + ' timed out' : 'no heartbeat on the bus');
            healthRow(tbody, 'bus', h.bus.seq >= h.bus.head, 'read ' + h.bus.seq + ' of ' + h.bus.head);
            healthRow(tbody, 'postgres', h.postgres.up, h.postgres.up ? 'answers' : 'does not answer');
            healthRow(tbody, 'redis', h.redis.configured ? h.redis.up : null,
                h.redis.configured ? (h.redis.up ? 'answers' : 'does not answer') : 'not configured');
        }
        const list = failed.status === 'fulfilled' ? failed.value.settlements : null;
        healthRow(tbody, 'settler', list !== null && list.length === 0,
            list === null ? errorText(failed.reason) : list.length ? list.length + ' failed settlement' +
                (list.length === 1 ? '' : 's') + ' (below)' : 'answers; no failed settlements');
        healthRow(tbody, 'broadcaster', S.live, S.live ? 'this page is live on it'
            : 'this page cannot reach it (' + (S.config.broadcaster_url || 'no address') + ')');
        const rows = $('admin-settlements');
        rows.replaceChildren();
        for (const st of list || []) {
            const tr = document.createElement('tr');
            tr.dataset.testid = 'failed-settlement';
            tr.dataset.settlementId = st.settlement_id;
            cell(tr, st.trade_id);
            cell(tr, st.market);
            cell(tr, st.energy_amount);
            cell(tr, st.value);
            cell(tr, st.attempts);
            cell(tr, st.error || '-', 'reason').title = st.error || '';
            const b = document.createElement('button');
            b.type = 'button';
            b.textContent = 'Retry';
            b.dataset.testid = 'retry-settlement';
            b.dataset.settlementId = st.settlement_id;
            cell(tr, '').replaceChildren(b);
            rows.appendChild(tr);
        }
        if (list && !list.length) emptyRow(rows, 7, 'none');
        if (!list) emptyRow(rows, 7, 'the settler did not answer');
    }

    // Each vault on chain (as the settler last read it) against what the tables owe from it.
    function renderReconciliation(r, err) {
        const tbody = $('admin-reconciliation');
        tbody.replaceChildren();
        const noteEl = $('admin-reconciliation-note');
        if (!r) {
            noteEl.textContent = 'not known: ' + errorText(err);
            noteEl.dataset.state = 'unknown';
            return;
        }
        noteEl.dataset.state = r.balanced === null ? 'unknown' : r.balanced ? 'balanced' : 'different';
        noteEl.textContent = (r.balanced === null ? 'the settler has not read the vaults yet'
            : r.balanced ? 'every vault holds exactly what is owed from it'
                : 'a vault differs from what is owed (by what is in flight, or by an error)') +
            (r.vaults_read_at ? '; vaults read at ' + clockTime(r.vaults_read_at) : '');
        for (const a of r.assets) {
            const tr = document.createElement('tr');
            tr.dataset.testid = 'reconciliation-row';
            tr.dataset.asset = a.asset;
            tr.dataset.difference = a.difference === null ? '' : a.difference;
            const unit = a.asset === 'energy' ? ' kWh' : ' ' + currency();
            cell(tr, a.asset);
            cell(tr, a.vault === null ? '-' : a.vault + unit);
            cell(tr, a.owed + unit).title = 'balances ' + a.balances + ', trades ' + a.trades +
                ', withdrawals ' + a.withdrawals + ', deposits ' + a.deposits;
            cell(tr, a.difference === null ? '-' : a.difference,
                a.difference === null ? 'state' : Number(a.difference) === 0 ? 'state good' : 'state bad');
            cell(tr, a.in_flight);
            tbody.appendChild(tr);
        }
    }

    async function retrySettlement(b) {
        if (!window.confirm('Send settlement ' + b.dataset.settlementId + ' to the chain again?')) return;
        b.disabled = true;
        try {
            const r = await api('POST', '/api/admin/settlements/' + b.dataset.settlementId + '/retry', {}, true);
            note('admin-settlements-note', 'ok', 'settlement ' + r.settlement_id + ': ' + r.state);
        } catch (e) {
            note('admin-settlements-note', 'error', errorText(e));
            b.disabled = false;
        }
        refreshAdmin();
    }

    // A withdrawal the balance does not cover: what there is, and why the rest cannot go.
    function withdrawHint(err, asset) {
        const b = S.balances && S.balances[asset];
        if (!(err instanceof ApiError) || err.code !== 'insufficient_balance' || !b) return '';
        return ' (you have ' + b.available + ' ' + UNIT[asset] + ' available; the ' + b.reserved +
            ' your open orders hold cannot be withdrawn)';
    }

    // What a limit buy of qty Wh at price micro-units per kWh holds, as the matcher reckons it
    // (matcher/accounts.h): qty x price rounded up, and in a market whose lot x tick is not a
    // whole micro-unit, one more per lot, for the rounding of its fills.
    function buyHold(qty, price, market) {
        const hold = (qty * price + 999n) / 1000n;
        const lot = market ? units(market.lot, KWH) : 0n, tick = market ? units(market.tick, PRICE) : 0n;
        if (lot <= 0n || (lot * tick) % 1000n === 0n) return hold;
        return hold + (qty + lot - 1n) / lot;
    }

    // An order refused for insufficient_balance: the order form says what it needed, what is
    // available, and offers the deposit form with the asset and the shortfall filled in.
    function explainShortfall(order) {
        const buy = order.side === 'Buy';
        const asset = buy ? 'payment' : 'energy';
        const scale = SCALE[asset];
        const b = S.balances && S.balances[asset];
        const qty = units(order.energy_amount, KWH);
        const market = S.config.markets.find((m) => m.id === order.market);
        // A sell holds its energy, a limit buy its value at its price; a market buy holds at the
        // market's highest allowed price, which the page does not know.
        const need = !buy ? qty : order.order_type === 'Limit'
            ? buyHold(qty, units(order.price, PRICE), market) : null;
        const available = b ? units(b.available, scale) : null;
        let text = 'Not enough ' + asset + ' available for this ' + (buy ? 'buy' : 'sell');
        if (need !== null) text += ': it needs ' + decimal(need, scale) + ' ' + UNIT[asset];
        if (available !== null) text += (need !== null ? ', you have ' : ': you have ') +
            decimal(available, scale) + ' available (your open orders hold ' + b.reserved + ')';
        text += '.';
        if (buy && need === null)
            text += ' A market buy holds payment at the market\'s highest allowed price: send a ' +
                'limit order at your own maximum to need less.';
        text += ' Deposit ' + asset + ' first, or make the order smaller.';
        const short = need !== null && available !== null && need > available ? need - available : null;
        $('order-note-text').textContent = text;
        const button = $('order-deposit');
        button.textContent = 'Deposit ' + asset;
        button.dataset.asset = asset;
        button.dataset.amount = short !== null ? decimal(short, scale) : '';
        $('order-note').hidden = false;
    }

    function selectionChanged(market, epoch) {
        const marketChanged = market !== S.market;
        S.market = market;
        S.epoch = epoch;
        if (marketChanged) {
            S.epochStatus = null;
            S.epochs = [];
            S.indicative = new Map();
            $('epoch').dataset.signature = '';
            updateEpochOptions();
        }
        setBook([], []);
        renderBook();
        drawDepth([], []);
        renderOrders();
        if (S.live) resubscribeMarket();
        else poll();
    }

    async function boot() {
        wire();
        setConn();
        setToken(sessionStorage.getItem(TOKEN_KEY));
        try {
            S.config = await api('GET', '/api/dashboard/config');
        } catch (e) {
            fail(e);
        }
        for (const el of document.querySelectorAll('.cur')) el.textContent = currency();
        const select = $('market');
        select.replaceChildren(...S.config.markets.map((m) => new Option(m.id + ' (' + m.mode + ')', m.id)));
        S.market = S.config.markets.length ? S.config.markets[0].id : '';
        renderTrades();
        drawEpochs();
        await poll();
        if (S.token) followHistory(); // signed in from an earlier visit
        setInterval(poll, POLL_MS);
        setInterval(tickCountdown, 1000);
        setInterval(refreshAdmin, ADMIN_MS);
        connectWs();
        document.body.dataset.ready = '1';
    }

    boot();
})();
