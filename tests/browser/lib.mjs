// lib.mjs — what the browser tests share: Chromium through Playwright, waits with deadlines,
// and the exit codes (0 passed, 1 the dashboard misbehaved, 2 this machine cannot run them).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const STEP_MS = 20000; // longest any one step may take
export const CHAIN_MS = 60000; // a step that waits on the chain (a deposit credited, a trade settled)
const TOTAL_MS = 120000;      // a whole run, unless it says otherwise
const here = dirname(fileURLToPath(import.meta.url));

// A failure of the dashboard itself (exit 1): says what was expected and what the page showed.
export class Failure extends Error {}

export const say = (name, text) => console.log(`${name}: ${text}`);

// Messages as they arrive, and waits for one: a wait ends on the arrival that matches it,
// or fails at its deadline (STEP_MS); nothing polls.
export class Inbox {
    constructor() {
        this.items = [];
        this.waiters = new Set();
    }

    push(item) {
        this.items.push(item);
        for (const w of this.waiters) if (w.pred(item)) w.done(item);
    }

    // The first item at index `from` or later that matches pred, already here or to come.
    waitFor(what, pred, from = 0) {
        const hit = this.items.slice(from).find(pred);
        if (hit) return Promise.resolve(hit);
        return new Promise((resolve, reject) => {
            const w = { pred };
            const timer = setTimeout(() => {
                this.waiters.delete(w);
                reject(new Failure(`${what}: not within ${STEP_MS / 1000} s; received: ${JSON.stringify(this.items.slice(from).slice(-20))}`));
            }, STEP_MS);
            w.done = (item) => {
                clearTimeout(timer);
                this.waiters.delete(w);
                resolve(item);
            };
            this.waiters.add(w);
        });
    }
}

// Exits 2 with advice when Chromium or playwright-core is missing; else starts Chromium
// headless and opens a page that records script errors and CSP violations in `problems`.
// The run may take totalMs at most.
export async function open(name, totalMs = TOTAL_MS) {
    const chromiumPath = process.env.MCE_CHROMIUM || '/usr/bin/chromium';
    if (!existsSync(chromiumPath)) {
        console.error(`${name}: no Chromium at ${chromiumPath}: run tools/deps.sh (it installs Debian's chromium)`);
        process.exit(2);
    }
    const pw = join(here, 'node_modules', 'playwright-core');
    if (!existsSync(pw)) {
        console.error(`${name}: no ${pw}: run tools/deps.sh (npm ci in tests/browser)`);
        process.exit(2);
    }
    const watchdog = setTimeout(() => {
        console.error(`${name}: FAILED: the run took more than ${totalMs / 1000} s`);
        process.exit(1);
    }, totalMs);
    watchdog.unref();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push('script error: ' + e.message));
    page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
            problems.push('console: ' + m.text());
    });
    return { browser, page, problems };
}

// The screens the dashboard is made for: a desktop's and a phone's.
export const DESKTOP = { width: 1400, height: 1000 };
export const PHONE = { width: 390, height: 844 };

// Fails unless the element of testid is entirely within the first screen (no scrolling).
export async function aboveTheFold(page, what, testid) {
    const box = await page.getByTestId(testid).boundingBox();
    const height = page.viewportSize().height;
    if (!box || box.y < 0 || box.y + box.height > height)
        throw new Failure(`${what}: ${testid} is at ${box ? Math.round(box.y) + '-' + Math.round(box.y + box.height) : 'nowhere'} px, not within the first ${height} px`);
}

// What the status line says now, for failure messages.
export async function statusLine(page) {
    const el = page.getByTestId('status');
    return `[${await el.getAttribute('data-kind')}] ${await el.textContent()}`;
}

// Waits until fn (run in the page with arg) is truthy, polling every 100 ms up to ms (STEP_MS
// unless said); returns its value.
export async function until(page, what, fn, arg, ms = STEP_MS) {
    try {
        const handle = await page.waitForFunction(fn, arg, { timeout: ms, polling: 100 });
        return await handle.jsonValue();
    } catch (e) {
        throw new Failure(`${what}: not within ${ms / 1000} s; status line: ${await statusLine(page)}`);
    }
}

// Waits for the status line to report kind ('ok' or 'error') with text matching re.
export function outcome(page, what, kind, re) {
    return until(page, what, ([kind, source]) => {
        const el = document.querySelector('[data-testid=status]');
        return el.dataset.kind === kind && new RegExp(source).test(el.textContent) && el.textContent;
    }, [kind, re.source]);
}

// Waits until the balances show `want` (energy's available, reserved and total, then
// payment's, separated by spaces) read from `source` ('ws', 'http', or '' when signed out).
export function balancesAre(page, what, source, want, ms) {
    return until(page, what, ([source, want]) => {
        const parts = ['available', 'reserved', 'total'];
        const shown = ['energy', 'payment'].flatMap((a) =>
            parts.map((p) => document.querySelector(`[data-testid=${a}-${p}]`).textContent));
        return document.querySelector('[data-testid=balances]').dataset.source === source &&
            shown.join(' ') === want;
    }, [source, want], ms);
}

// The depth chart: the levels drawn (data attributes the page keeps) and its pixels.
export function depthChart(page) {
    return page.getByTestId('depth-chart').evaluate((c) => ({
        signature: c.dataset.signature, bids: Number(c.dataset.bids), asks: Number(c.dataset.asks), png: c.toDataURL(),
    }));
}

// Waits until the depth chart's signature is `want` (a string) and returns it.
export function depthIs(page, what, want) {
    return until(page, what, (want) => {
        const sig = document.querySelector('[data-testid=depth-chart]').dataset.signature;
        return sig === want && sig;
    }, want);
}

// Runs body (async), then closes the browser and exits 0, or 1 with the failure. The run may
// take totalMs at most.
export async function run(name, body, totalMs = TOTAL_MS) {
    let opened = null;
    try {
        opened = await open(name, totalMs);
        await body(opened);
        if (opened.problems.length) throw new Failure(opened.problems.join('; '));
        say(name, 'PASSED');
        await opened.browser.close();
        process.exit(0);
    } catch (e) {
        console.error(`${name}: FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
        if (opened && opened.problems.length) console.error(`${name}: the page reported: ${opened.problems.join('; ')}`);
        if (opened) await opened.browser.close().catch(() => {});
        process.exit(1);
    }
}
