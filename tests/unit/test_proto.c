/*  test_proto — the message codec: every message round-trips, and the decoder refuses every
    kind of bad input with a reason instead of crashing.

    Hostile inputs are written byte by byte with the small msgpack writer below, which also
    shows exactly what is on the wire. msgpack-c's packer appears once, as the reference the
    encoder must match byte for byte: journals written by an older build are re-encoded and
    compared on recovery.
*/
#include "proto.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

//  ---------------------------------------------------------------------------------------
//  A tiny msgpack writer for hand-made inputs

#define S_BYTES_MAX 4096

typedef struct {
    uint8_t data[S_BYTES_MAX];
    size_t len;
} bytes_t;

static void s_raw (bytes_t *out, const void *data, size_t len)
{
    cr_assert (out->len + len <= S_BYTES_MAX);
    memcpy (out->data + out->len, data, len);
    out->len += len;
}

static void s_byte (bytes_t *out, uint8_t byte)
{
    s_raw (out, &byte, 1);
}

static void s_be (bytes_t *out, uint64_t value, int len)
{
    for (int shift = (len - 1) * 8; shift >= 0; shift -= 8)
        s_byte (out, (uint8_t) (value >> shift));
}

static void s_map (bytes_t *out, size_t entries)
{
    if (entries < 16)
        s_byte (out, (uint8_t) (0x80 | entries));
    else
        s_byte (out, 0xde), s_be (out, entries, 2);
}

static void s_strn (bytes_t *out, const char *text, size_t len)
{
    if (len < 32)
        s_byte (out, (uint8_t) (0xa0 | len));
    else
        s_byte (out, 0xd9), s_byte (out, (uint8_t) len);
    s_raw (out, text, len);
}

static void s_str (bytes_t *out, const char *text)
{
    s_strn (out, text, strlen (text));
}

static void s_uint (bytes_t *out, uint64_t value)
{
    if (value < 128)
        s_byte (out, (uint8_t) value);
    else
        s_byte (out, 0xcf), s_be (out, value, 8);
}

static void s_int (bytes_t *out, int64_t value)
{
    if (value >= 0)
        s_uint (out, (uint64_t) value);
    else
        s_byte (out, 0xd3), s_be (out, (uint64_t) value, 8);
}

//  A valid new_order map, leaving out the key `without` (if not NULL) and announcing `extra`
//  more entries that the caller appends. The basis of most rejection tests.
static void s_new_order (bytes_t *out, const char *without, size_t extra)
{
    struct {
        const char *key;
        const char *text;
        int64_t number;
    } entries[] = {
        {"t", "new_order", 0}, {"rid", NULL, 7},
        {"uid", "alice", 0},   {"mkt", "campus-1", 0},
        {"side", "buy", 0},    {"type", "limit", 0},
        {"tif", "gtc", 0},     {"qty", NULL, 100500},
        {"px", NULL, 150000},  {"ts", NULL, INT64_C (1763760000000000000)},
    };
    size_t count = sizeof entries / sizeof entries[0];
    s_map (out, count - (without ? 1 : 0) + extra);
    for (size_t index = 0; index < count; index++) {
        if (without && strcmp (entries[index].key, without) == 0)
            continue;
        s_str (out, entries[index].key);
        if (entries[index].text)
            s_str (out, entries[index].text);
        else
            s_int (out, entries[index].number);
    }
}

//  Decoding must fail, and the reason must mention `reason`.
static void s_expect_reject (const bytes_t *in, const char *reason)
{
    proto_msg_t msg;
    char err[256] = "";
    int rc = proto_decode (in->data, in->len, &msg, err, sizeof err);
    cr_assert_eq (rc, -1, "accepted, expected a rejection mentioning '%s'", reason);
    cr_assert (strstr (err, reason), "error '%s' does not mention '%s'", err, reason);
    cr_assert_eq (msg.kind, PROTO_NONE, "a failed decode leaves an empty message");
}

//  ---------------------------------------------------------------------------------------
//  Round trips

//  Address of a field in whichever message msg holds: all union members start together.
static void *s_field (proto_msg_t *msg, const proto_field_info_t *field)
{
    return (uint8_t *) &msg->new_order + field->offset;
}

//  Puts a value in every field that is as far from the default as the type allows: big
//  unsigned numbers, negative signed ones, strings of the longest length with a multi-byte
//  character, the last value of each enum.
static void s_fill (proto_msg_t *msg, proto_kind_t kind)
{
    memset (msg, 0, sizeof *msg);
    msg->kind = kind;
    const proto_message_info_t *info = proto_message_info (kind);
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        void *at = s_field (msg, field);
        switch (field->type) {
            case PROTO_TYPE_U64:
                *(uint64_t *) at = UINT64_MAX - index;
                break;
            case PROTO_TYPE_I64:
                *(int64_t *) at = INT64_MIN + (int64_t) index;
                break;
            case PROTO_TYPE_U32:
                *(uint32_t *) at = UINT32_MAX - (uint32_t) index;
                break;
            case PROTO_TYPE_BOOL:
                *(bool *) at = true;
                break;
            case PROTO_TYPE_STR: {
                char *text = (char *) at;
                memset (text, 'a' + (int) index, field->max_len);
                memcpy (text, "\xc2\xb5", 2); // µ: two bytes of UTF-8
                text[field->max_len] = 0;
                break;
            }
            case PROTO_TYPE_ENUM:
                *(int *) at = (int) field->enum_info->count;
                break;
        }
    }
}

