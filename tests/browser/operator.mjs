// operator.mjs — the dashboard as an operator uses it, in headless Chromium, against the real
// gateway, matcher, persister, settler and broadcaster and the local Solana ledger
// (test_dashboard.c starts them and makes the situation):
//
//   node tests/browser/operator.mjs <gateway-url> <admin-token> <market> <desktop.png> <phone.png>
//
// The market is an auction without escrow holding a bid and an ask that cross, placed by a
// buyer whose wallet has no token accounts on the chain: the trade gate closure makes cannot
// settle. Signed in as an administrator (the token is the session's, as after a sign-in), the
// page must show every part's health (gateway, matcher, bus, Postgres, Redis, settler,
// broadcaster: all up but the settler's once a settlement failed); the reconciliation of the
// escrow (the seller deposited 3 kWh before: the energy vault holds exactly that, owed to
// her; nothing in flight); "Clear epoch" must ask
// first (dismissed: nothing happens; accepted: the epoch clears); the failed settlement must
// be listed with the chain's reason, and its Retry must ask, send it again and say so. No
// script error and no Content-Security-Policy violation on the way; screenshots at 1400x1000
// and 390x844.
//
// Exit status: 0 passed; 1 the dashboard misbehaved; 2 this machine lacks Chromium or
// node_modules (run tools/deps.sh).
import { CHAIN_MS, Failure, PHONE, STEP_MS, outcome, run, say, until } from './lib.mjs';

const NAME = 'operator';
const [url, token, market, desktop, phone] = process.argv.slice(2);
if (!url || !token || !market || !desktop || !phone) {
    console.error('usage: node operator.mjs <gateway-url> <admin-token> <market> <desktop.png> <phone.png>');
    process.exit(2);
}
const log = (text) => say(NAME, text);

await run(NAME, async ({ page }) => {
    await page.addInitScript((t) => sessionStorage.setItem('mce.token', t), token);
    const response = await page.goto(url, { waitUntil: 'load', timeout: STEP_MS });
    if (!response || response.status() !== 200)
        throw new Failure(`GET ${url}: ${response ? response.status() : 'no answer'}`);
    await until(page, 'the page to start', () => document.body.dataset.ready === '1');
    await until(page, 'the page to go live', () => document.querySelector('[data-testid=conn-state]').dataset.state === 'live');
    await page.getByTestId('market-select').selectOption(market);

    const health = () => until(page, 'every part healthy in the operator\'s view', () => {
        const rows = [...document.querySelectorAll('[data-testid=health-row]')];
        const state = Object.fromEntries(rows.map((r) => [r.dataset.part, r.dataset.state]));
        const want = ['gateway', 'matcher', 'bus', 'postgres', 'redis', 'settler', 'broadcaster'];
        return want.every((p) => state[p] === 'up' || (p === 'redis' && state[p] === 'off')) && state;
    });
    log(`health: ${JSON.stringify(await health())}`);

    // The escrow against the chain: erin's 3 kWh deposit is in the energy vault and owed to her.
    const recon = await until(page, 'the reconciliation to balance, with the deposit in the energy vault', () => {
        const rows = [...document.querySelectorAll('[data-testid=reconciliation-row]')];
        const text = (asset) => {
            const row = rows.find((r) => r.dataset.asset === asset);
            return row && [...row.cells].map((td) => td.textContent).join(' | ');
        };
        const note = document.querySelector('[data-testid=admin-reconciliation-note]');
        return note.dataset.state === 'balanced' && text('energy') === 'energy | 3 kWh | 3 kWh | 0 | 0' &&
            /^payment \| 0 \S+ \| 0 \S+ \| 0 \| 0$/.test(text('payment')) && [text('energy'), text('payment'), note.textContent];
    }, undefined, CHAIN_MS);
    log(`reconciliation: ${recon.join('; ')}`);

    // A control asks first: dismissed, nothing is sent.
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await page.getByTestId('admin-clear_epoch').click();
    if (!new RegExp(`Clear the current epoch.* in ${market}\\?`).test(asked))
        throw new Failure(`"Clear epoch" asked "${asked}", not whether to clear ${market}'s current epoch`);
    const before = await page.getByTestId('status').textContent();
    if (/clear_epoch/.test(before)) throw new Failure(`a dismissed "Clear epoch" acted: ${before}`);
    log(`asked "${asked}"; dismissed: nothing sent`);

    page.once('dialog', (d) => d.accept());
    await page.getByTestId('admin-clear_epoch').click();
    log(await outcome(page, 'the epoch cleared', 'ok', new RegExp(`^clear_epoch on ${market}: done`)));

    const failed = await until(page, 'the failed settlement listed with its reason', () => {
        const row = document.querySelector('[data-testid=failed-settlement]');
        return row && { id: row.dataset.settlementId, cells: [...row.cells].map((td) => td.textContent) };
    }, undefined, CHAIN_MS);
    if (failed.cells[5] === '-' || !failed.cells[5]) throw new Failure(`the failed settlement shows no reason: ${failed.cells.join(' | ')}`);
    log(`failed settlement ${failed.id}: ${failed.cells.join(' | ')}`);
    const settler = await until(page, 'the settler\'s health to say so', () => {
        const row = document.querySelector('[data-testid=health-row][data-part=settler]');
        return row && row.dataset.state === 'down' && /failed settlement/.test(row.textContent) && row.textContent;
    });
    log(`health: ${settler}`);

    let retryAsked = '';
    page.once('dialog', (d) => { retryAsked = d.message(); d.accept(); });
    await page.locator(`[data-testid=retry-settlement][data-settlement-id="${failed.id}"]`).click();
    const retried = await until(page, 'the retry answered', () => {
        const el = document.querySelector('[data-testid=admin-settlements-note]');
        return !el.hidden && el.dataset.kind === 'ok' && el.textContent;
    });
    if (!retryAsked.includes(failed.id)) throw new Failure(`Retry asked "${retryAsked}", not about settlement ${failed.id}`);
    if (!new RegExp(`^settlement ${failed.id}: pending`).test(retried))
        throw new Failure(`the retry says "${retried}", not that settlement ${failed.id} is pending again`);
    log(retried);

    await page.screenshot({ path: desktop, fullPage: true });
    await page.setViewportSize(PHONE);
    const widest = await until(page, 'the page laid out at a phone\'s width', (width) =>
        window.innerWidth === width && document.documentElement.scrollWidth, PHONE.width);
    if (widest > PHONE.width) throw new Failure(`at ${PHONE.width} px the page is ${widest} px wide`);
    await page.screenshot({ path: phone, fullPage: true });
});
