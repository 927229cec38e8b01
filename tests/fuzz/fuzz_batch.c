/*  fuzz_batch — libFuzzer target for batch frames (proto.h), what the matcher's command port
    and the gateway's link to it split: never reads past the frame, never loops without
    moving on, takes at most PROTO_BATCH_MAX messages, and decodes each message it yields (the
    decoder has targets of its own).
*/
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t offset = 0, count = 0, len, taken = 0;
    const uint8_t *one;
    int rc;
    while ((rc = proto_batch_next (data, size, &offset, &count, &one, &len)) == 1) {
        if (one < data || len == 0 || one + len > data + size || offset > size)
            abort ();
        if (++taken > PROTO_BATCH_MAX)
            abort ();
        proto_msg_t msg;
        proto_decode (one, len, &msg, NULL, 0);
    }
    if (rc == 0 && offset != size)
        abort ();
    return 0;
}