Test (proto, every_message_round_trips_with_every_field_set)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    for (proto_kind_t kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        proto_msg_t msg, back;
        s_fill (&msg, (proto_kind_t) kind);
        proto_buf_reset (&buf);
        cr_assert_eq (proto_encode (&msg, &buf), 0, "encode %s", proto_kind_name (kind));

        char err[256];
        int rc = proto_decode (buf.data, buf.len, &back, err, sizeof err);
        cr_assert_eq (rc, 0, "decode %s: %s", proto_kind_name (kind), err);
        cr_assert_eq (back.kind, kind);
        cr_assert (proto_msg_equal (&msg, &back), "%s changed in a round trip",
                   proto_kind_name (kind));
        rc = proto_decode_kind ((proto_kind_t) kind, buf.data, buf.len, &back, err, sizeof err);
        cr_assert_eq (rc, 0, "decode_kind %s: %s", proto_kind_name (kind), err);
    }
    proto_buf_free (&buf);
}

//  Values at every edge of msgpack's integer forms and string headers.
static const uint64_t s_edges_u[] = {
    0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, UINT64_C (1) << 32, UINT64_MAX};
static const int64_t s_edges_i[] = {0,         -1,     -32,    -33,       -128,
                                    -129,      -32768, -32769, INT32_MIN, (int64_t) INT32_MIN - 1,
                                    INT64_MIN, 127,    128,    65536,     INT64_MAX};
static const size_t s_edges_len[] = {0, 1, 15, 31, 32, 33, 64, 96, 128};

//  The same message the way msgpack-c's packer writes it: "t", then the fields that are on
//  the wire in messages.def order.
static void s_pack_reference (const proto_msg_t *msg, msgpack_sbuffer *out)
{
    const proto_message_info_t *info = proto_message_info (msg->kind);
    const uint8_t *body = (const uint8_t *) &msg->new_order;
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    size_t entries = 1;
    bool present[64];
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        const uint8_t *at = body + field->offset;
        uint64_t zero[2] = {0, 0};
        size_t size = field->type == PROTO_TYPE_U64 || field->type == PROTO_TYPE_I64    ? 8
                      : field->type == PROTO_TYPE_U32 || field->type == PROTO_TYPE_ENUM ? 4
                                                                                        : 1;
        present[index] = field->required || memcmp (at, zero, size) != 0;
        entries += present[index];
    }
    msgpack_pack_map (&packer, entries);
    msgpack_pack_str_with_body (&packer, "t", 1);
    msgpack_pack_str_with_body (&packer, info->name, strlen (info->name));
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        const void *at = body + field->offset;
        if (!present[index])
            continue;
        msgpack_pack_str_with_body (&packer, field->key, field->key_len);
        switch (field->type) {
            case PROTO_TYPE_U64:
                msgpack_pack_uint64 (&packer, *(const uint64_t *) at);
                break;
            case PROTO_TYPE_U32:
                msgpack_pack_uint64 (&packer, *(const uint32_t *) at);
                break;
            case PROTO_TYPE_I64:
                msgpack_pack_int64 (&packer, *(const int64_t *) at);
                break;
            case PROTO_TYPE_BOOL:
                if (*(const bool *) at)
                    msgpack_pack_true (&packer);
                else
                    msgpack_pack_false (&packer);
                break;
            case PROTO_TYPE_STR:
                msgpack_pack_str_with_body (&packer, at, strlen (at));
                break;
            case PROTO_TYPE_ENUM: {
                const char *wire = field->enum_info->values[*(const int *) at - 1].wire;
                msgpack_pack_str_with_body (&packer, wire, strlen (wire));
                break;
            }
        }
    }
}

