/*  fuzz_proto — libFuzzer target for the decoder of one message kind, built once per MESSAGE
    of proto/messages.def with -DFUZZ_KIND=<name> (see CMakeLists.txt), so each decoder gets
    its own corpus and coverage instead of sharing one with eighteen others.

    Besides "never crashes, never leaks", it checks that what the decoder accepts is a fixed
    point of the codec: decode, encode, decode again must give equal messages, and encoding
    that again must give the same bytes. A decoder that accepts something the encoder cannot
    write, or reads a field differently from how it is written, fails here.
*/
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_KIND
#error "build with -DFUZZ_KIND=<message name>, e.g. -DFUZZ_KIND=new_order"
#endif
#define S_KIND_(name_) PROTO_##name_
#define S_KIND(name_)  S_KIND_ (name_)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    proto_msg_t first, second;
    char err[256];
    if (proto_decode_kind (S_KIND (FUZZ_KIND), data, size, &first, err, sizeof err) != 0) {
        //  a refusal always says why
        if (err[0] == 0)
            abort ();
        return 0;
    }
    if (first.kind != S_KIND (FUZZ_KIND))
        abort ();

    proto_buf_t once, twice;
    proto_buf_init (&once);
    proto_buf_init (&twice);
    if (proto_encode (&first, &once) != 0)
        abort (); // accepted but cannot be written back
    if (proto_decode_kind (S_KIND (FUZZ_KIND), once.data, once.len, &second, err, sizeof err) != 0)
        abort (); // the encoder wrote something its own decoder refuses
    if (!proto_msg_equal (&first, &second))
        abort ();
    if (proto_encode (&second, &twice) != 0 || once.len != twice.len ||
        memcmp (once.data, twice.data, once.len) != 0)
        abort ();
    proto_buf_free (&once);
    proto_buf_free (&twice);
    return 0;
}
