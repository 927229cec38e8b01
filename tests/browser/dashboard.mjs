// dashboard.mjs — drives the gateway's web dashboard in headless Chromium, as two people would.
//
//   node tests/browser/dashboard.mjs <gateway-url> <user1> <password1> <user2> <password2> <screenshot.png> [live|polling]
//
// (or MCE_GATEWAY_URL, MCE_USER1, MCE_PASSWORD1, MCE_USER2, MCE_PASSWORD2, MCE_SCREENSHOT,
// MCE_DASHBOARD_DATA; MCE_CHROMIUM overrides /usr/bin/chromium). Both users must exist and not
// be admins; the first market must be empty at 0.19-0.20, with a tick of 0.001 or finer and a
// lot of 0.1 kWh or finer.
//
// It opens the page, signs in as user1 and places a limit buy, signs out, signs in as user2
// and places a crossing limit sell, then waits (every wait has a deadline) until the trade is
// in the trades list, the sell shows filled in user2's orders and the trade in user2's own
// trades (with the order it filled), the depth chart shows the buy's remainder, and saves a
// screenshot; then, in the second market (an auction), a bid and an ask make the page show the
// indicative clearing where the spread would be. On the way: an order the API refuses shows
// its error on the status line, the balances show (zero: the market trades without escrow),
// and the page logs no script error and no Content-Security-Policy violation.
//
// The last argument says where the page must get its data (default live):
//   live     the broadcaster's WebSocket (the gateway's broadcaster_url, which must serve):
//            the page must go live and stay live, read no market data over HTTP once live
//            (the user's own trades have no channel: they are read over HTTP), the bid, the
//            trade and the remainder must reach it as WebSocket updates, and the balances come
//            on the private account channel;
//   polling  the gateway's HTTP API (no broadcaster where broadcaster_url points): the page
//            must say polling all along, and draw what it read over HTTP.
//
// Exit status: 0 passed; 1 the dashboard misbehaved; 2 this machine lacks Chromium or
// node_modules (run tools/deps.sh).
import { readFile } from 'node:fs/promises';
import { Failure, Inbox, STEP_MS, depthChart, outcome, run, say, until } from './lib.mjs';

const NAME = 'dashboard';
const args = process.argv.slice(2);
const env = process.env;
const [url, user1, password1, user2, password2, screenshot, data] = [
    args[0] || env.MCE_GATEWAY_URL, args[1] || env.MCE_USER1, args[2] || env.MCE_PASSWORD1,
    args[3] || env.MCE_USER2, args[4] || env.MCE_PASSWORD2, args[5] || env.MCE_SCREENSHOT,
    args[6] || env.MCE_DASHBOARD_DATA || 'live',
];
if (!url || !user1 || !password1 || !user2 || !password2 || !screenshot || !['live', 'polling'].includes(data)) {
    console.error('usage: node dashboard.mjs <gateway-url> <user1> <password1> <user2> <password2> <screenshot.png> [live|polling]');
    process.exit(2);
}
const live = data === 'live';
const log = (text) => say(NAME, text);