Test (proto, encoder_writes_what_msgpack_c_writes)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    size_t compared = 0;
    for (size_t round = 0; round < 16; round++)
        for (proto_kind_t kind = 1; kind < PROTO_KIND_COUNT; kind++) {
            proto_msg_t msg;
            s_fill (&msg, kind);
            const proto_message_info_t *info = proto_message_info (kind);
            for (size_t index = 0; index < info->field_count; index++) {
                const proto_field_info_t *field = &info->fields[index];
                void *at = s_field (&msg, field);
                size_t pick = round + index;
                switch (field->type) {
                    case PROTO_TYPE_U64:
                        *(uint64_t *) at = s_edges_u[pick % (sizeof s_edges_u / sizeof *s_edges_u)];
                        break;
                    case PROTO_TYPE_U32:
                        *(uint32_t *) at =
                            (uint32_t) s_edges_u[pick % 9]; // the edges up to UINT32_MAX
                        break;
                    case PROTO_TYPE_I64:
                        *(int64_t *) at = s_edges_i[pick % (sizeof s_edges_i / sizeof *s_edges_i)];
                        break;
                    case PROTO_TYPE_BOOL:
                        *(bool *) at = pick % 2;
                        break;
                    case PROTO_TYPE_STR: {
                        size_t len = s_edges_len[pick % (sizeof s_edges_len / sizeof *s_edges_len)];
                        len = len > field->max_len ? field->max_len : len;
                        if (field->required && len == 0)
                            len = 1;
                        memset (at, 'a' + (int) (pick % 26), len);
                        ((char *) at)[len] = 0;
                        break;
                    }
                    case PROTO_TYPE_ENUM:
                        //  an optional enum is sometimes left out
                        *(int *) at = field->required
                                          ? 1 + (int) (pick % field->enum_info->count)
                                          : (int) (pick % (field->enum_info->count + 1));
                        break;
                }
            }
            proto_buf_reset (&buf);
            cr_assert_eq (proto_encode (&msg, &buf), 0, "encode %s", proto_kind_name (kind));
            msgpack_sbuffer reference;
            msgpack_sbuffer_init (&reference);
            s_pack_reference (&msg, &reference);
            cr_assert_eq (buf.len, reference.size, "%s: %zu bytes, msgpack-c %zu (round %zu)",
                          proto_kind_name (kind), buf.len, reference.size, round);
            cr_assert (memcmp (buf.data, reference.data, buf.len) == 0,
                       "%s: bytes differ from msgpack-c's (round %zu)", proto_kind_name (kind),
                       round);
            msgpack_sbuffer_destroy (&reference);
            compared++;
        }
    cr_assert_eq (compared, 16 * (PROTO_KIND_COUNT - 1));
    proto_buf_free (&buf);
}

//  proto_msg_seq and proto_msg_market find the fields of every kind that has them.
Test (proto, seq_and_market_of_every_kind)
{
    for (proto_kind_t kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        proto_msg_t msg;
        s_fill (&msg, kind);
        const proto_message_info_t *info = proto_message_info (kind);
        bool has_seq = false, has_market = false;
        for (size_t index = 0; index < info->field_count; index++) {
            const proto_field_info_t *field = &info->fields[index];
            if (strcmp (field->key, "seq") == 0) {
                has_seq = true;
                *(uint64_t *) s_field (&msg, field) = 4242 + (uint64_t) kind;
            }
            if (strcmp (field->key, "mkt") == 0) {
                has_market = true;
                strcpy ((char *) s_field (&msg, field), "campus-7");
            }
        }
        cr_assert_eq (proto_msg_seq (&msg), has_seq ? 4242 + (uint64_t) kind : 0, "%s",
                      proto_kind_name (kind));
        if (has_market)
            cr_assert_str_eq (proto_msg_market (&msg), "campus-7", "%s", proto_kind_name (kind));
        else
            cr_assert_null (proto_msg_market (&msg), "%s", proto_kind_name (kind));
    }
}

//  With only the required fields set, the optional ones are left off the wire and come back
//  as their defaults.
Test (proto, every_message_round_trips_with_required_fields_only)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    for (proto_kind_t kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        proto_msg_t msg, back;
        s_fill (&msg, (proto_kind_t) kind);
        const proto_message_info_t *info = proto_message_info (kind);
        size_t required = 0;
        for (size_t index = 0; index < info->field_count; index++) {
            const proto_field_info_t *field = &info->fields[index];
            if (field->required)
                required++;
            else if (field->type == PROTO_TYPE_STR)
                *(char *) s_field (&msg, field) = 0;
            else if (field->type == PROTO_TYPE_BOOL)
                *(bool *) s_field (&msg, field) = false;
            else if (field->type == PROTO_TYPE_U32 || field->type == PROTO_TYPE_ENUM)
                memset (s_field (&msg, field), 0, 4);
            else
                memset (s_field (&msg, field), 0, 8);
        }
        proto_buf_reset (&buf);
        cr_assert_eq (proto_encode (&msg, &buf), 0);
        //  the map header counts "t" and the required fields only
        size_t entries = required + 1;
        cr_assert_eq (buf.data[0], entries < 16 ? 0x80 | entries : 0xde, "%s",
                      proto_kind_name (kind));
        char err[256];
        cr_assert_eq (proto_decode (buf.data, buf.len, &back, err, sizeof err), 0, "%s", err);
        cr_assert (proto_msg_equal (&msg, &back));
    }
    proto_buf_free (&buf);
}

