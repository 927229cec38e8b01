// account.mjs — a user's money in the dashboard, end to end: the real gateway, matcher,
// persister, settler and broadcaster and the local Solana ledger (test_dashboard.c starts
// them), driven in headless Chromium as two people would.
//
//   node tests/browser/account.mjs <gateway-url> <seller> <buyer> <password> <desktop.png> <phone.png>
//
// Both users exist, with wallets the ledger funded (the platform approved as delegate of their
// token accounts), and have deposited nothing. The first market trades from balances (escrow)
// with a tick of 0.01 or finer and a lot of 1 kWh or finer, and is empty; the page must go live
// on the broadcaster (the balances come on its account channel).
//
// The seller's sell is refused for insufficient_balance: the order form says what it needs and
// what is available, and its button fills in the deposit form (the asset, the shortfall). A
// deposit with a bad amount shows the API's error by the form, the field marked. A deposit of
// 5 kWh is listed and followed by the page until credited, and the balances show it; a deposit
// of more than the wallet holds ends failed, with the chain's reason. A withdrawal beyond what
// is available is refused with insufficient_balance. Then the sell (4 kWh at 0.40) rests,
// holding its energy. The buyer deposits 3 and bids 5 kWh at 0.50: 4 kWh trade at 0.40, and
// the balances show 0.9 available and 0.5 held by the rest of the bid. The buyer's trades list
// the trade with its order, its settlement followed until confirmed and its transaction's
// signature (shortened, whole in its title). The buyer withdraws the 0.9, followed until paid,
// amends the bid's last 1 kWh to 0.5 (the form opens with the order's quantity and price; half
// the hold comes back) and cancels it (the rest comes back; the order is listed cancelled).
// The order form is on the first screen of a 1400x1000 desktop. Then a screenshot there and
// one at a phone's 390x844, where nothing may be wider than the screen. On the way the page logs no script error and no Content-Security-Policy
// violation.
//
// Exit status: 0 passed; 1 the dashboard misbehaved; 2 this machine lacks Chromium or
// node_modules (run tools/deps.sh).
import { readFile } from 'node:fs/promises';
import { CHAIN_MS, Failure, PHONE, STEP_MS, aboveTheFold, balancesAre, outcome, run, say, until } from './lib.mjs';

const NAME = 'account';
const [url, seller, buyer, password, desktop, phone] = process.argv.slice(2);
if (!url || !seller || !buyer || !password || !desktop || !phone) {
    console.error('usage: node account.mjs <gateway-url> <seller> <buyer> <password> <desktop.png> <phone.png>');
    process.exit(2);
}
const log = (text) => say(NAME, text);

