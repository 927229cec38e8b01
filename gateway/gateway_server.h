/*  gateway_server — the HTTP/JSON API on libmicrohttpd (DESIGN.md §6).

    One internal polling thread runs every connection. A handler that needs the matcher
    suspends its connection and returns; the matcher link resumes it when the answer comes.
    So the number of orders in flight is bounded by gateway.max_in_flight, not by threads.
*/
#ifndef MCE_GATEWAY_SERVER_H
#define MCE_GATEWAY_SERVER_H

#include "config.h"
#include "matcher_link.h"

#include <jansson.h>
#include <microhttpd.h>

typedef struct _gateway_server_t gateway_server_t;

//  One HTTP request, from its first byte to its response.
typedef struct {
    gateway_server_t *server;
    struct MHD_Connection *connection;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool suspended;   //  waiting for the matcher
    unsigned status;  //  response to send once resumed
    json_t *response; //  its body
} gateway_request_t;

gateway_server_t *gateway_server_new (const mce_config_t *cfg);
void gateway_server_destroy (gateway_server_t **self_p);
//  Runs until interrupted.
int gateway_server_run (gateway_server_t *self);

const mce_config_t *gateway_server_config (gateway_server_t *self);
matcher_link_t *gateway_server_link (gateway_server_t *self);

//  A JSON error body: {"error": {"code": code, "message": message}}. Returns a new reference.
json_t *gateway_error (const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Queues status + JSON body (stolen) on the connection, with the API's headers.
enum MHD_Result gateway_respond (struct MHD_Connection *connection, unsigned status, json_t *body);
//  Suspends the request until the matcher answers; then done fills status/response and resumes.
void gateway_suspend (gateway_request_t *req);
void gateway_resume (gateway_request_t *req, unsigned status, json_t *body);

//  routes_trading.c
enum MHD_Result routes_trading_post_order (gateway_request_t *req);

#endif