//  How a gateway builds an order: every field by name, then one encode.
Test (proto, new_order_example)
{
    proto_msg_t msg = {.kind = PROTO_new_order};
    proto_new_order_t *order = &msg.new_order;
    order->rid = 42;
    strcpy (order->user, "alice");
    strcpy (order->market, "campus-1");
    order->side = PROTO_SIDE_SELL;
    order->type = PROTO_ORDER_TYPE_LIMIT;
    order->tif = PROTO_TIF_GTC;
    order->qty = 100500;   // 100.5 kWh
    order->price = 150000; // 0.15 per kWh
    strcpy (order->client_order_id, "roof-7");
    strcpy (order->source, "solar");
    order->ts = INT64_C (1763760000123456789);

    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&msg, &buf), 0);
    //  one map whose first key is "t"
    cr_assert_eq (buf.data[0] & 0xf0, 0x80);
    cr_assert_eq (memcmp (buf.data + 1, "\xa1t\xa9new_order", 12), 0);

    proto_msg_t back;
    char err[256];
    cr_assert_eq (proto_decode_kind (PROTO_new_order, buf.data, buf.len, &back, err, sizeof err), 0,
                  "%s", err);
    cr_assert_eq (back.new_order.rid, 42);
    cr_assert_str_eq (back.new_order.user, "alice");
    cr_assert_eq (back.new_order.side, PROTO_SIDE_SELL);
    cr_assert_eq (back.new_order.qty, 100500);
    cr_assert_eq (back.new_order.price, 150000);
    cr_assert_str_eq (back.new_order.source, "solar");
    cr_assert_eq (back.new_order.role, PROTO_ROLE_NONE, "absent enum decodes as 0");
    cr_assert_eq (back.new_order.epoch, 0, "absent number decodes as 0 (the current epoch)");
    cr_assert_not (back.new_order.post_only);
    cr_assert_str_eq (proto_msg_market (&back), "campus-1");
    cr_assert_eq (proto_msg_seq (&back), 0, "commands have no seq");

    //  a command of another kind is refused by a decoder that expects a new_order
    cr_assert_eq (proto_decode_kind (PROTO_cancel_order, buf.data, buf.len, &back, err, sizeof err),
                  -1);
    cr_assert (strstr (err, "expected 'cancel_order', got 'new_order'"), "%s", err);
    proto_buf_free (&buf);
}

Test (proto, trade_example)
{
    proto_msg_t msg = {.kind = PROTO_trade};
    proto_trade_t *trade = &msg.trade;
    trade->seq = 1001;
    trade->ts = INT64_C (1763760000500000000);
    strcpy (trade->market, "campus-1");
    trade->epoch = 1959733; // 2025-11-21T21:15Z in 900 s epochs
    trade->trade_id = 17;
    trade->buy_order_id = 3;
    trade->sell_order_id = 5;
    strcpy (trade->buyer, "bob");
    strcpy (trade->seller, "alice");
    trade->qty = 50000;                              // 50 kWh
    trade->price = 180000;                           // 0.18 per kWh
    trade->value = trade->qty * trade->price / 1000; // 9.000000
    trade->aggressor = PROTO_SIDE_BUY;

    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&msg, &buf), 0);
    proto_msg_t back;
    char err[256];
    cr_assert_eq (proto_decode (buf.data, buf.len, &back, err, sizeof err), 0, "%s", err);
    cr_assert_eq (back.kind, PROTO_trade);
    cr_assert (proto_msg_equal (&msg, &back));
    cr_assert_eq (back.trade.value, 9000000);
    cr_assert_eq (proto_msg_seq (&back), 1001);
    cr_assert_str_eq (proto_msg_market (&back), "campus-1");
    cr_assert_str_eq (proto_side_name (back.trade.aggressor), "buy");
    proto_buf_free (&buf);
}

//  The exact bytes of a small message: what any msgpack client in any language sees.
Test (proto, heartbeat_bytes_on_the_wire)
{
    proto_msg_t msg = {.kind = PROTO_heartbeat};
    strcpy (msg.heartbeat.stream, "m");
    msg.heartbeat.seq = 42;
    msg.heartbeat.ts = 1000;
    msg.heartbeat.version = PROTO_VERSION;
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&msg, &buf), 0);

    static const uint8_t expected[] = {
        0x85,                                                             // map of 5
        0xa1, 't', 0xa9, 'h',  'e',  'a',  'r', 't',  'b', 'e', 'a', 't', // "t": "heartbeat"
        0xa6, 's', 't',  'r',  'e',  'a',  'm', 0xa1, 'm',                // "stream": "m"
        0xa3, 's', 'e',  'q',  42,                                        // "seq": 42
        0xa2, 't', 's',  0xcd, 0x03, 0xe8,                                // "ts": 1000
        0xa1, 'v', 1,                                                     // "v": 1
    };
    cr_assert_eq (buf.len, sizeof expected);
    cr_assert_eq (memcmp (buf.data, expected, sizeof expected), 0);

    //  encoding appends: a second message follows the first in the same buffer
    cr_assert_eq (proto_encode (&msg, &buf), 0);
    cr_assert_eq (buf.len, 2 * sizeof expected);
    proto_buf_free (&buf);
}

