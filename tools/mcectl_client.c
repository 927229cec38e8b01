/*  mcectl_client — mcectl's side of the gateway's HTTP API, and what every command shares.

    libcurl appears only here (one module per external library): one easy handle,
    reused, so a command's requests share a connection. The gateway's answers are JSON; a 2xx
    goes back to the command, anything else is reported here, once, the same way for every
    command: the gateway's error code, message and field on stderr, exit status 1; no answer
    at all is exit status 3, so a script can tell "refused" from "not there".

    Tokens: --token (or MCE_TOKEN) is sent as it is; --as NAME signs one locally with
    gateway.jwt_secret exactly as the gateway signs its own, which is why mcectl needs the
    gateway's configuration. Commands that need no token never send one: the gateway refuses
    a bad token even on public routes.
*/
#include "mcectl.h"
#include "auth.h"
#include "clock.h"
#include "decimal.h"
#include "proto.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  A gateway answer larger than this is not one (the largest lists are a few MB).
#define S_BODY_MAX (64u << 20)
//  One cell of a table, at most (longer text is cut); columns of a table, at most.
#define S_CELL_MAX    128
#define S_COLUMNS_MAX 32

struct _mcectl_client_t {
    const mce_config_t *cfg;
    const mcectl_options_t *opts;
    CURL *curl;
    char url[CONFIG_STR_MAX + 32];
    char token[AUTH_JWT_MAX]; //  resolved at the first call that needs it
};

mcectl_client_t *mcectl_client_new (const mce_config_t *cfg, const mcectl_options_t *opts)
{
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf (stderr, "mcectl: libcurl cannot start\n");
        return NULL;
    }
    mcectl_client_t *self = calloc (1, sizeof *self);
    if (!self || !(self->curl = curl_easy_init ())) {
        fprintf (stderr, "mcectl: libcurl cannot start\n");
        free (self);
        curl_global_cleanup ();
        return NULL;
    }
    self->cfg = cfg;
    self->opts = opts;
    if (opts->url)
        snprintf (self->url, sizeof self->url, "%s", opts->url);
    else {
        //  A gateway listening on every address is reached on loopback.
        const char *host = cfg->gateway.http_address;
        if (strcmp (host, "0.0.0.0") == 0 || !host[0])
            host = "127.0.0.1";
        snprintf (self->url, sizeof self->url, "http://%s:%lld", host,
                  (long long) cfg->gateway.http_port);
    }
    size_t len = strlen (self->url);
    while (len && self->url[len - 1] == '/')
        self->url[--len] = '\0';
    return self;
}

void mcectl_client_destroy (mcectl_client_t **self_p)
{
    if (!*self_p)
        return;
    mcectl_client_t *self = *self_p;
    curl_easy_cleanup (self->curl);
    auth_wipe (self->token, sizeof self->token);
    free (self);
    curl_global_cleanup ();
    *self_p = NULL;
}

const mce_config_t *mcectl_client_config (mcectl_client_t *self)
{
    return self->cfg;
}

const mcectl_options_t *mcectl_client_options (mcectl_client_t *self)
{
    return self->opts;
}

const char *mcectl_client_url (mcectl_client_t *self)
{
    return self->url;
}

int mcectl_token_mint (const mce_config_t *cfg, const char *name, bool admin, long ttl_s, char *out,
                       size_t size)
{
    size_t len = strlen (cfg->gateway.jwt_secret);
    if (len < AUTH_JWT_SECRET_MIN) {
        fprintf (stderr,
                 "mcectl: signing a token needs gateway.jwt_secret (%d bytes or more), the "
                 "gateway's own: give -c FILE or MCE_GATEWAY_JWT_SECRET, or a token with --token; "
                 "for a local run, run mcectl from the checkout where tools/run.sh runs (it "
                 "finds the run's key, .run/jwt_secret, by itself)\n",
                 AUTH_JWT_SECRET_MIN);
        return -1;
    }
    int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
    auth_claims_t claims = {
        .role = admin ? PROTO_ROLE_ADMIN : PROTO_ROLE_USER, .iat = now, .exp = now + ttl_s};
    snprintf (claims.sub, sizeof claims.sub, "%s", name);
    if (strlen (name) >= sizeof claims.sub ||
        auth_jwt_mint ((const uint8_t *) cfg->gateway.jwt_secret, len, &claims, out, size)) {
        fprintf (stderr, "mcectl: cannot sign a token for \"%s\" (a valid username?)\n", name);
        return -1;
    }
    return 0;
}

