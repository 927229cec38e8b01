/*  respool — libmicrohttpd responses kept and reused, so an answer does not pay for its
    headers again.

    libmicrohttpd 0.9.75 copies every header of every response into the heap (two strdups and
    a calloc each) and frees them when the response goes; with the API's six fixed headers that
    was 18 allocations and 18 frees per answer, and taking them away made the order benchmark
    12 % faster. It has no static headers and cannot change a response's body length once made,
    so the pool keeps, per body length, finished responses whose body is a buffer of its own:
    one is taken, its body overwritten, queued, and given back when libmicrohttpd says the
    request is complete (it has then sent the body or dropped the connection). The pool keeps
    its own reference to each response, so libmicrohttpd never frees one.

    Owned by the gateway's one thread, like the daemon it serves.
*/
#ifndef MCE_RESPOOL_H
#define MCE_RESPOOL_H

#include <stddef.h>

struct MHD_Response;
typedef struct _respool_t respool_t;
typedef struct _respool_entry_t respool_entry_t;

//  Adds the headers every pooled response carries (called once per response made).
typedef void (respool_dress_fn) (struct MHD_Response *response);

//  Bodies of 1 ... max_len bytes; at most max_free idle responses kept in all.
respool_t *respool_new (size_t max_len, size_t max_free, respool_dress_fn *dress);
//  Destroys the idle responses. Every entry must have been given back (stop the daemon first).
void respool_destroy (respool_t **self_p);

//  A response whose body is a copy of text (len bytes), dressed; NULL when len is 0 or over
//  max_len, or memory ran out (the caller then makes a response of its own).
respool_entry_t *respool_take (respool_t *self, const char *text, size_t len);
struct MHD_Response *respool_response (respool_entry_t *entry);
//  Once libmicrohttpd is done with the entry's response (the request completed).
void respool_give (respool_t *self, respool_entry_t *entry);

//  Responses made so far, and entries taken and not yet given back (for tests and metrics).
size_t respool_made (respool_t *self);
size_t respool_in_use (respool_t *self);

#endif