//  ---------------------------------------------------------------------------------------
//  What the decoder accepts that it need not

Test (proto, keys_in_any_order_and_unknown_keys_ignored)
{
    bytes_t in = {.len = 0};
    s_map (&in, 7);
    s_str (&in, "from"), s_uint (&in, 10);
    s_str (&in, "future"), s_byte (&in, 0x92), s_str (&in, "x"), s_byte (&in, 0x80); // ["x", {}]
    s_str (&in, "max"), s_uint (&in, 500);
    s_str (&in, "t"), s_str (&in, "replay_req");
    s_str (&in, "a float"), s_byte (&in, 0xcb), s_be (&in, 0, 8);
    s_str (&in, "blob"), s_byte (&in, 0xc4), s_byte (&in, 2), s_raw (&in, "\0\1", 2);
    s_str (&in, "ext"), s_byte (&in, 0xd4), s_byte (&in, 1), s_byte (&in, 9);

    proto_msg_t msg;
    char err[256];
    cr_assert_eq (proto_decode (in.data, in.len, &msg, err, sizeof err), 0, "%s", err);
    cr_assert_eq (msg.kind, PROTO_replay_req);
    cr_assert_eq (msg.replay_req.from, 10);
    cr_assert_eq (msg.replay_req.max, 500);
}

Test (proto, integers_in_any_format_and_nil_for_optional_fields)
{
    bytes_t in = {.len = 0};
    s_map (&in, 3);
    s_str (&in, "t"), s_str (&in, "replay_req");
    s_str (&in, "from"), s_byte (&in, 0xd0), s_byte (&in, 5); // int 8 carrying 5
    s_str (&in, "max"), s_byte (&in, 0xc0);                   // nil: absent
    proto_msg_t msg;
    char err[256];
    cr_assert_eq (proto_decode (in.data, in.len, &msg, err, sizeof err), 0, "%s", err);
    cr_assert_eq (msg.replay_req.from, 5);
    cr_assert_eq (msg.replay_req.max, 0);
}

//  ---------------------------------------------------------------------------------------
//  Rejections

Test (proto, rejects_what_is_not_a_message)
{
    bytes_t in = {.len = 0};
    s_expect_reject (&in, "empty input");

    s_str (&in, "new_order");
    s_expect_reject (&in, "expected a map, got string");

    in.len = 0;
    s_byte (&in, 0x93), s_uint (&in, 1), s_uint (&in, 2), s_uint (&in, 3);
    s_expect_reject (&in, "expected a map, got array");

    in.len = 0;
    s_byte (&in, 0xc1);
    s_expect_reject (&in, "invalid msgpack");
}

Test (proto, rejects_a_bad_t)
{
    bytes_t in = {.len = 0};
    s_map (&in, 1), s_str (&in, "from"), s_uint (&in, 1);
    s_expect_reject (&in, "missing key 't'");

    in.len = 0;
    s_map (&in, 2), s_str (&in, "t"), s_str (&in, "buy_everything");
    s_str (&in, "from"), s_uint (&in, 1);
    s_expect_reject (&in, "unknown kind 'buy_everything'");

    in.len = 0;
    s_map (&in, 2), s_str (&in, "t"), s_uint (&in, 17);
    s_str (&in, "from"), s_uint (&in, 1);
    s_expect_reject (&in, "key 't': expected string, got integer");

    in.len = 0;
    s_map (&in, 2), s_str (&in, "t"), s_str (&in, "replay_req");
    s_str (&in, "t"), s_str (&in, "replay_req");
    s_expect_reject (&in, "duplicate key 't'");

    in.len = 0;
    s_map (&in, 1), s_uint (&in, 1), s_str (&in, "replay_req");
    s_expect_reject (&in, "expected string, got integer");
}

Test (proto, rejects_wrong_types)
{
    bytes_t in = {.len = 0};
    s_new_order (&in, "qty", 1), s_str (&in, "qty"), s_str (&in, "100");
    s_expect_reject (&in, "new_order: field 'qty' (qty): expected integer, got string");

    in.len = 0;
    s_new_order (&in, "qty", 1), s_str (&in, "qty"), s_byte (&in, 0xcb), s_be (&in, 0, 8);
    s_expect_reject (&in, "field 'qty' (qty): expected integer, got float");

    in.len = 0;
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_uint (&in, 12);
    s_expect_reject (&in, "field 'uid' (user): expected string, got integer");

    in.len = 0;
    s_new_order (&in, NULL, 1), s_str (&in, "post"), s_uint (&in, 1);
    s_expect_reject (&in, "field 'post' (post_only): expected boolean, got integer");

    in.len = 0;
    s_new_order (&in, "qty", 1), s_str (&in, "qty"), s_byte (&in, 0xc0);
    s_expect_reject (&in, "field 'qty' (qty): expected integer, got nil");
}