//  The caller's token, or NULL after saying how to give one.
static const char *s_token (mcectl_client_t *self)
{
    const mcectl_options_t *o = self->opts;
    if (self->token[0])
        return self->token;
    if (o->token && o->token[0]) {
        if (strlen (o->token) >= sizeof self->token) {
            fprintf (stderr, "mcectl: the token is longer than %d bytes\n", AUTH_JWT_MAX - 1);
            return NULL;
        }
        snprintf (self->token, sizeof self->token, "%s", o->token);
        return self->token;
    }
    if (o->as) {
        if (mcectl_token_mint (self->cfg, o->as, o->admin, MCECTL_TOKEN_TTL_S, self->token,
                               sizeof self->token))
            return NULL;
        return self->token;
    }
    fprintf (stderr, "mcectl: this command needs a token: --token T (or MCE_TOKEN), or --as NAME "
                     "[--admin] to sign one with gateway.jwt_secret\n");
    return NULL;
}

const char *mcectl_client_token (mcectl_client_t *self)
{
    return s_token (self);
}

typedef struct {
    char *data;
    size_t len;
} s_sink_t;

static size_t s_collect (char *ptr, size_t size, size_t n, void *arg)
{
    s_sink_t *s = arg;
    size_t add = size * n;
    if (s->len + add > S_BODY_MAX)
        return 0; //  curl reports a write error
    char *grown = realloc (s->data, s->len + add + 1);
    if (!grown)
        return 0;
    s->data = grown;
    memcpy (s->data + s->len, ptr, add);
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

//  One exchange. 0 with *status and *body (the caller's, NUL-terminated), or -1 with err.
static int s_perform (mcectl_client_t *self, const char *method, const char *url, const char *token,
                      const char *body, long timeout_ms, long *status, char **out, char *err,
                      size_t err_size)
{
    CURL *c = self->curl;
    curl_easy_reset (c);
    s_sink_t sink = {calloc (1, 1), 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    char auth[AUTH_JWT_MAX + 32];
    struct curl_slist *headers = curl_slist_append (NULL, "Accept: application/json");
    if (body)
        headers = curl_slist_append (headers, "Content-Type: application/json");
    if (token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append (headers, auth);
    }
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS,
                      timeout_ms < MCECTL_CONNECT_TIMEOUT_MS ? timeout_ms
                                                             : (long) MCECTL_CONNECT_TIMEOUT_MS);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt (c, CURLOPT_ERRORBUFFER, errbuf);
    if (body || strcmp (method, "POST") == 0 || strcmp (method, "PATCH") == 0) {
        //  a write without a body still says Content-Length: 0
        curl_easy_setopt (c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE, (long) (body ? strlen (body) : 0));
    }
    CURLcode rc = curl_easy_perform (c);
    curl_slist_free_all (headers);
    auth_wipe (auth, sizeof auth);
    if (rc != CURLE_OK || !sink.data) {
        snprintf (err, err_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror (rc));
        free (sink.data);
        return -1;
    }
    curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, status);
    *out = sink.data;
    return 0;
}

int mcectl_client_get (mcectl_client_t *self, const char *url, long timeout_ms, long *status,
                       char **body, char *err, size_t err_size)
{
    return s_perform (self, "GET", url, NULL, NULL, timeout_ms, status, body, err, err_size);
}

int mcectl_client_post (mcectl_client_t *self, const char *url, const char *body, long timeout_ms,
                        long *status, char **answer, char *err, size_t err_size)
{
    return s_perform (self, "POST", url, NULL, body, timeout_ms, status, answer, err, err_size);
}

//  A refusal, on stderr: the gateway's code, message and field when it sent its error JSON.
static void s_report (const char *method, const char *path, long status, json_t *answer,
                      const char *text)
{
    json_t *error = json_object_get (answer, "error");
    const char *code = json_string_value (json_object_get (error, "code"));
    const char *message = json_string_value (json_object_get (error, "message"));
    const char *field = json_string_value (json_object_get (error, "field"));
    if (code) {
        fprintf (stderr, "mcectl: %ld %s: %s", status, code, message ? message : "");
        if (field)
            fprintf (stderr, " (field %s)", field);
        fprintf (stderr, "\n");
    }
    else {
        //  not the gateway's error shape (a proxy, the HTTP library): show the start of it
        size_t n = strcspn (text, "\r\n");
        fprintf (stderr, "mcectl: %s %s: HTTP %ld %.*s\n", method, path, status,
                 (int) (n > 200 ? 200 : n), text);
    }
}

