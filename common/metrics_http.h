/*  metrics_http — a process's Prometheus endpoint: GET /metrics on <metrics_address>:<port>, served
   by a libmicrohttpd thread of its own, so a scrape never touches the process's loop. The owner
   renders the text from atomics it updates (render runs on the server's thread).
*/
#ifndef MCE_METRICS_HTTP_H
#define MCE_METRICS_HTTP_H

#include <stdio.h>

//  Writes the metrics text to f. Runs on the server's thread: read atomics only.
typedef void (metrics_render_fn) (void *arg, FILE *f);

typedef struct _metrics_http_t metrics_http_t;

//  Serves render's text on address:port (an IPv4 address: 127.0.0.1 by default, 0.0.0.0 for a
//  scraper on another host or container); module names the process in logs. NULL when port is
//  0 (metrics off) or it cannot listen (logged).
metrics_http_t *metrics_http_new (const char *module, const char *address, int port,
                                  metrics_render_fn *render, void *arg);
void metrics_http_destroy (metrics_http_t **self_p);

#endif
