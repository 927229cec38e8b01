/*  rpc — see rpc.h. One CURL easy handle, reused so the connection stays open; the request
    body is built by hand (base64 and base58 need no JSON escaping), the answer collected into
    a growing buffer that refuses to pass RPC_BODY_MAX.
*/
#include "rpc.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *data;
    size_t len, cap;
    bool failed; //  out of memory
} s_buf_t;

struct _rpc_t {
    CURL *curl;
    struct curl_slist *headers;
    char url[512];
    int timeout_ms;
    s_buf_t request;
    s_buf_t answer;
    int retry_after_ms;
    rpc_kind_t kinds[RPC_CALLS_MAX];
    rpc_sig_status_t *statuses[RPC_CALLS_MAX];
    size_t counts[RPC_CALLS_MAX];
    size_t calls;
    char errbuf[CURL_ERROR_SIZE];
};

static void s_buf_add (s_buf_t *b, const char *data, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + len + 1 > cap)
            cap *= 2;
        char *p = realloc (b->data, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy (b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void s_buf_str (s_buf_t *b, const char *s)
{
    s_buf_add (b, s, strlen (s));
}

static size_t s_on_body (char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > RPC_BODY_MAX)
        return 0; //  curl fails the transfer (CURLE_WRITE_ERROR)
    s_buf_add (b, ptr, n);
    return b->failed ? 0 : n;
}

static size_t s_on_header (char *ptr, size_t size, size_t nmemb, void *arg)
{
    rpc_t *self = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name && strncasecmp (ptr, name, sizeof name - 1) == 0) {
        long s = strtol (ptr + sizeof name - 1, NULL, 10);
        if (s > 0 && s < 3600)
            self->retry_after_ms = (int) s * 1000;
    }
    return n;
}

rpc_t *rpc_new (const char *url, int timeout_ms)
{
    rpc_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->url, sizeof self->url, "%s", url);
    self->timeout_ms = timeout_ms;
    self->curl = curl_easy_init ();
    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (!self->curl || !self->headers) {
        rpc_destroy (&self);
        return NULL;
    }
    CURL *c = self->curl;
    curl_easy_setopt (c, CURLOPT_URL, self->url);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, &self->answer);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, self);
    curl_easy_setopt (c, CURLOPT_ERRORBUFFER, self->errbuf);
    curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
    return self;
}

void rpc_destroy (rpc_t **self_p)
{
    rpc_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    curl_slist_free_all (self->headers);
    free (self->request.data);
    free (self->answer.data);
    free (self);
    *self_p = NULL;
}

void rpc_begin (rpc_t *self)
{
    self->request.len = 0;
    self->request.failed = false;
    self->calls = 0;
}

size_t rpc_calls (rpc_t *self)
{
    return self->calls;
}

//  Opens call number self->calls: `{"jsonrpc":"2.0","id":N,"method":"M","params":`.
static int s_open (rpc_t *self, rpc_kind_t kind, const char *method)
{
    if (self->calls >= RPC_CALLS_MAX)
        return -1;
    char head[128];
    snprintf (head, sizeof head, "%s{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"%s\",\"params\":",
              self->calls ? "," : "[", self->calls, method);
    s_buf_str (&self->request, head);
    self->kinds[self->calls] = kind;
    self->statuses[self->calls] = NULL;
    self->counts[self->calls] = 0;
    return 0;
}

static int s_close (rpc_t *self)
{
    s_buf_str (&self->request, "}");
    if (self->request.failed)
        return -1;
    self->calls++;
    return 0;
}

int rpc_add_blockhash (rpc_t *self)
{
    if (s_open (self, RPC_BLOCKHASH, "getLatestBlockhash"))
        return -1;
    s_buf_str (&self->request, "[{\"commitment\":\"confirmed\"}]");
    return s_close (self);
}

int rpc_add_height (rpc_t *self)
{
    if (s_open (self, RPC_HEIGHT, "getBlockHeight"))
        return -1;
    s_buf_str (&self->request, "[{\"commitment\":\"finalized\"}]");
    return s_close (self);
}

int rpc_add_send (rpc_t *self, const uint8_t *tx, size_t len)
{
    char b64[sodium_base64_ENCODED_LEN (SOL_TX_MAX, sodium_base64_VARIANT_ORIGINAL)];
    if (len > SOL_TX_MAX || s_open (self, RPC_SEND, "sendTransaction"))
        return -1;
    sodium_bin2base64 (b64, sizeof b64, tx, len, sodium_base64_VARIANT_ORIGINAL);
    s_buf_str (&self->request, "[\"");
    s_buf_str (&self->request, b64);
    s_buf_str (&self->request, "\",{\"encoding\":\"base64\",\"skipPreflight\":false,"
                               "\"preflightCommitment\":\"confirmed\",\"maxRetries\":0}]");
    return s_close (self);
}