int mcectl_client_call (mcectl_client_t *self, const char *method, const char *path, json_t *body,
                        bool auth, json_t **reply)
{
    *reply = NULL;
    const char *token = NULL;
    if (auth && !(token = s_token (self)))
        return MCECTL_EXIT_USAGE;
    char url[sizeof self->url + 2048], err[CURL_ERROR_SIZE + 64];
    if ((size_t) snprintf (url, sizeof url, "%s%s", self->url, path) >= sizeof url) {
        fprintf (stderr, "mcectl: the request's URL is too long\n");
        return MCECTL_EXIT_USAGE;
    }
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL, *answer_text = NULL;
    long status = 0;
    int rc = s_perform (self, method, url, token, text, MCECTL_HTTP_TIMEOUT_MS, &status,
                        &answer_text, err, sizeof err);
    free (text);
    if (rc) {
        fprintf (stderr, "mcectl: no answer from the gateway at %s: %s\n", self->url, err);
        return MCECTL_EXIT_UNREACHABLE;
    }
    json_error_t jerr;
    json_t *answer = json_loads (answer_text, JSON_DECODE_ANY, &jerr);
    if (status >= 200 && status < 300) {
        if (!answer) {
            fprintf (stderr, "mcectl: %s %s: the gateway's answer is not JSON (%s)\n", method, path,
                     jerr.text);
            free (answer_text);
            return MCECTL_EXIT_FAILED;
        }
        free (answer_text);
        *reply = answer;
        return MCECTL_EXIT_OK;
    }
    s_report (method, path, status, answer, answer_text);
    if (self->opts->json && answer)
        mcectl_print_json (answer);
    json_decref (answer);
    free (answer_text);
    return MCECTL_EXIT_FAILED;
}

