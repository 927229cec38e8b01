/*  fuzz_ws_request — what a WebSocket client sends the broadcaster (channels_request), from
    arbitrary bytes to the answers queued for it.

    Besides not crashing or leaking: every answer must be one JSON object whose type is
    snapshot, subscribed, unsubscribed or error, an error must carry a code and a message,
    and a session must hold no more subscriptions than allowed. A violation aborts so
    libFuzzer keeps the input.
*/
#include "channels.h"
#include "config.h"
#include "readmodel.h"
#include "ws.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static mce_config_t s_cfg;
static readmodel_t *s_model;
static channels_t *s_channels;

static void s_publish (void *arg, const char *topic, const ws_msg_t *msg)
{
    (void) arg, (void) topic, (void) msg;
}

static void s_setup (void)
{
    char err[CONFIG_ERR_MAX];
    if (config_load_text (&s_cfg,
                          "markets = ( { id = \"campus-1\"; }, { id = \"campus-2\"; } );\n"
                          "gateway = { jwt_secret = \"fuzz-secret-0123456789abcdefghijklmn\"; };\n"
                          "broadcaster = { max_subscriptions = 4; };\n",
                          err, sizeof err))
        abort ();
    s_model = readmodel_new (&s_cfg);
    s_channels = channels_new (&s_cfg, s_model, s_publish, NULL);
    if (!s_model || !s_channels)
        abort ();
}

static void s_check (const ws_msg_t *msg)
{
    json_t *m = json_loadb (ws_msg_text (msg), msg->len, 0, NULL);
    if (!json_is_object (m))
        abort ();
    const char *type = json_string_value (json_object_get (m, "type"));
    if (!type)
        abort ();
    if (strcmp (type, "error") == 0) {
        const char *code = json_string_value (json_object_get (m, "code"));
        const char *message = json_string_value (json_object_get (m, "message"));
        if (!code || !*code || !message || !*message)
            abort ();
    }
    else if (strcmp (type, "snapshot") != 0 && strcmp (type, "subscribed") != 0 &&
             strcmp (type, "unsubscribed") != 0)
        abort ();
    json_decref (m);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_channels)
        s_setup ();
    ws_session_t session;
    ws_session_init (&session, NULL, 1 << 20, 0);
    //  The input may hold several requests, one per line, as a client would send frames.
    const char *text = (const char *) data;
    size_t at = 0;
    while (at < size) {
        const char *nl = memchr (text + at, '\n', size - at);
        size_t len = nl ? (size_t) (nl - (text + at)) : size - at;
        channels_request (s_channels, &session, text + at, len, 1);
        at += len + 1;
    }
    if (session.sub_count > (int) s_cfg.broadcaster.max_subscriptions)
        abort ();
    ws_msg_t *msg;
    while ((msg = ws_session_peek (&session))) {
        s_check (msg);
        ws_session_pop (&session);
    }
    channels_drop_session (s_channels, &session);
    ws_session_clear (&session);
    return 0;
}
