// register.mjs — signs up through the dashboard's form in headless Chromium, both ways a
// person can prove a wallet:
//
//   node tests/browser/register.mjs <gateway-url> <user1> <seed1-hex> <user2> <seed2-hex> <password>
//
// user1 has a browser wallet: a stand-in for Phantom's injected provider (window.solana with
// connect() and signMessage(bytes, "utf8") -> {signature}) whose key (seed1) lives here, in
// Node, and signs through an exposed function. The wallet field is left empty: the page must
// fill it from the wallet, have the challenge signed, register, and sign in.
//
// user2 has no browser wallet: the first press must show the challenge's message; a signature
// by another key must be refused (bad_signature on the status line, the signature field
// marked); the right one (seed2's, made here from the message the page shows) must register
// and sign in.
//
// Exit status: 0 passed; 1 the dashboard misbehaved; 2 this machine lacks Chromium or
// node_modules (run tools/deps.sh).
import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { Failure, outcome, run, say, until } from './lib.mjs';

const NAME = 'register';
const [url, user1, seed1, user2, seed2, password] = process.argv.slice(2);
if (!url || !user1 || !seed1 || !user2 || !seed2 || !password) {
    console.error('usage: node register.mjs <gateway-url> <user1> <seed1-hex> <user2> <seed2-hex> <password>');
    process.exit(2);
}
const log = (text) => say(NAME, text);

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58(bytes) {
    let n = 0n, text = '';
    for (const b of bytes) n = n * 256n + BigInt(b);
    for (; n > 0n; n /= 58n) text = B58[Number(n % 58n)] + text;
    for (const b of bytes) { if (b !== 0) break; text = '1' + text; }
    return text;
}

// An ed25519 key from its 32-byte seed (PKCS#8 around it), and its Solana address.
function wallet(seedHex) {
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedHex, 'hex')]);
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const pub = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32);
    return { key, address: base58(pub), sign: (bytes) => sign(null, Buffer.from(bytes), key) };
}

const first = wallet(seed1), second = wallet(seed2), stranger = wallet(randomBytes(32).toString('hex'));

await run(NAME, async ({ page }) => {
    const register = async (user, walletText) => {
        await page.getByTestId('register-username').fill(user);
        await page.getByTestId('register-password').fill(password);
        await page.getByTestId('register-wallet').fill(walletText);
        await page.getByTestId('register-submit').click();
    };
    const signedInAs = async (p, user, address) => {
        await outcome(p, `${user} registered and signed in`, 'ok',
            new RegExp(`registered and signed in as ${user} with wallet ${address}`));
        await until(p, 'the order form to show', () => !document.getElementById('order-panel').hidden);
        const who = await p.getByTestId('whoami').textContent();
        if (!who.startsWith(user)) throw new Failure(`signed in as "${who}", not ${user}`);
        await p.getByTestId('logout').click();
        await outcome(p, 'signing out', 'ok', /signed out/);
    };

    // 1. With a browser wallet, the way Phantom injects one.
    const signed = [];
    await page.exposeFunction('mceTestWalletSign', (bytes) => {
        signed.push(Buffer.from(bytes).toString('utf8'));
        return Array.from(first.sign(bytes));
    });
    await page.addInitScript((address) => {
        const publicKey = { toBase58: () => address, toString: () => address };
        window.solana = {
            isPhantom: true,
            publicKey: null,
            async connect() { this.publicKey = publicKey; return { publicKey }; },
            async signMessage(bytes, display) {
                if (!(bytes instanceof Uint8Array) || display !== 'utf8') throw new Error('signMessage(Uint8Array, "utf8") expected');
                return { signature: Uint8Array.from(await window.mceTestWalletSign(Array.from(bytes))), publicKey };
            },
        };
    }, first.address);
    const response = await page.goto(url, { waitUntil: 'load' });
    if (!response || response.status() !== 200) throw new Failure(`GET ${url}: ${response ? response.status() : 'no answer'}`);
    await until(page, 'the page to start', () => document.body.dataset.ready === '1');
    await register(user1, '');
    await signedInAs(page, user1, first.address);
    if (signed.length !== 1) throw new Failure(`the wallet was asked to sign ${signed.length} times`);
    const lines = signed[0].split('\n');
    const host = new URL(url).host;
    if (lines[0] !== `${host} wants you to register a Solana wallet for mce:` || lines[1] !== first.address ||
        !signed[0].includes(`\nUsername: ${user1}\n`))
        throw new Failure(`the wallet signed an unexpected message:\n${signed[0]}`);
    log(`${user1} signed up with the browser wallet ${first.address}`);

    // 2. Without one: a fresh page with no window.solana.
    const p = await page.context().newPage();
    await p.goto(url, { waitUntil: 'load' });
    await until(p, 'the second page to start', () => document.body.dataset.ready === '1');
    if (await p.evaluate(() => 'solana' in window)) throw new Failure('the second page has a wallet');
    await p.getByTestId('register-username').fill(user2);
    await p.getByTestId('register-password').fill(password);
    await p.getByTestId('register-wallet').fill(second.address);
    await p.getByTestId('register-submit').click();
    await outcome(p, 'the challenge to be shown', 'ok', /paste the signature/);
    const message = await p.getByTestId('register-message').inputValue();
    if (!message.includes(second.address) || !message.includes(`Username: ${user2}`))
        throw new Failure(`the page shows an unexpected message:\n${message}`);
    // a signature by another key: refused, and nothing registered
    await p.getByTestId('register-signature').fill(base58(stranger.sign(Buffer.from(message, 'utf8'))));
    await p.getByTestId('register-submit').click();
    await outcome(p, 'a stranger\'s signature to be refused', 'error', /bad_signature/);
    if (!(await p.getByTestId('register-signature').evaluate((el) => el.classList.contains('invalid'))))
        throw new Failure('the refused signature field is not marked');
    // the wallet's own, signed from the text as shown
    await p.getByTestId('register-signature').fill(base58(second.sign(Buffer.from(message, 'utf8'))));
    await p.getByTestId('register-submit').click();
    await signedInAs(p, user2, second.address);
    log(`${user2} signed up with a pasted signature for ${second.address}`);
});