Test (proto, rejects_missing_required_fields)
{
    const proto_message_info_t *info = proto_message_info (PROTO_new_order);
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        if (!field->required)
            continue;
        bytes_t in = {.len = 0};
        s_new_order (&in, field->key, 0);
        char reason[128];
        snprintf (reason, sizeof reason, "field '%s' (%s): missing, but required", field->key,
                  field->cname);
        s_expect_reject (&in, reason);
    }
}

Test (proto, rejects_out_of_range_numbers)
{
    bytes_t in = {.len = 0};
    s_new_order (&in, "rid", 1), s_str (&in, "rid"), s_int (&in, -1);
    s_expect_reject (&in, "field 'rid' (rid): out of range (negative)");

    in.len = 0;
    s_new_order (&in, "qty", 1), s_str (&in, "qty"), s_uint (&in, UINT64_C (1) << 63);
    s_expect_reject (&in, "field 'qty' (qty): out of range");

    in.len = 0;
    s_map (&in, 3), s_str (&in, "t"), s_str (&in, "replay_req");
    s_str (&in, "from"), s_uint (&in, 1);
    s_str (&in, "max"), s_uint (&in, UINT64_C (1) << 32);
    s_expect_reject (&in, "field 'max' (max): out of range");

    //  the extremes themselves are fine
    in.len = 0;
    s_map (&in, 3), s_str (&in, "t"), s_str (&in, "replay_req");
    s_str (&in, "from"), s_uint (&in, UINT64_MAX);
    s_str (&in, "max"), s_uint (&in, UINT32_MAX);
    proto_msg_t msg;
    cr_assert_eq (proto_decode (in.data, in.len, &msg, NULL, 0), 0);
    cr_assert_eq (msg.replay_req.from, UINT64_MAX);
    cr_assert_eq (msg.replay_req.max, UINT32_MAX);
}

Test (proto, rejects_bad_strings)
{
    char text[PROTO_STR64_MAX + 2];
    memset (text, 'u', sizeof text - 1);
    text[sizeof text - 1] = 0;

    //  PROTO_STR64_MAX bytes fit, one more does not
    bytes_t in = {.len = 0};
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_strn (&in, text, PROTO_STR64_MAX);
    proto_msg_t msg;
    char err[256];
    cr_assert_eq (proto_decode (in.data, in.len, &msg, err, sizeof err), 0, "%s", err);
    cr_assert_eq (strlen (msg.new_order.user), PROTO_STR64_MAX);

    in.len = 0;
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_strn (&in, text, PROTO_STR64_MAX + 1);
    s_expect_reject (&in, "field 'uid' (user): string too long (65 bytes, at most 64)");

    in.len = 0;
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_strn (&in, "al\0ce", 5);
    s_expect_reject (&in, "field 'uid' (user): string contains a NUL byte");

    in.len = 0;
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_str (&in, "al\xffice");
    s_expect_reject (&in, "field 'uid' (user): string is not valid UTF-8");

    in.len = 0;
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_str (&in, "");
    s_expect_reject (&in, "field 'uid' (user): empty, but required");

    in.len = 0;
    s_new_order (&in, "uid", 1), s_str (&in, "uid"), s_byte (&in, 0xc4), s_byte (&in, 1);
    s_byte (&in, 'a');
    s_expect_reject (&in, "field 'uid' (user): expected string, got binary");
}

Test (proto, rejects_unknown_enum_strings)
{
    bytes_t in = {.len = 0};
    s_new_order (&in, "side", 1), s_str (&in, "side"), s_str (&in, "BUY");
    s_expect_reject (&in, "field 'side' (side): unknown side 'BUY'");

    in.len = 0;
    s_new_order (&in, "tif", 1), s_str (&in, "tif"), s_str (&in, "day\n2025 forged log line");
    s_expect_reject (&in, "unknown tif 'day?2025 forged log line'");
}

Test (proto, rejects_duplicate_keys)
{
    bytes_t in = {.len = 0};
    s_new_order (&in, NULL, 1), s_str (&in, "qty"), s_uint (&in, 5);
    s_expect_reject (&in, "new_order: duplicate key 'qty'");

    //  unknown keys too: a reader that keeps the last value would see another message
    in.len = 0;
    s_new_order (&in, NULL, 2);
    s_str (&in, "zz"), s_uint (&in, 1), s_str (&in, "zz"), s_uint (&in, 2);
    s_expect_reject (&in, "new_order: duplicate key 'zz'");
}

Test (proto, rejects_trailing_bytes)
{
    bytes_t in = {.len = 0};
    s_new_order (&in, NULL, 0);
    s_byte (&in, 0xc0);
    s_expect_reject (&in, "1 trailing bytes after the map");
}

