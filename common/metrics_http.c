/*  metrics_http — see metrics_http.h.  */
#include "metrics_http.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct _metrics_http_t {
    struct MHD_Daemon *daemon;
    metrics_render_fn *render;
    void *arg;
};

static enum MHD_Result s_access (void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    metrics_http_t *self = cls;
    if (strcmp (method, "GET") != 0 || strcmp (url, "/metrics") != 0) {
        static char not_found[] = "only GET /metrics here\n";
        struct MHD_Response *r =
            MHD_create_response_from_buffer (strlen (not_found), not_found, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_NOT_FOUND, r);
        MHD_destroy_response (r);
        return rc;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f)
        return MHD_NO;
    self->render (self->arg, f);
    fclose (f);
    struct MHD_Response *r = MHD_create_response_from_buffer (size, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_OK, r);
    MHD_destroy_response (r);
    return rc;
}

metrics_http_t *metrics_http_new (const char *module, const char *address, int port,
                                  metrics_render_fn *render, void *arg)
{
    if (port <= 0)
        return NULL;
    metrics_http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->render = render;
    self->arg = arg;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    if (inet_pton (AF_INET, address, &addr.sin_addr) != 1) {
        log_error (module, "metrics: \"%s\" is not an IPv4 address", address);
        free (self);
        return NULL;
    }
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                                     NULL, s_access, self, MHD_OPTION_SOCK_ADDR, &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64, MHD_OPTION_END);
    if (!self->daemon) {
        log_error (module, "metrics: cannot listen on %s:%d", address, port);
        free (self);
        return NULL;
    }
    log_info (module, "metrics on http://%s:%d/metrics", address, port);
    return self;
}

void metrics_http_destroy (metrics_http_t **self_p)
{
    metrics_http_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}
