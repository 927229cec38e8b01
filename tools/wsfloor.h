/*  wsfloor — mce-wsbench --floor: what any one-thread fan-out could do on this machine.

    No broadcaster, no WebSocket, no JSON: N loopback TCP connections, and one thread (or W,
    each with its share of the connections) that does nothing but write. Trades happen at a steady
   rate (their times are t0 + i / rate); as soon as the previous round is done, the thread writes
   one message holding every trade since, bytes_per_trade bytes each, to every connection, a
   blocking send() per connection. The main thread reads every connection on one epoll loop, as
    mce-wsbench's clients do, and records each (client, trade) delivery: its read time minus
    the trade's time. With one writer this is the best a single-threaded broadcaster could do
    with perfect batching and no overhead of its own, so it bounds what mce-wsbench can show;
    with two, what both cores of this machine could do.
*/
#ifndef MCE_WSFLOOR_H
#define MCE_WSFLOOR_H

#include <stdbool.h>

//  Runs it and prints the figures (a table, or one JSON object with json). 0 when it ran.
int wsfloor_run (int clients, int rate, double seconds, int bytes_per_trade, int writers,
                 bool json);

#endif
