/*  wsclient — a small blocking WebSocket client (RFC 6455) for the broadcaster's tests.

    Written by hand rather than on libwebsockets' client: a test wants to send a frame, read
    the next one with a deadline, or stop reading on purpose (a slow client), one line each,
    where libwebsockets' client is an event loop of callbacks. Text frames, masked as a
    client must; pings are answered; fragments are not expected from our server and refused.
*/
#ifndef MCE_WSCLIENT_H
#define MCE_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _wsclient_t wsclient_t;

//  Connects to ws://127.0.0.1:port/ and completes the handshake (with an Origin header when
//  origin is not NULL). rcvbuf > 0 sets SO_RCVBUF before connecting (a slow client). NULL
//  when the server refuses or does not answer within timeout_ms.
wsclient_t *wsclient_connect (int port, const char *origin, int rcvbuf, int timeout_ms);
void wsclient_destroy (wsclient_t **self_p);
//  The client's own port (the server logs its clients as 127.0.0.1:<port>).
int wsclient_local_port (wsclient_t *self);
//  Sends one text frame. 0, or -1.
int wsclient_send (wsclient_t *self, const char *text);

//  The next text message (NUL-terminated, valid until the next call) within timeout_ms.
//  NULL on timeout, close or error; wsclient_closed then tells which.
const char *wsclient_recv (wsclient_t *self, int timeout_ms);
//  After a close frame: its status code (1008 ...) and reason; 0 when the connection ended
//  without one; -1 while open.
int wsclient_closed (wsclient_t *self, const char **reason);

#endif