int mcectl_query (char *path, size_t size, const char *command, const char *const *pairs)
{
    for (const char *const *p = pairs; p[0]; p += 2) {
        if (!p[1])
            continue;
        char *escaped = curl_easy_escape (NULL, p[1], 0);
        size_t len = strlen (path);
        int n = escaped ? snprintf (path + len, size - len, "%c%s=%s",
                                    strchr (path, '?') ? '&' : '?', p[0], escaped)
                        : -1;
        curl_free (escaped);
        if (n < 0 || (size_t) n >= size - len) {
            path[len] = '\0';
            fprintf (stderr, "mcectl %s: the query is too long\n", command);
            return -1;
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Command lines

int mcectl_parse (const char *command, int argc, char **argv, const mcectl_option_t *options,
                  const char **words, int max)
{
    int count = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp (arg, "--", 2) != 0 || !arg[2]) {
            if (count >= max) {
                fprintf (stderr, "mcectl %s: unexpected \"%s\" (mcectl %s --help)\n", command, arg,
                         command);
                return -1;
            }
            words[count++] = arg;
            continue;
        }
        //  --name VALUE or --name=VALUE
        const char *eq = strchr (arg, '=');
        size_t len = eq ? (size_t) (eq - arg) : strlen (arg);
        const mcectl_option_t *o = options;
        while (o->name && (strlen (o->name) != len || strncmp (o->name, arg, len) != 0))
            o++;
        if (!o->name) {
            fprintf (stderr, "mcectl %s: unknown option %.*s (mcectl %s --help)\n", command,
                     (int) len, arg, command);
            return -1;
        }
        if (o->flag && !eq)
            *o->flag = true;
        else if (o->flag) {
            fprintf (stderr, "mcectl %s: %s takes no value\n", command, o->name);
            return -1;
        }
        else if (eq)
            *o->value = eq + 1;
        else if (i + 1 < argc)
            *o->value = argv[++i];
        else {
            fprintf (stderr, "mcectl %s: %s needs a value\n", command, o->name);
            return -1;
        }
    }
    return count;
}

bool mcectl_check_decimal (const char *option, const char *text, int scale)
{
    int64_t value;
    decimal_status_t st = decimal_parse (text, strlen (text), scale, &value);
    if (st == DECIMAL_OK)
        return true;
    if (st == DECIMAL_PRECISION)
        fprintf (stderr, "mcectl: %s \"%s\": more than %d decimal places\n", option, text, scale);
    else
        fprintf (stderr, "mcectl: %s \"%s\": %s\n", option, text, decimal_status_text (st));
    return false;
}

bool mcectl_check_digits (const char *option, const char *text)
{
    bool ok = text[0] != '\0' && strlen (text) <= 18; //  fits an int64 whatever the digits
    for (const char *p = text; ok && *p; p++)
        ok = *p >= '0' && *p <= '9';
    if (!ok)
        fprintf (stderr, "mcectl: %s \"%s\": must be a whole number\n", option, text);
    return ok;
}

//  ---------------------------------------------------------------------------------------
//  Output

const char *mcectl_cell (json_t *object, const char *key, char *buf, size_t size)
{
    json_t *v = json_object_get (object, key);
    if (json_is_string (v)) {
        const char *s = json_string_value (v);
        //  RFC 3339 with microseconds, always UTC here: the second is enough in a table
        if (strlen (s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':')
            snprintf (buf, size, "%.10s %.8s", s, s + 11);
        else
            snprintf (buf, size, "%s", s);
    }
    else if (json_is_integer (v))
        snprintf (buf, size, "%lld", (long long) json_integer_value (v));
    else if (json_is_boolean (v))
        snprintf (buf, size, "%s", json_is_true (v) ? "yes" : "no");
    else if (!v || json_is_null (v))
        snprintf (buf, size, "-");
    else {
        char *text = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf (buf, size, "%s", text ? text : "?");
        free (text);
    }
    return buf;
}

void mcectl_table (FILE *out, json_t *rows, const mcectl_column_t *columns)
{
    size_t count = 0, n = json_array_size (rows);
    while (columns[count].header)
        count++;
    if (n == 0) {
        fprintf (out, "(none)\n");
        return;
    }
    assert (count <= S_COLUMNS_MAX);
    size_t width[S_COLUMNS_MAX] = {0};
    char cell[S_CELL_MAX];
    for (size_t c = 0; c < count; c++) {
        width[c] = strlen (columns[c].header);
        for (size_t r = 0; r < n; r++) {
            size_t w =
                strlen (mcectl_cell (json_array_get (rows, r), columns[c].key, cell, sizeof cell));
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t r = 0; r <= n; r++) {
        for (size_t c = 0; c < count; c++) {
            const char *text = r == 0 ? columns[c].header
                                      : mcectl_cell (json_array_get (rows, r - 1), columns[c].key,
                                                     cell, sizeof cell);
            bool last = c + 1 == count;
            if (columns[c].right)
                fprintf (out, "%s%*s", c ? "  " : "", (int) width[c], text);
            else
                fprintf (out, "%s%-*s", c ? "  " : "", last ? 0 : (int) width[c], text);
        }
        fprintf (out, "\n");
    }
}

void mcectl_print_json (json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text)
        printf ("%s\n", text);
    free (text);
}

int mcectl_print_record (mcectl_client_t *client, json_t *record, const char *what, const char *id,
                         const char *id_key, const char *state_key)
{
    if (mcectl_client_options (client)->json)
        mcectl_print_json (record);
    else {
        char state[32];
        printf ("%s %s: %s\n", what, id, mcectl_cell (record, state_key, state, sizeof state));
        const char *const skip[] = {id_key, state_key, NULL};
        mcectl_print_members (stdout, record, skip);
    }
    json_decref (record);
    return MCECTL_EXIT_OK;
}

void mcectl_print_members (FILE *out, json_t *object, const char *const *skip)
{
    const char *key;
    json_t *value;
    size_t width = 0;
    json_object_foreach (object, key, value)
    {
        width = strlen (key) > width ? strlen (key) : width;
    }
    char cell[S_CELL_MAX];
    json_object_foreach (object, key, value)
    {
        bool skipped = false;
        for (int i = 0; skip && skip[i] && !skipped; i++)
            skipped = strcmp (skip[i], key) == 0;
        if (!skipped)
            fprintf (out, "  %-*s  %s\n", (int) width, key,
                     mcectl_cell (object, key, cell, sizeof cell));
    }
}