Test (proto, rejects_malformed_values_of_unknown_keys)
{
    bytes_t in = {.len = 0};
    s_new_order (&in, NULL, 1), s_str (&in, "zz"), s_byte (&in, 0xc1);
    s_expect_reject (&in, "value of key 'zz': invalid msgpack");

    //  nesting: 17 arrays, each holding the next
    in.len = 0;
    s_new_order (&in, NULL, 1), s_str (&in, "zz");
    for (int depth = 0; depth <= PROTO_MAX_DEPTH; depth++)
        s_byte (&in, 0x91);
    s_byte (&in, 0xc0);
    s_expect_reject (&in, "nested too deeply");
}

//  Lengths that claim more than is there are refused before anything is reserved for them.
Test (proto, rejects_huge_claims_cheaply)
{
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    bytes_t in = {.len = 0};
    s_raw (&in, huge_map, sizeof huge_map);
    s_expect_reject (&in, "keys, at most 64 allowed");

    in.len = 0;
    s_new_order (&in, NULL, 1), s_str (&in, "zz");
    s_byte (&in, 0xdd), s_be (&in, 0xffffffff, 4); // array of 4 billion, then nothing
    s_expect_reject (&in, "value of key 'zz': truncated");

    in.len = 0;
    s_new_order (&in, NULL, 1), s_str (&in, "zz");
    s_byte (&in, 0xdb), s_be (&in, 0xffffffff, 4); // str of 4 GB, then nothing
    s_expect_reject (&in, "truncated");

    uint8_t big[PROTO_MAX_SIZE + 1] = {0x80};
    proto_msg_t msg;
    char err[128];
    cr_assert_eq (proto_decode (big, sizeof big, &msg, err, sizeof err), -1);
    cr_assert (strstr (err, "at most 65536 allowed"), "%s", err);
}

//  Every strict prefix of a valid message is refused, whichever byte it stops at.
Test (proto, rejects_every_truncation)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    for (proto_kind_t kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        proto_msg_t msg;
        s_fill (&msg, (proto_kind_t) kind);
        proto_buf_reset (&buf);
        cr_assert_eq (proto_encode (&msg, &buf), 0);
        for (size_t len = 0; len < buf.len; len++) {
            //  a copy of exactly len bytes, so that AddressSanitizer sees any read past it
            uint8_t *prefix = malloc (len ? len : 1);
            memcpy (prefix, buf.data, len);
            char err[256];
            cr_assert_eq (proto_decode (prefix, len, &msg, err, sizeof err), -1,
                          "%s accepted at %zu of %zu bytes", proto_kind_name (kind), len, buf.len);
            free (prefix);
        }
    }
    proto_buf_free (&buf);
}

//  ---------------------------------------------------------------------------------------
//  Encoder: breaking the model's rules is a programmer error, reported as -1

Test (proto, encoder_refuses_what_could_not_be_decoded)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    proto_msg_t msg;

    s_fill (&msg, PROTO_new_order);
    memset (msg.new_order.market, 'm', sizeof msg.new_order.market); // not NUL-terminated
    cr_assert_eq (proto_encode (&msg, &buf), -1);

    s_fill (&msg, PROTO_new_order);
    msg.new_order.side = (proto_side_t) 3;
    cr_assert_eq (proto_encode (&msg, &buf), -1);

    s_fill (&msg, PROTO_new_order);
    msg.new_order.side = PROTO_SIDE_NONE; // required
    cr_assert_eq (proto_encode (&msg, &buf), -1);

    s_fill (&msg, PROTO_new_order);
    msg.new_order.user[0] = 0; // required
    cr_assert_eq (proto_encode (&msg, &buf), -1);

    s_fill (&msg, PROTO_new_order);
    strcpy (msg.new_order.source, "\xc3"); // half a character
    cr_assert_eq (proto_encode (&msg, &buf), -1);

    msg.kind = PROTO_KIND_COUNT;
    cr_assert_eq (proto_encode (&msg, &buf), -1);
    cr_assert_eq (buf.len, 0, "a refused message leaves nothing behind");
    proto_buf_free (&buf);
}

//  ---------------------------------------------------------------------------------------
//  Names and the model's tables

Test (proto, names)
{
    cr_assert_str_eq (proto_kind_name (PROTO_new_order), "new_order");
    cr_assert_str_eq (proto_kind_name (PROTO_settlement), "settlement");
    cr_assert_null (proto_kind_name (PROTO_NONE));
    cr_assert_null (proto_kind_name (PROTO_KIND_COUNT));
    cr_assert_eq (proto_kind_from_name ("trade"), PROTO_trade);
    cr_assert_eq (proto_kind_from_name ("trades"), PROTO_NONE);
    cr_assert_eq (proto_kind_from_name (NULL), PROTO_NONE);

    cr_assert_str_eq (proto_side_name (PROTO_SIDE_BUY), "buy");
    cr_assert_str_eq (proto_reject_reason_name (PROTO_REJECT_REASON_OFF_TICK), "off_tick");
    cr_assert_str_eq (proto_epoch_phase_name (PROTO_EPOCH_PHASE_CLEARED), "cleared");
    cr_assert_null (proto_side_name (PROTO_SIDE_NONE));
    cr_assert_eq (proto_tif_from_name ("fok"), PROTO_TIF_FOK);
    cr_assert_eq (proto_tif_from_name ("FOK"), PROTO_TIF_NONE);
}

