/*  mce-gateway — the HTTP/JSON API and the native order port in front of the matcher.  */
#include "cli.h"
#include "gateway_server.h"
#include "log.h"

#include <czmq.h>

int main (int argc, char **argv)
{
    static const cli_info_t info = {
        "mce-gateway",
        "The gateway: the HTTP/JSON API (orders, market data, auth) in front of the matcher.",
        "Listens: gateway.http_address:gateway.http_port. Connects: matcher.commands.\n"
        "Try: curl -s localhost:8080/api/health"};
    mce_config_t cfg;
    int status;
    if (cli_start (argc, argv, &info, &cfg, &status))
        return status;
    gateway_server_t *server = gateway_server_new (&cfg);
    if (!server) {
        log_error ("gateway", "cannot start (the reason is logged above)");
        return 1;
    }
    int rc = gateway_server_run (server);
    gateway_server_destroy (&server);
    //  every process says when it stops, so a log shows a stop from a crash
    if (rc)
        log_error ("gateway", "stopped after an error (the reason is logged above)");
    else
        log_info ("gateway", "stopped");
    return rc ? 1 : 0;
}