int rpc_add_token_balance (rpc_t *self, const char *account)
{
    if (s_open (self, RPC_TOKEN_BALANCE, "getTokenAccountBalance"))
        return -1;
    s_buf_str (&self->request, "[\"");
    s_buf_str (&self->request, account);
    s_buf_str (&self->request, "\",{\"commitment\":\"confirmed\"}]");
    return s_close (self);
}

int rpc_add_statuses (rpc_t *self, const char *const *signatures, size_t n,
                      rpc_sig_status_t *statuses)
{
    if (n == 0 || n > RPC_STATUSES_MAX || s_open (self, RPC_STATUSES, "getSignatureStatuses"))
        return -1;
    s_buf_str (&self->request, "[[");
    for (size_t i = 0; i < n; i++) {
        s_buf_str (&self->request, i ? ",\"" : "\"");
        s_buf_str (&self->request, signatures[i]);
        s_buf_str (&self->request, "\"");
    }
    s_buf_str (&self->request, "],{\"searchTransactionHistory\":true}]");
    self->statuses[self->calls] = statuses;
    self->counts[self->calls] = n;
    return s_close (self);
}

const char *rpc_fail_name (rpc_fail_t kind)
{
    static const char *names[RPC_FAIL_COUNT] = {"none",    "connect", "timeout", "io",
                                                "http429", "http5xx", "http",    "malformed"};
    return kind < RPC_FAIL_COUNT ? names[kind] : "?";
}

static int s_fail (rpc_failure_t *f, rpc_fail_t kind, bool maybe, long http, const char *text)
{
    f->kind = kind;
    f->maybe_processed = maybe;
    f->http_status = http;
    snprintf (f->text, sizeof f->text, "%s", text);
    return -1;
}

int rpc_run (rpc_t *self, rpc_answer_t *answers, rpc_failure_t *failure)
{
    memset (failure, 0, sizeof *failure);
    if (self->calls == 0)
        return 0;
    s_buf_str (&self->request, "]");
    if (self->request.failed)
        return s_fail (failure, RPC_FAIL_IO, false, 0, "out of memory");
    self->answer.len = 0;
    self->answer.failed = false;
    self->retry_after_ms = 0;
    self->errbuf[0] = '\0';
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, self->request.data);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) self->request.len);
    CURLcode rc = curl_easy_perform (self->curl);
    long http = 0;
    curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &http);
    char text[256];
    if (rc != CURLE_OK) {
        snprintf (text, sizeof text, "%s",
                  self->errbuf[0] ? self->errbuf : curl_easy_strerror (rc));
        switch (rc) {
            case CURLE_COULDNT_CONNECT:
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_RESOLVE_PROXY:
                return s_fail (failure, RPC_FAIL_CONNECT, false, 0, text);
            case CURLE_OPERATION_TIMEDOUT:
                return s_fail (failure, RPC_FAIL_TIMEOUT, true, http, text);
            default:
                return s_fail (failure, RPC_FAIL_IO, true, http, text);
        }
    }
    failure->retry_after_ms = self->retry_after_ms;
    if (http == 429) {
        snprintf (text, sizeof text, "HTTP 429 (Retry-After %d ms)", self->retry_after_ms);
        s_fail (failure, RPC_FAIL_HTTP429, false, http, text);
        failure->retry_after_ms = self->retry_after_ms;
        return -1;
    }
    if (http >= 500) {
        snprintf (text, sizeof text, "HTTP %ld", http);
        s_fail (failure, RPC_FAIL_HTTP5XX, true, http, text);
        failure->retry_after_ms = self->retry_after_ms;
        return -1;
    }
    if (http != 200) {
        snprintf (text, sizeof text, "HTTP %ld", http);
        return s_fail (failure, RPC_FAIL_HTTP, false, http, text);
    }
    for (size_t i = 0; i < self->calls; i++) {
        answers[i].kind = self->kinds[i];
        answers[i].statuses = self->statuses[i];
        answers[i].count = self->counts[i];
    }
    char err[200];
    if (rpc_decode (self->answer.data ? self->answer.data : "", self->answer.len, answers,
                    self->calls, err, sizeof err)) {
        snprintf (text, sizeof text, "malformed answer: %s", err);
        return s_fail (failure, RPC_FAIL_MALFORMED, true, http, text);
    }
    return 0;
}