Test (proto, tables_are_consistent)
{
    for (proto_kind_t kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        const proto_message_info_t *info = proto_message_info (kind);
        cr_assert_not_null (info);
        cr_assert_eq (info->kind, kind);
        cr_assert_str_eq (info->name, proto_kind_name (kind));
        for (size_t index = 0; index < info->field_count; index++) {
            const proto_field_info_t *field = &info->fields[index];
            cr_assert_str_neq (field->key, "t", "%s: 't' is reserved", info->name);
            cr_assert (strlen (field->key) > 0);
            for (size_t other = 0; other < index; other++) {
                cr_assert_str_neq (field->key, info->fields[other].key, "%s.%s", info->name,
                                   field->cname);
                cr_assert_str_neq (field->cname, info->fields[other].cname);
            }
        }
    }
    cr_assert_null (proto_message_info (PROTO_KIND_COUNT));
    size_t enums = 0;
    while (proto_enum_info (enums))
        enums++;
    cr_assert_eq (enums, 20); // asset, side ... transfer_state, settler_status, replay_status
}

//  Batch frames: what goes in comes out in order; a frame cut short, a zero length, more than
//  PROTO_BATCH_MAX messages or no mark is malformed; a message never starts with the mark.
Test (proto, batch_frames)
{
    proto_buf_t frame;
    proto_buf_init (&frame);
    cr_assert_eq (proto_batch_start (&frame), 0);
    proto_msg_t msgs[3];
    for (int i = 0; i < 3; i++) {
        msgs[i] = (proto_msg_t){.kind = PROTO_cancel_order};
        msgs[i].cancel_order = (proto_cancel_order_t){
            .rid = (uint64_t) i + 1, .order_id = 7, .role = PROTO_ROLE_USER, .ts = 1};
        snprintf (msgs[i].cancel_order.user, sizeof msgs[i].cancel_order.user, "alice");
        snprintf (msgs[i].cancel_order.market, sizeof msgs[i].cancel_order.market, "campus-1");
        cr_assert_eq (proto_batch_encode (&frame, &msgs[i]), 0);
    }
    cr_assert (proto_batch_is (frame.data, frame.len));
    size_t offset = 0, count = 0, len;
    const uint8_t *one;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq (proto_batch_next (frame.data, frame.len, &offset, &count, &one, &len), 1);
        proto_msg_t back;
        cr_assert_eq (proto_decode (one, len, &back, NULL, 0), 0);
        cr_assert (proto_msg_equal (&back, &msgs[i]), "message %d", i);
    }
    cr_assert_eq (proto_batch_next (frame.data, frame.len, &offset, &count, &one, &len), 0);

    //  cut anywhere inside: malformed once the cut message is reached, never past the end
    for (size_t cut = 2; cut < frame.len; cut++) {
        offset = count = 0;
        int rc;
        while ((rc = proto_batch_next (frame.data, cut, &offset, &count, &one, &len)) == 1)
            cr_assert_leq (one + len, frame.data + cut);
        cr_assert (rc == -1 || offset == cut, "cut at %zu", cut);
    }
    //  a zero length, and no mark
    const uint8_t zero[] = {PROTO_BATCH_MARK, 0, 0, 0, 0};
    offset = 0;
    cr_assert_eq (proto_batch_next (zero, sizeof zero, &offset, &count, &one, &len), -1);
    offset = 0;
    cr_assert_eq (proto_batch_next (frame.data + 1, frame.len - 1, &offset, &count, &one, &len),
                  -1);
    //  one message more than allowed
    proto_buf_reset (&frame);
    proto_batch_start (&frame);
    for (int i = 0; i <= PROTO_BATCH_MAX; i++)
        proto_batch_encode (&frame, &msgs[0]);
    offset = 0;
    int rc, taken = 0;
    while ((rc = proto_batch_next (frame.data, frame.len, &offset, &count, &one, &len)) == 1)
        taken++;
    cr_assert_eq (rc, -1);
    cr_assert_eq (taken, PROTO_BATCH_MAX);
    //  no single message starts with the mark
    proto_buf_t single;
    proto_buf_init (&single);
    cr_assert_eq (proto_encode (&msgs[0], &single), 0);
    cr_assert_not (proto_batch_is (single.data, single.len));
    proto_buf_free (&single);
    proto_buf_free (&frame);
}