await run(NAME, async ({ page }) => {
    // What the page hears from the broadcaster, and what it reads over HTTP.
    const inbox = new Inbox();
    const frames = inbox.items;
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
        try { inbox.push(JSON.parse(f.payload)); } catch (e) { inbox.push({ unparsed: String(f.payload) }); }
    }));
    let marketReads = 0;
    page.on('request', (r) => {
        if (r.url().includes('/api/market/') && !r.url().includes('/api/market/trades/my-history')) marketReads++;
    });
    // Waits for a depth update from the broadcaster with a bid at price of energy kWh.
    const bidUpdate = (what, price, energy) => inbox.waitFor(`${what}: a depth update with that bid`,
        (m) => m.type === 'update' && m.channel === 'depth' && m.market === market &&
            (m.data.bids || []).some((l) => Number(l.price) === price && Number(l.energy_amount) === energy));
    // The chart must have been drawn from where this run says the data comes.
    const chartSource = async (what) => {
        const source = await page.getByTestId('depth-chart').getAttribute('data-source');
        if (source !== (live ? 'ws' : 'http'))
            throw new Failure(`${what}: drawn from data of "${source}", not ${live ? 'the WebSocket (ws)' : 'HTTP (http)'}`);
    };
    const connIs = async (what) => {
        const conn = await page.getByTestId('conn-state').getAttribute('data-state');
        if (conn !== data) throw new Failure(`${what}: the page says "${conn}", not ${data}`);
    };

    const signIn = async (user, password) => {
        await page.getByTestId('login-username').fill(user);
        await page.getByTestId('login-password').fill(password);
        await page.getByTestId('login-submit').click();
        await outcome(page, `signing in as ${user}`, 'ok', new RegExp('signed in as ' + user));
        await until(page, 'the order form to show', () => !document.getElementById('order-panel').hidden);
    };
    const placeOrder = async (side, amount, price) => {
        await page.getByTestId('order-side').selectOption(side);
        await page.getByTestId('order-type').selectOption('Limit');
        await page.getByTestId('order-amount').fill(amount);
        await page.getByTestId('order-price').fill(price);
        await page.getByTestId('order-tif').selectOption('GTC');
        await page.getByTestId('order-submit').click();
    };

    const response = await page.goto(url, { waitUntil: 'load', timeout: STEP_MS });
    if (!response || response.status() !== 200)
        throw new Failure(`GET ${url}: ${response ? response.status() : 'no answer'}`);
    await until(page, 'the page to start (config, first reads)', () => document.body.dataset.ready === '1');
    const market = await page.getByTestId('market-select').inputValue();
    if (!market) throw new Failure('the market selector is empty (GET /api/dashboard/config)');
    if (live) {
        await until(page, 'the page to go live (the broadcaster\'s WebSocket)',
            () => document.querySelector('[data-testid=conn-state]').dataset.state === 'live');
        await until(page, 'the depth snapshot from the broadcaster',
            () => document.querySelector('[data-testid=depth-chart]').dataset.source === 'ws');
    }
    else {
        // The page tries the broadcaster's WebSocket: once a try has failed (nothing listens
        // there), it must not think it is live, nor have opened one.
        const tries = await until(page, 'a WebSocket attempt to fail (data-ws-failures on the connection state)', () => {
            const d = document.querySelector('[data-testid=conn-state]').dataset;
            return Number(d.wsFailures) >= 1 && { attempts: d.wsAttempts, opens: d.wsOpens, failures: d.wsFailures };
        });
        await connIs('once a WebSocket attempt has failed');
        if (Number(tries.opens) !== 0)
            throw new Failure(`the page opened ${tries.opens} WebSocket(s) where no broadcaster listens`);
        log(`WebSocket attempts ${tries.attempts}, failed ${tries.failures}, opened ${tries.opens}`);
    }
    const readsWhenLive = marketReads;
    log(`page up: market ${market}, data ${data}`);
    const start = await depthChart(page);

    await signIn(user1, password1);
    log(`signed in as ${user1}`);
    // Nothing deposited: zero of each, from the account channel when live, else over HTTP.
    const balances = await until(page, 'the balances shown', (source) => {
        const table = document.querySelector('[data-testid=balances]');
        const cells = ['energy-available', 'energy-reserved', 'payment-available', 'payment-reserved']
            .map((id) => document.querySelector(`[data-testid=${id}]`).textContent);
        return table.dataset.source === source && cells.every((c) => c === '0') && cells.join(' ');
    }, live ? 'ws' : 'http');
    log(`balances ${balances} (from ${live ? 'the account channel' : 'HTTP'})`);
    if (await page.getByTestId('admin-panel').isVisible())
        throw new Failure(`the admin controls show for ${user1}, who is not an admin`);

    // An order the API refuses: its error reaches the status line, its field is marked.
    await placeOrder('Buy', '1.23456', '0.2');
    const refused = await outcome(page, 'a too precise amount to be refused', 'error', /energy_amount/);
    if (!(await page.getByTestId('order-amount').evaluate((el) => el.classList.contains('invalid'))))
        throw new Failure('the refused field (energy_amount) is not marked');
    log(`refused as it should be: ${refused}`);

    await placeOrder('Buy', '10', '0.2');
    const bought = await outcome(page, 'the buy to be accepted', 'ok', /^order \d+ open/);
    log(bought);
    const buyId = bought.match(/^order (\d+)/)[1];
    await until(page, 'the buy in my orders', (id) =>
        document.querySelector(`[data-testid=my-orders] tr[data-order-id="${id}"]`), buyId);
    const withBuy = await until(page, 'the depth chart to draw the bid', (was) => {
        const sig = document.querySelector('[data-testid=depth-chart]').dataset.signature;
        return sig !== was && sig.includes('0.2@10') && sig;
    }, start.signature);
    const before = await depthChart(page);
    if (before.png === start.png) throw new Failure('the depth chart canvas did not change for the bid');
    await chartSource('the depth chart with the bid');
    if (live) await bidUpdate('the bid as a depth update', 0.2, 10);
    log(`depth chart: ${withBuy}`);

    await page.getByTestId('logout').click();
    await outcome(page, 'signing out', 'ok', /signed out/);
    if (await page.getByTestId('order-form').isVisible()) throw new Failure('the order form shows after signing out');
    await signIn(user2, password2);
    log(`signed in as ${user2}`);

    await placeOrder('Sell', '4', '0.19');
    const sold = await outcome(page, 'the sell to be accepted', 'ok', /^order \d+ filled/);
    log(sold);
    const trade = await until(page, 'the trade in the trades list', () => {
        const row = [...document.querySelectorAll('[data-testid=trades] tr[data-testid=trade-row]')]
            .find((tr) => tr.cells[1].textContent === '0.2' && tr.cells[2].textContent === '4');
        return row && [...row.cells].map((td) => td.textContent).join(' | ');
    });
    log(`trade row: ${trade}`);
    const sellId = sold.match(/^order (\d+)/)[1];
    await until(page, 'the sell filled in my orders', (id) => {
        const row = document.querySelector(`[data-testid=my-orders] tr[data-order-id="${id}"]`);
        return row && row.dataset.status === 'filled';
    }, sellId);
    const after = await until(page, 'the depth chart to change after the trade', (was) => {
        const sig = document.querySelector('[data-testid=depth-chart]').dataset.signature;
        return sig !== was && sig.includes('0.2@6') && sig;
    }, before.signature);
    if ((await depthChart(page)).png === before.png)
        throw new Failure('the depth chart canvas did not change after the trade');
    await chartSource('the depth chart after the trade');
    log(`depth chart: ${after}`);
    // The last trade's price marked on the chart, written with the tick's decimals (0.001).
    const marked = await until(page, 'the last trade\'s price marked on the depth chart',
        () => document.querySelector('[data-testid=depth-chart]').dataset.last === '0.200' && '0.200');
    log(`depth chart marks the last price ${marked}`);
    // The trade in user2's own trades, with the order it filled. No settler runs here: its
    // settlement is not recorded.
    const mine = await until(page, 'the trade in my trades, with its order', (id) => {
        const row = document.querySelector(`[data-testid=my-trades] tr[data-order-id="${id}"]`);
        return row && row.cells[1].textContent === 'Sell' && row.cells[3].textContent === '4' &&
            [...row.cells].map((td) => td.textContent).join(' | ');
    }, sellId);
    log(`my trades: ${mine}`);

    if (live) {
        await bidUpdate('the buy\'s remainder as a depth update', 0.2, 6);
        const heard = frames.find((m) => m.type === 'update' && m.channel === 'trades' &&
            (m.data.trades || []).some((t) => Number(t.price) === 0.2 && Number(t.energy_amount) === 4));
        if (!heard) throw new Failure(`the trade came as no trades update; heard: ${JSON.stringify(frames.slice(-20))}`);
        const filled = frames.find((m) => (m.type === 'snapshot' || m.type === 'update') && m.channel === 'orders' &&
            m.user === user2 && (m.data.orders || []).some((o) => o.order_id === sellId && o.status === 'filled'));
        if (!filled) throw new Failure(`the filled sell came on no orders message for ${user2}`);
        if (marketReads !== readsWhenLive)
            throw new Failure(`the page read market data over HTTP ${marketReads - readsWhenLive} times while live`);
        log(`live all along: ${frames.length} messages from the broadcaster, no market data over HTTP`);
    }
    else if (frames.length)
        throw new Failure(`${frames.length} messages over a WebSocket that should not be there`);
    await connIs('at the end');

    await page.screenshot({ path: screenshot, fullPage: true });
    const png = await readFile(screenshot);
    if (png.length < 8 || png.readUInt32BE(0) !== 0x89504e47) throw new Failure(`${screenshot} is not a PNG`);
    log(`screenshot ${screenshot} (${png.length} bytes)`);

    // The auction market: its book stays crossed until gate closure, so the page shows what it
    // would clear at now (the matcher's indicative clearing) where a spread would be.
    const auction = await page.getByTestId('market-select').evaluate((el) =>
        [...el.options].map((o) => o.value).find((v) => v !== el.value));
    if (!auction) throw new Failure('no second market to select (the auction market)');
    await page.getByTestId('market-select').selectOption(auction);
    await placeOrder('Buy', '10', '0.2');
    await outcome(page, 'the bid in the auction market to be accepted', 'ok', /^order \d+ open/);
    await page.getByTestId('logout').click();
    await outcome(page, 'signing out', 'ok', /signed out/);
    await signIn(user1, password1);
    await placeOrder('Sell', '4', '0.1');
    await outcome(page, 'the ask in the auction market to be accepted', 'ok', /^order \d+ open/);
    // D = 10 and S = 4 at both 0.1 and 0.2: the price is their midpoint, 4 kWh would match
    const shown = await until(page, 'the indicative clearing where the spread would be', () => {
        const text = document.getElementById('spread').textContent;
        return /^indicative 0\.15 \u00b7 4 kWh \u00b7 buy imbalance 6 kWh/.test(text) && text;
    });
    log(`auction market ${auction}: ${shown}`);
});
