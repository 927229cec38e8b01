/*  ledgertest — see ledgertest.h.  */
#include "ledgertest.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ledgertest_reload (ledgertest_t *l)
{
    json_error_t err;
    json_t *setup = json_load_file (l->setup_path, 0, &err);
    if (!setup) {
        fprintf (stderr, "ledgertest: %s: %s\n", l->setup_path, err.text);
        return -1;
    }
    json_decref (l->setup);
    l->setup = setup;
    return 0;
}

int ledgertest_start (ledgertest_t *l, const char *dir, const char *const *args)
{
    memset (l, 0, sizeof *l);
    snprintf (l->setup_path, sizeof l->setup_path, "%s/ledger.json", dir);
    snprintf (l->log_path, sizeof l->log_path, "%s/ledger.log", dir);
    char watch[32];
    snprintf (watch, sizeof watch, "%d", (int) getpid ());
    const char *argv[64] = {"node",        MCE_SOURCE_DIR "/tools/ledger/ledger.js",
                            "--port",      "0",
                            "--setup-out", l->setup_path,
                            "--watch-pid", watch};
    int argc = 8;
    for (int i = 0; args && args[i] && argc < 62; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int out[2];
    if (pipe2 (out, O_CLOEXEC)) {
        perror ("ledgertest: pipe");
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_adddup2 (&fa, out[1], 1);
    posix_spawn_file_actions_addopen (&fa, 2, l->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int rc = posix_spawnp (&l->pid, "node", &fa, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy (&fa);
    close (out[1]);
    if (rc) {
        fprintf (stderr, "ledgertest: cannot start node: %s\n", strerror (rc));
        close (out[0]);
        l->pid = 0;
        return -1;
    }
    //  the one ready line, within the deadline
    char line[256];
    size_t len = 0;
    int64_t deadline = s_now_ms () + LEDGERTEST_DEADLINE_MS;
    while (len < sizeof line - 1 && !memchr (line, '\n', len)) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int64_t left = deadline - s_now_ms ();
        if (left <= 0 || poll (&p, 1, (int) left) <= 0)
            break;
        ssize_t n = read (out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    close (out[0]);
    line[len] = '\0';
    if (sscanf (line, "ledger: listening on 127.0.0.1:%d", &l->port) != 1) {
        fprintf (stderr, "ledgertest: no ready line from the ledger (got \"%s\"); see %s\n", line,
                 l->log_path);
        ledgertest_stop (l);
        return -1;
    }
    snprintf (l->url, sizeof l->url, "http://127.0.0.1:%d", l->port);
    if (ledgertest_reload (l)) {
        ledgertest_stop (l);
        return -1;
    }
    return 0;
}

void ledgertest_stop (ledgertest_t *l)
{
    if (l->pid > 0) {
        int fd = (int) syscall (SYS_pidfd_open, l->pid, 0);
        kill (l->pid, SIGTERM);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (fd < 0 || poll (&p, 1, LEDGERTEST_DEADLINE_MS) <= 0)
            kill (l->pid, SIGKILL);
        if (fd >= 0)
            close (fd);
        waitpid (l->pid, NULL, 0);
        l->pid = 0;
    }
    json_decref (l->setup);
    l->setup = NULL;
}

typedef struct {
    char *data;
    size_t len;
} s_body_t;

static size_t s_collect (char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_body_t *b = arg;
    size_t n = size * nmemb;
    char *p = realloc (b->data, b->len + n + 1);
    if (!p)
        return 0;
    memcpy (p + b->len, ptr, n);
    b->data = p;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

json_t *ledgertest_rpc (ledgertest_t *l, const char *method, const char *params)
{
    size_t size = strlen (method) + (params ? strlen (params) : 2) + 128;
    char *req = malloc (size);
    snprintf (req, size, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}", method,
              params ? params : "[]");
    CURL *c = curl_easy_init ();
    struct curl_slist *h = curl_slist_append (NULL, "Content-Type: application/json");
    s_body_t body = {0};
    curl_easy_setopt (c, CURLOPT_URL, l->url);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt (c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) LEDGERTEST_DEADLINE_MS);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform (c);
    long status = 0;
    curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (h);
    curl_easy_cleanup (c);
    free (req);
    json_t *result = NULL;
    json_t *root = body.data ? json_loads (body.data, 0, NULL) : NULL;
    if (rc != CURLE_OK || status != 200 || !root || !json_object_get (root, "result"))
        fprintf (stderr, "ledgertest: %s: curl %d, HTTP %ld: %s\n", method, (int) rc, status,
                 body.data ? body.data : "");
    else
        result = json_incref (json_object_get (root, "result"));
    json_decref (root);
    free (body.data);
    return result;
}

int64_t ledgertest_balance (ledgertest_t *l, const char *account)
{
    char params[128];
    snprintf (params, sizeof params, "[\"%s\"]", account);
    json_t *r = ledgertest_rpc (l, "getTokenAccountBalance", params);
    const char *amount =
        json_string_value (json_object_get (json_object_get (r, "value"), "amount"));
    int64_t v = amount ? strtoll (amount, NULL, 10) : -1;
    json_decref (r);
    return v;
}

json_t *ledgertest_user (ledgertest_t *l, const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach (json_object_get (l->setup, "users"), i, u)
    {
        if (strcmp (json_string_value (json_object_get (u, "name")), name) == 0)
            return u;
    }
    return NULL;
}

const char *ledgertest_field (ledgertest_t *l, const char *object, const char *field)
{
    return json_string_value (json_object_get (json_object_get (l->setup, object), field));
}

int ledgertest_memo_counts (ledgertest_t *l, const uint64_t *ids, size_t n, int *counts,
                            size_t *strays)
{
    return ledgertest_memo_ids (l, "mce:t=", ids, n, counts, strays);
}

int ledgertest_memo_ids (ledgertest_t *l, const char *prefix, const uint64_t *ids, size_t n,
                         int *counts, size_t *strays)
{
    size_t plen = strlen (prefix);
    memset (counts, 0, n * sizeof *counts);
    *strays = 0;
    int txs = 0;
    int64_t since = 0;
    for (;;) {
        char params[96];
        snprintf (params, sizeof params, "{\"since\":%lld,\"limit\":5000}", (long long) since);
        json_t *r = ledgertest_rpc (l, "mce_listTransactions", params);
        if (!r)
            return -1;
        json_t *list = json_object_get (r, "transactions");
        size_t i;
        json_t *tx;
        json_array_foreach (list, i, tx)
        {
            if (!json_is_null (json_object_get (tx, "err")))
                continue;
            size_t k;
            json_t *memo;
            json_array_foreach (json_object_get (tx, "memos"), k, memo)
            {
                const char *text = json_string_value (memo);
                if (!text || strncmp (text, prefix, plen) != 0)
                    continue;
                txs++;
                for (const char *p = text + plen; *p;) {
                    char *end;
                    uint64_t id = strtoull (p, &end, 10);
                    if (end == p)
                        break;
                    size_t j = 0;
                    while (j < n && ids[j] != id)
                        j++;
                    if (j < n)
                        counts[j]++;
                    else
                        (*strays)++;
                    p = *end == ',' ? end + 1 : end;
                }
            }
        }
        int64_t next = json_integer_value (json_object_get (r, "next"));
        int64_t total = json_integer_value (json_object_get (r, "total"));
        json_decref (r);
        if (next >= total || next <= since)
            break;
        since = next;
    }
    return txs;
}

int ledgertest_book (ledgertest_t *l, ledgertest_book_t *book)
{
    memset (book, 0, sizeof *book);
    size_t i;
    json_t *u;
    json_array_foreach (json_object_get (l->setup, "users"), i, u)
    {
        if (book->count >= sizeof book->users / sizeof book->users[0])
            break;
        if (json_is_false (json_object_get (u, "tokenAccounts")))
            continue; //  a user made without token accounts has no balances
        ledgertest_account_t *a = &book->users[book->count++];
        snprintf (a->name, sizeof a->name, "%s", json_string_value (json_object_get (u, "name")));
        snprintf (a->energy, sizeof a->energy, "%s",
                  json_string_value (json_object_get (u, "energyAccount")));
        snprintf (a->payment, sizeof a->payment, "%s",
                  json_string_value (json_object_get (u, "paymentAccount")));
        a->energy0 = ledgertest_balance (l, a->energy);
        a->payment0 = ledgertest_balance (l, a->payment);
        if (a->energy0 < 0 || a->payment0 < 0)
            return -1;
    }
    snprintf (book->treasury, sizeof book->treasury, "%s",
              ledgertest_field (l, "treasury", "paymentAccount"));
    book->treasury0 = ledgertest_balance (l, book->treasury);
    const char *ve = ledgertest_field (l, "vaults", "energy");
    const char *vp = ledgertest_field (l, "vaults", "payment");
    snprintf (book->vault_energy, sizeof book->vault_energy, "%s", ve ? ve : "");
    snprintf (book->vault_payment, sizeof book->vault_payment, "%s", vp ? vp : "");
    book->vault_energy0 = ve ? ledgertest_balance (l, ve) : 0;
    book->vault_payment0 = vp ? ledgertest_balance (l, vp) : 0;
    return book->treasury0 < 0 || book->vault_energy0 < 0 || book->vault_payment0 < 0 ? -1 : 0;
}

int ledgertest_check_escrow (ledgertest_t *l, const ledgertest_book_t *book,
                             const ledgertest_trade_t *trades, size_t n)
{
    int bad = 0;
    int64_t fees = 0, energy_out = 0, payment_out = 0;
    for (size_t i = 0; i < n; i++) {
        fees += trades[i].fee;
        energy_out += trades[i].qty;
        payment_out += trades[i].value;
    }
    for (size_t u = 0; u < book->count; u++) {
        const ledgertest_account_t *a = &book->users[u];
        int64_t energy = a->energy0, payment = a->payment0;
        for (size_t i = 0; i < n; i++) {
            const ledgertest_trade_t *t = &trades[i];
            if (strcmp (t->seller, a->name) == 0)
                payment += t->value - t->fee;
            if (strcmp (t->buyer, a->name) == 0)
                energy += t->qty;
        }
        int64_t e = ledgertest_balance (l, a->energy), p = ledgertest_balance (l, a->payment);
        if (e != energy || p != payment) {
            fprintf (stderr,
                     "ledgertest: %s: energy %lld Wh (expected %lld), payment %lld µ (expected "
                     "%lld)\n",
                     a->name, (long long) e, (long long) energy, (long long) p,
                     (long long) payment);
            bad++;
        }
    }
    int64_t t = ledgertest_balance (l, book->treasury);
    int64_t ve = ledgertest_balance (l, book->vault_energy);
    int64_t vp = ledgertest_balance (l, book->vault_payment);
    if (t != book->treasury0 + fees || ve != book->vault_energy0 - energy_out ||
        vp != book->vault_payment0 - payment_out) {
        fprintf (stderr,
                 "ledgertest: treasury %lld µ (expected %lld), vaults %lld Wh (expected %lld) and "
                 "%lld µ (expected %lld)\n",
                 (long long) t, (long long) (book->treasury0 + fees), (long long) ve,
                 (long long) (book->vault_energy0 - energy_out), (long long) vp,
                 (long long) (book->vault_payment0 - payment_out));
        bad++;
    }
    return bad;
}

int ledgertest_check_balances (ledgertest_t *l, const ledgertest_book_t *book,
                               const ledgertest_trade_t *trades, size_t n)
{
    int bad = 0;
    int64_t fees = 0;
    for (size_t i = 0; i < n; i++)
        fees += trades[i].fee;
    for (size_t u = 0; u < book->count; u++) {
        const ledgertest_account_t *a = &book->users[u];
        int64_t energy = a->energy0, payment = a->payment0;
        for (size_t i = 0; i < n; i++) {
            const ledgertest_trade_t *t = &trades[i];
            if (strcmp (t->seller, a->name) == 0) {
                energy -= t->qty;
                payment += t->value - t->fee;
            }
            if (strcmp (t->buyer, a->name) == 0) {
                energy += t->qty;
                payment -= t->value;
            }
        }
        int64_t e = ledgertest_balance (l, a->energy), p = ledgertest_balance (l, a->payment);
        if (e != energy || p != payment) {
            fprintf (stderr,
                     "ledgertest: %s: energy %lld Wh (expected %lld), payment %lld µ (expected "
                     "%lld)\n",
                     a->name, (long long) e, (long long) energy, (long long) p,
                     (long long) payment);
            bad++;
        }
    }
    int64_t t = ledgertest_balance (l, book->treasury);
    if (t != book->treasury0 + fees) {
        fprintf (stderr, "ledgertest: treasury %lld µ (expected %lld)\n", (long long) t,
                 (long long) (book->treasury0 + fees));
        bad++;
    }
    return bad;
}