await run(NAME, async ({ page }) => {
    const signIn = async (user) => {
        await page.getByTestId('login-username').fill(user);
        await page.getByTestId('login-password').fill(password);
        await page.getByTestId('login-submit').click();
        await outcome(page, `signing in as ${user}`, 'ok', new RegExp('signed in as ' + user));
        log(`signed in as ${user}`);
    };
    const placeOrder = async (side, amount, price) => {
        await page.getByTestId('order-side').selectOption(side);
        await page.getByTestId('order-type').selectOption('Limit');
        await page.getByTestId('order-amount').fill(amount);
        await page.getByTestId('order-price').fill(price);
        await page.getByTestId('order-tif').selectOption('GTC');
        await page.getByTestId('order-submit').click();
    };
    // form 'deposit' or 'withdraw': fills it in and sends it.
    const send = async (form, asset, amount) => {
        await page.getByTestId(`${form}-asset`).selectOption(asset);
        await page.getByTestId(`${form}-amount`).fill(amount);
        await page.getByTestId(`${form}-submit`).click();
    };
    // Waits for the form's note to say kind ('ok' or 'error') with text matching re; its text.
    const noteSays = (form, what, kind, re) => until(page, what, ([id, kind, source]) => {
        const el = document.querySelector(`[data-testid=${id}]`);
        return !el.hidden && el.dataset.kind === kind && new RegExp(source).test(el.textContent) && el.textContent;
    }, [`${form}-note`, kind, re.source]);
    // Waits until the deposits and withdrawals list shows kind id with status; the row's cells.
    const transferIs = (what, kind, id, status) => until(page, what, ([kind, id, status]) => {
        const row = document.querySelector(`[data-testid=transfers] tr[data-kind=${kind}][data-id="${id}"]`);
        return row && row.dataset.status === status && [...row.cells].map((td) => td.textContent);
    }, [kind, id, status], CHAIN_MS);
    // A deposit through the form: its id, once the page says it is pending.
    const deposit = async (asset, amount) => {
        await send('deposit', asset, amount);
        const said = await noteSays('deposit', `the deposit of ${amount} ${asset} recorded`, 'ok', /^deposit \d+ recorded/);
        return said.match(/^deposit (\d+)/)[1];
    };
    // The order form's word on an order the balance does not cover.
    const shortfall = async (what, re) => {
        await outcome(page, what, 'error', /^insufficient_balance/);
        const said = await until(page, `${what}: the order form says why`, () => {
            const el = document.querySelector('[data-testid=order-note]');
            return !el.hidden && el.textContent.replace(/\s+/g, ' ').trim();
        });
        if (!re.test(said)) throw new Failure(`${what}: the order form says "${said}", not ${re}`);
        log(`order form: ${said}`);
    };
    // The order form's button to the deposit form: asset and amount filled in, amount focused.
    const toDeposit = async (asset, amount) => {
        await page.getByTestId('order-deposit').click();
        const form = await page.evaluate(() => ({
            asset: document.querySelector('[data-testid=deposit-asset]').value,
            amount: document.querySelector('[data-testid=deposit-amount]').value,
            focused: document.activeElement && document.activeElement.dataset.testid,
        }));
        if (form.asset !== asset || form.amount !== amount || form.focused !== 'deposit-amount')
            throw new Failure(`the order form's deposit button left the deposit form at ${JSON.stringify(form)}, not ${asset} ${amount} with the amount focused`);
    };

    const response = await page.goto(url, { waitUntil: 'load', timeout: STEP_MS });
    if (!response || response.status() !== 200)
        throw new Failure(`GET ${url}: ${response ? response.status() : 'no answer'}`);
    await until(page, 'the page to start', () => document.body.dataset.ready === '1');
    await until(page, 'the page to go live (the broadcaster\'s WebSocket)',
        () => document.querySelector('[data-testid=conn-state]').dataset.state === 'live');

    // The seller: nothing deposited, so the sell is refused, and the page says what to do.
    await signIn(seller);
    await balancesAre(page, 'the seller\'s balances: nothing yet', 'ws', '0 0 0 0 0 0');
    await aboveTheFold(page, 'the order form on a desktop', 'order-submit');
    await placeOrder('Sell', '4', '0.40');
    await shortfall('the uncovered sell refused', /Not enough energy .*needs 4 kWh of energy, you have 0 available.*Deposit energy/);
    await toDeposit('energy', '4');

    // A bad amount: the API's error by the form, the field marked.
    await send('deposit', 'energy', '1.23456');
    const bad = await noteSays('deposit', 'a too precise amount refused', 'error', /^too_precise/);
    if (!(await page.getByTestId('deposit-amount').evaluate((el) => el.classList.contains('invalid'))))
        throw new Failure('the refused amount is not marked');
    log(`deposit refused: ${bad}`);

    // 5 kWh: pending, followed by the page until the chain has it and the matcher credits it.
    const credited = await deposit('energy', '5');
    await transferIs('the deposit credited', 'deposit', credited, 'credited');
    await balancesAre(page, 'the seller\'s balances with the deposit', 'ws', '5 0 5 0 0 0', CHAIN_MS);
    log(`deposit ${credited} credited: 5 kWh available`);

    // More than the wallet holds: the chain refuses it, and the list says why.
    const refused = await deposit('energy', '5000');
    const failed = await transferIs('the deposit beyond the wallet failed', 'deposit', refused, 'failed');
    if (!/insufficient/i.test(failed[5])) throw new Failure(`the failed deposit shows "${failed[5]}", not the chain's reason`);
    log(`deposit ${refused} failed: ${failed[5]}`);

    // A withdrawal beyond what is available.
    await send('withdraw', 'energy', '6');
    const beyond = await noteSays('withdraw', 'a withdrawal beyond the balance refused', 'error',
        /^insufficient_balance.*you have 5 kWh of energy available/);
    log(`withdrawal refused: ${beyond}`);

    // Now the sell is covered: it rests, holding its energy.
    await placeOrder('Sell', '4', '0.40');
    await outcome(page, 'the covered sell accepted', 'ok', /^order \d+ open/);
    if (await page.getByTestId('order-note').isVisible()) throw new Failure('the refusal still shows once an order is accepted');
    await balancesAre(page, 'the sell holding its energy', 'ws', '1 4 5 0 0 0');

    await page.getByTestId('logout').click();
    await outcome(page, 'signing out', 'ok', /signed out/);
    await balancesAre(page, 'no balances once signed out', '', '- - - - - -');

    // The buyer: a bid the balance does not cover, a deposit, then the trade.
    await signIn(buyer);
    await balancesAre(page, 'the buyer\'s balances: nothing yet', 'ws', '0 0 0 0 0 0');
    await placeOrder('Buy', '5', '0.50');
    await shortfall('the uncovered bid refused', /Not enough payment .*needs 2\.5 payment tokens, you have 0 available.*Deposit payment/);
    await toDeposit('payment', '2.5');
    const paid = await deposit('payment', '3');
    await transferIs('the payment deposit credited', 'deposit', paid, 'credited');
    await balancesAre(page, 'the buyer\'s balances with the deposit', 'ws', '0 0 0 3 0 3', CHAIN_MS);
    log(`deposit ${paid} credited: 3 available`);

    await placeOrder('Buy', '5', '0.50');
    const bought = await outcome(page, 'the bid trading with the sell', 'ok', /^order \d+ partially_filled: 4 kWh filled/);
    const buyId = bought.match(/^order (\d+)/)[1];
    log(bought);
    // 4 kWh at 0.40 paid (1.6), and the 1 kWh left of the bid holds 0.50.
    await balancesAre(page, 'the buyer\'s balances after the trade', 'ws', '0 0 0 0.9 0.5 1.4');

    const trade = await until(page, 'the trade in my trades, settled on chain', (id) => {
        const row = document.querySelector(`[data-testid=my-trades] tr[data-order-id="${id}"]`);
        if (!row || row.dataset.settlement !== 'confirmed') return false;
        const sig = row.cells[5];
        return { cells: [...row.cells].map((td) => td.textContent), signature: sig.title };
    }, buyId, CHAIN_MS);
    const [, side, price, kwh, settlement, shown, order] = trade.cells;
    if (side !== 'Buy' || price !== '0.4' || kwh !== '4' || order !== buyId || settlement !== 'confirmed')
        throw new Failure(`my trades shows ${trade.cells.join(' | ')}, not the buy of 4 kWh at 0.4 by order ${buyId}, confirmed`);
    if (trade.signature.length < 64 || shown.length >= trade.signature.length ||
        !trade.signature.startsWith(shown.split('…')[0]))
        throw new Failure(`the signature shows as "${shown}" (title "${trade.signature}"): not shortened, with the whole in its title`);
    log(`my trades: ${trade.cells.join(' | ')}; signature ${trade.signature}`);

    // The rest of the money back to the wallet, followed until paid.
    await send('withdraw', 'payment', '0.9');
    const out = await noteSays('withdraw', 'the withdrawal accepted', 'ok', /^withdrawal \d+ requested/);
    const wid = out.match(/^withdrawal (\d+)/)[1];
    await balancesAre(page, 'the withdrawal debited', 'ws', '0 0 0 0 0.5 0.5');
    await transferIs('the withdrawal paid', 'withdrawal', wid, 'paid');
    log(`withdrawal ${wid} paid`);

    // The bid's last 1 kWh, amended to 0.5 (half the hold comes back), then cancelled.
    await page.locator(`[data-testid=amend-order][data-order-id="${buyId}"]`).click();
    const form = await page.evaluate(() => ({
        amount: document.querySelector('[data-testid=amend-amount]').value,
        price: document.querySelector('[data-testid=amend-price]').value,
    }));
    if (form.amount !== '1' || form.price !== '0.5')
        throw new Failure(`the amend form opened with ${JSON.stringify(form)}, not the order's 1 kWh left at 0.5`);
    await page.getByTestId('amend-amount').fill('0.5');
    await page.getByTestId('amend-submit').click();
    const amended = await outcome(page, 'the amend accepted', 'ok', new RegExp(`^order ${buyId} amended: partially_filled, 0\\.5 kWh left`));
    log(amended);
    await balancesAre(page, 'the amend releasing half the hold', 'ws', '0 0 0 0.25 0.25 0.5');
    await page.locator(`[data-testid=cancel-order][data-order-id="${buyId}"]`).click();
    await outcome(page, 'the cancel accepted', 'ok', new RegExp(`^order ${buyId} cancelled`));
    await balancesAre(page, 'the cancel releasing the rest', 'ws', '0 0 0 0.5 0 0.5');
    const ended = await until(page, 'the order listed as cancelled', (id) => {
        const row = document.querySelector(`[data-testid=my-orders] tr[data-order-id="${id}"]`);
        return row && row.dataset.status === 'cancelled' && !row.querySelector('button') && row.textContent;
    }, buyId);
    log(`my orders: ${ended}`);

    await page.screenshot({ path: desktop, fullPage: true });
    await page.setViewportSize(PHONE);
    const widest = await until(page, 'the page laid out at a phone\'s width', (width) =>
        window.innerWidth === width && { page: document.documentElement.scrollWidth }, PHONE.width);
    if (widest.page > PHONE.width)
        throw new Failure(`at a phone's width (${PHONE.width} px) the page is ${widest.page} px wide`);
    await page.screenshot({ path: phone, fullPage: true });
    for (const file of [desktop, phone]) {
        const png = await readFile(file);
        if (png.length < 8 || png.readUInt32BE(0) !== 0x89504e47) throw new Failure(`${file} is not a PNG`);
        log(`screenshot ${file} (${png.length} bytes)`);
    }
}, 180000);
