/*  proto — the msgpack codec for the messages of messages.def.

    The X-macros expand messages.def into static tables (one proto_field_info_t per field, with
    the member's offset); one table-driven encoder and one table-driven decoder serve every
    message. Code per message would be faster by a few nanoseconds and larger by thousands of
    lines that nobody reads; the tables are also what the docs generator and the tests walk.

    Encoding writes msgpack itself, straight into the caller's proto_buf_t: the handful of forms
    a message uses (map, string, integer, boolean), each exactly as msgpack-c would write it, so
    that a journal written by either re-encodes byte for byte (test_proto compares the two).

    Decoding does NOT use msgpack-c's unpacker: it allocates storage for an array or map from
    the count in its header before reading any element, so the five bytes dd 0f ff ff ff make
    it ask malloc for 8 GB. Input comes from any client on the network, so decoding is a small
    pull reader over the caller's bytes instead: it checks every length against the bytes that
    remain before using it, allocates nothing, recurses at most PROTO_MAX_DEPTH levels (only
    inside values of unknown keys), and does work linear in the input, which is capped at
    PROTO_MAX_SIZE bytes. The top-level map is read once into an array of (key, value) spans
    so that "t" may come anywhere in the map, as any msgpack library may order keys.
*/
#include "proto.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------------------
//  Tables expanded from messages.def

#define ENUM_TYPE(name_, upper_, doc_) static const proto_enum_value_info_t s_values_##name_[] = {
#define VALUE(upper_, value_, wire_, doc_)                                                         \
    {wire_, "PROTO_" #upper_ "_" #value_, doc_, sizeof (wire_) - 1},
#define END_ENUM_TYPE(name_)                                                                       \
    }                                                                                              \
    ;                                                                                              \
    _Static_assert(sizeof (proto_##name_##_t) == sizeof (int), #name_ " is stored as an int");
#include "messages.def"

enum {
#define ENUM_TYPE(name_, upper_, doc_) S_ENUM_##name_,
#include "messages.def"
    S_ENUM_COUNT
};

static const proto_enum_info_t s_enums[S_ENUM_COUNT] = {
#define ENUM_TYPE(name_, upper_, doc_)                                                             \
    {#name_, doc_, s_values_##name_, sizeof (s_values_##name_) / sizeof (s_values_##name_[0])},
#include "messages.def"
};

static const char *const s_kind_names[PROTO_KIND_COUNT] = {
    NULL,
#define MESSAGE(name_, direction_, doc_) #name_,
#include "messages.def"
};

static const size_t s_kind_name_lens[PROTO_KIND_COUNT] = {
    0,
#define MESSAGE(name_, direction_, doc_) sizeof (#name_) - 1,
#include "messages.def"
};

//  What each FIELD type token of messages.def means in a proto_field_info_t initializer.
#define S_TYPE_U64    .type = PROTO_TYPE_U64, .type_name = "U64"
#define S_TYPE_I64    .type = PROTO_TYPE_I64, .type_name = "I64"
#define S_TYPE_U32    .type = PROTO_TYPE_U32, .type_name = "U32"
#define S_TYPE_BOOL   .type = PROTO_TYPE_BOOL, .type_name = "BOOL"
#define S_TYPE_STR8   .type = PROTO_TYPE_STR, .type_name = "STR8", .max_len = PROTO_STR8_MAX
#define S_TYPE_STR32  .type = PROTO_TYPE_STR, .type_name = "STR32", .max_len = PROTO_STR32_MAX
#define S_TYPE_STR64  .type = PROTO_TYPE_STR, .type_name = "STR64", .max_len = PROTO_STR64_MAX
#define S_TYPE_STR96  .type = PROTO_TYPE_STR, .type_name = "STR96", .max_len = PROTO_STR96_MAX
#define S_TYPE_STR128 .type = PROTO_TYPE_STR, .type_name = "STR128", .max_len = PROTO_STR128_MAX
#define S_TYPE_ENUM(enum_)                                                                         \
    .type = PROTO_TYPE_ENUM, .type_name = #enum_, .enum_info = &s_enums[S_ENUM_##enum_]
#define S_REQUIRED_REQ true
#define S_REQUIRED_OPT false

//  One case per message, each with its field table in a block where S names the message's
//  struct, which is what lets offsetof find members without repeating the message's name on
//  every FIELD line. The tables are static const: built by the compiler, never written.
const proto_message_info_t *proto_message_info (proto_kind_t kind)
{
    switch (kind) {
#define MESSAGE(name_, direction_, doc_)                                                           \
    case PROTO_##name_: {                                                                          \
        typedef proto_##name_##_t S;                                                               \
        static const char s_direction[] = direction_;                                              \
        static const char s_doc[] = doc_;                                                          \
        static const proto_field_info_t s_fields[] = {
#define FIELD(cname_, key_, type_, required_, unit_, doc_)                                         \
    {.cname = #cname_,                                                                             \
     .key = key_,                                                                                  \
     .key_len = sizeof (key_) - 1,                                                                 \
     S_TYPE_##type_,                                                                               \
     .required = S_REQUIRED_##required_,                                                           \
     .unit = unit_,                                                                                \
     .doc = doc_,                                                                                  \
     .offset = offsetof (S, cname_)},
#define END_MESSAGE(name_)                                                                         \
    }                                                                                              \
    ;                                                                                              \
    /* the decoder tracks seen fields in a uint64_t */                                             \
    _Static_assert(sizeof (s_fields) / sizeof (s_fields[0]) <= 64, #name_ ": too many fields");    \
    static const proto_message_info_t s_info = {.kind = PROTO_##name_,                             \
                                                .name = #name_,                                    \
                                                .direction = s_direction,                          \
                                                .doc = s_doc,                                      \
                                                .fields = s_fields,                                \
                                                .field_count =                                     \
                                                    sizeof (s_fields) / sizeof (s_fields[0])};     \
    return &s_info;                                                                                \
    }
#include "messages.def"
        default:
            return NULL;
    }
}

const proto_enum_info_t *proto_enum_info (size_t index)
{
    return index < S_ENUM_COUNT ? &s_enums[index] : NULL;
}

static const char *s_enum_wire (const proto_enum_info_t *info, int value)
{
    return value >= 1 && (size_t) value <= info->count ? info->values[value - 1].wire : NULL;
}

//  0 when no value has this wire string.
static int s_enum_lookup (const proto_enum_info_t *info, const void *wire, size_t len)
{
    for (size_t index = 0; index < info->count; index++) {
        const proto_enum_value_info_t *value = &info->values[index];
        if (value->wire_len == len && memcmp (value->wire, wire, len) == 0)
            return (int) index + 1;
    }
    return 0;
}

#define END_ENUM_TYPE(name_)                                                                       \
    const char *proto_##name_##_name (proto_##name_##_t value)                                     \
    {                                                                                              \
        return s_enum_wire (&s_enums[S_ENUM_##name_], (int) value);                                \
    }                                                                                              \
    proto_##name_##_t proto_##name_##_from_name (const char *wire)                                 \
    {                                                                                              \
        return wire ? (proto_##name_##_t) s_enum_lookup (&s_enums[S_ENUM_##name_], wire,           \
                                                         strlen (wire))                            \
                    : (proto_##name_##_t) 0;                                                       \
    }
#include "messages.def"

const char *proto_kind_name (proto_kind_t kind)
{
    return kind > PROTO_NONE && kind < PROTO_KIND_COUNT ? s_kind_names[kind] : NULL;
}

static proto_kind_t s_kind_lookup (const void *name, size_t len)
{
    for (int kind = 1; kind < PROTO_KIND_COUNT; kind++)
        if (s_kind_name_lens[kind] == len && memcmp (s_kind_names[kind], name, len) == 0)
            return (proto_kind_t) kind;
    return PROTO_NONE;
}

proto_kind_t proto_kind_from_name (const char *name)
{
    return name ? s_kind_lookup (name, strlen (name)) : PROTO_NONE;
}

//  ---------------------------------------------------------------------------------------
//  Field access. Every member of the anonymous union starts at its first byte (C11 6.7.2.1),
//  so the address of any one of them is the address of whichever message msg holds.

static const uint8_t *s_body (const proto_msg_t *msg)
{
    return (const uint8_t *) &msg->new_order;
}

static uint8_t *s_body_mut (proto_msg_t *msg)
{
    return (uint8_t *) &msg->new_order;
}

//  Integer-like fields (U64, I64, U32, BOOL, ENUM) as one int64_t/uint64_t-sized value, so that
//  equality and "is it zero" are one code path. memcpy, not casts: the member types differ.
static uint64_t s_scalar (const uint8_t *body, const proto_field_info_t *field)
{
    const uint8_t *at = body + field->offset;
    switch (field->type) {
        case PROTO_TYPE_U64: {
            uint64_t value;
            memcpy (&value, at, sizeof value);
            return value;
        }
        case PROTO_TYPE_I64: {
            int64_t value;
            memcpy (&value, at, sizeof value);
            return (uint64_t) value;
        }
        case PROTO_TYPE_U32: {
            uint32_t value;
            memcpy (&value, at, sizeof value);
            return value;
        }
        case PROTO_TYPE_BOOL: {
            bool value;
            memcpy (&value, at, sizeof value);
            return value;
        }
        case PROTO_TYPE_ENUM: {
            int value;
            memcpy (&value, at, sizeof value);
            return (uint64_t) (int64_t) value;
        }
        case PROTO_TYPE_STR:
            break;
    }
    assert (false);
    return 0;
}

static bool s_utf8_valid (const uint8_t *text, size_t len)
{
    size_t index = 0;
    while (index < len) {
        uint8_t lead = text[index];
        if (lead < 0x80) {
            index++;
            continue;
        }
        size_t more;
        uint32_t point, least;
        if ((lead & 0xe0) == 0xc0) {
            more = 1, point = lead & 0x1f, least = 0x80;
        }
        else if ((lead & 0xf0) == 0xe0) {
            more = 2, point = lead & 0x0f, least = 0x800;
        }
        else if ((lead & 0xf8) == 0xf0) {
            more = 3, point = lead & 0x07, least = 0x10000;
        }
        else
            return false;
        if (len - index - 1 < more)
            return false;
        for (size_t next = 1; next <= more; next++) {
            uint8_t byte = text[index + next];
            if ((byte & 0xc0) != 0x80)
                return false;
            point = (point << 6) | (byte & 0x3f);
        }
        //  overlong forms, UTF-16 surrogates and points past Unicode are not UTF-8
        if (point < least || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff))
            return false;
        index += more + 1;
    }
    return true;
}

//  ---------------------------------------------------------------------------------------
//  Buffer

#define S_BUF_MIN_CAP 256

void proto_buf_init (proto_buf_t *buf)
{
    assert (buf);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void proto_buf_reset (proto_buf_t *buf)
{
    assert (buf);
    buf->len = 0;
}

void proto_buf_free (proto_buf_t *buf)
{
    assert (buf);
    free (buf->data);
    proto_buf_init (buf);
}

//  Room for len more bytes past buf->len: 0, or -1 when memory runs out.
static int s_reserve (proto_buf_t *buf, size_t len)
{
    if (len > SIZE_MAX - buf->len)
        return -1;
    size_t need = buf->len + len;
    if (need <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : S_BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *grown = (uint8_t *) realloc (buf->data, cap);
    if (!grown)
        return -1;
    buf->data = grown;
    buf->cap = cap;
    return 0;
}

int proto_buf_append (proto_buf_t *buf, const void *data, size_t len)
{
    assert (buf);
    if (s_reserve (buf, len))
        return -1;
    if (len)
        memcpy (buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Batch frames

int proto_batch_start (proto_buf_t *buf)
{
    const uint8_t mark = PROTO_BATCH_MARK;
    return proto_buf_append (buf, &mark, 1);
}

int proto_batch_add (proto_buf_t *buf, const void *msg, size_t len)
{
    assert (len > 0 && len <= UINT32_MAX);
    const uint8_t head[4] = {(uint8_t) (len >> 24), (uint8_t) (len >> 16), (uint8_t) (len >> 8),
                             (uint8_t) len};
    return proto_buf_append (buf, head, 4) || proto_buf_append (buf, msg, len) ? -1 : 0;
}

int proto_batch_encode (proto_buf_t *buf, const proto_msg_t *msg)
{
    size_t at = buf->len;
    const uint8_t room[4] = {0};
    if (proto_buf_append (buf, room, 4))
        return -1;
    if (proto_encode (msg, buf)) {
        buf->len = at;
        return -1;
    }
    size_t len = buf->len - at - 4;
    buf->data[at] = (uint8_t) (len >> 24);
    buf->data[at + 1] = (uint8_t) (len >> 16);
    buf->data[at + 2] = (uint8_t) (len >> 8);
    buf->data[at + 3] = (uint8_t) len;
    return 0;
}

bool proto_batch_is (const void *data, size_t size)
{
    return size > 0 && ((const uint8_t *) data)[0] == PROTO_BATCH_MARK;
}

int proto_batch_next (const void *data, size_t size, size_t *offset, size_t *count,
                      const uint8_t **msg, size_t *len)
{
    const uint8_t *bytes = data;
    if (*offset == 0) {
        if (!proto_batch_is (data, size))
            return -1;
        *offset = 1;
        *count = 0;
    }
    if (*offset == size)
        return 0;
    if (size - *offset < 4 || ++*count > PROTO_BATCH_MAX)
        return -1;
    const uint8_t *head = bytes + *offset;
    size_t n = (size_t) head[0] << 24 | (size_t) head[1] << 16 | (size_t) head[2] << 8 | head[3];
    if (n == 0 || n > size - *offset - 4)
        return -1;
    *msg = head + 4;
    *len = n;
    *offset += 4 + n;
    return 1;
}

//  ---------------------------------------------------------------------------------------
//  Encoder

//  Whether the field goes on the wire: required ones always, optional ones unless they hold
//  the value an absent field decodes to. -1 when the value could not be decoded back (the
//  caller broke a rule of the model), so that encode(decode(x)) is always possible and
//  decode(encode(m)) == m.
static int s_field_present (const uint8_t *body, const proto_field_info_t *field, size_t *text_len)
{
    if (field->type == PROTO_TYPE_STR) {
        const char *text = (const char *) body + field->offset;
        size_t len = strnlen (text, field->max_len + 1);
        *text_len = len;
        if (len > field->max_len || !s_utf8_valid ((const uint8_t *) text, len))
            return -1;
        if (len == 0)
            return field->required ? -1 : 0;
        return 1;
    }
    uint64_t value = s_scalar (body, field);
    if (field->type == PROTO_TYPE_ENUM) {
        if (value == 0)
            return field->required ? -1 : 0;
        if (!s_enum_wire (field->enum_info, (int) (int64_t) value))
            return -1;
        return 1;
    }
    return field->required || value != 0;
}

//  The writer: msgpack's smallest form of each item, exactly as msgpack-c's packer chooses it
//  (test_proto checks byte for byte), written straight into space reserved once per message.
//  msgpack-c's packer hands every piece of 1 to 9 bytes to a write callback through a function
//  pointer, which then calls memcpy: on the matcher's hot path that was an eighth of its CPU.

static uint8_t *s_put_be (uint8_t *at, uint64_t value, size_t len)
{
    for (size_t index = len; index-- > 0; value >>= 8)
        at[index] = (uint8_t) value;
    return at + len;
}

static uint8_t *s_put_uint (uint8_t *at, uint64_t value)
{
    if (value < 0x80) {
        *at = (uint8_t) value;
        return at + 1;
    }
    if (value <= UINT8_MAX) {
        *at = 0xcc;
        return s_put_be (at + 1, value, 1);
    }
    if (value <= UINT16_MAX) {
        *at = 0xcd;
        return s_put_be (at + 1, value, 2);
    }
    if (value <= UINT32_MAX) {
        *at = 0xce;
        return s_put_be (at + 1, value, 4);
    }
    *at = 0xcf;
    return s_put_be (at + 1, value, 8);
}

//  msgpack-c writes an int64 that is not negative in the unsigned forms.
static uint8_t *s_put_int (uint8_t *at, int64_t value)
{
    if (value >= 0)
        return s_put_uint (at, (uint64_t) value);
    if (value >= -32) {
        *at = (uint8_t) value;
        return at + 1;
    }
    if (value >= INT8_MIN) {
        *at = 0xd0;
        return s_put_be (at + 1, (uint64_t) value, 1);
    }
    if (value >= INT16_MIN) {
        *at = 0xd1;
        return s_put_be (at + 1, (uint64_t) value, 2);
    }
    if (value >= INT32_MIN) {
        *at = 0xd2;
        return s_put_be (at + 1, (uint64_t) value, 4);
    }
    *at = 0xd3;
    return s_put_be (at + 1, (uint64_t) value, 8);
}

//  Most bytes s_put_str writes for len bytes of text.
#define S_STR_BOUND(len_) ((len_) + 5)

//  Keys, enum values and our strings are short: a byte loop beats a call to memcpy there.
static uint8_t *s_put_str (uint8_t *at, const char *text, size_t len)
{
    if (len < 32)
        *at++ = (uint8_t) (0xa0 | len);
    else if (len <= UINT8_MAX) {
        *at = 0xd9;
        at = s_put_be (at + 1, len, 1);
    }
    else if (len <= UINT16_MAX) {
        *at = 0xda;
        at = s_put_be (at + 1, len, 2);
    }
    else {
        *at = 0xdb;
        at = s_put_be (at + 1, len, 4);
    }
    if (len > 16) {
        memcpy (at, text, len);
        return at + len;
    }
    for (size_t index = 0; index < len; index++)
        at[index] = (uint8_t) text[index];
    return at + len;
}

static uint8_t *s_put_map (uint8_t *at, size_t entries)
{
    if (entries < 16) {
        *at = (uint8_t) (0x80 | entries);
        return at + 1;
    }
    *at = 0xde; // at most 65 entries: a message has at most 64 fields
    return s_put_be (at + 1, entries, 2);
}

//  The field's key and value; s_field_present checked the value.
static uint8_t *s_put_field (uint8_t *at, const uint8_t *body, const proto_field_info_t *field,
                             size_t text_len)
{
    at = s_put_str (at, field->key, field->key_len);
    if (field->type == PROTO_TYPE_STR)
        return s_put_str (at, (const char *) body + field->offset, text_len);
    uint64_t value = s_scalar (body, field);
    switch (field->type) {
        case PROTO_TYPE_U64:
        case PROTO_TYPE_U32:
            return s_put_uint (at, value);
        case PROTO_TYPE_I64:
            return s_put_int (at, (int64_t) value);
        case PROTO_TYPE_BOOL:
            *at = value ? 0xc3 : 0xc2;
            return at + 1;
        case PROTO_TYPE_ENUM: {
            const proto_enum_value_info_t *wire = &field->enum_info->values[value - 1];
            return s_put_str (at, wire->wire, wire->wire_len);
        }
        case PROTO_TYPE_STR:
            break;
    }
    assert (false);
    return at;
}

int proto_encode (const proto_msg_t *msg, proto_buf_t *out)
{
    assert (msg);
    assert (out);
    const proto_message_info_t *info = proto_message_info (msg->kind);
    if (!info)
        return -1;
    const uint8_t *body = s_body (msg);

    //  Check everything before writing anything; size the map header and the whole message
    uint64_t present = 0;
    size_t entries = 1; // "t"
    size_t text_lens[64];
    size_t bound = 3 + S_STR_BOUND (1) + S_STR_BOUND (s_kind_name_lens[msg->kind]);
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        int rc = s_field_present (body, field, &text_lens[index]);
        if (rc < 0)
            return -1;
        if (rc) {
            present |= UINT64_C (1) << index;
            entries++;
            bound += S_STR_BOUND (field->key_len);
            if (field->type == PROTO_TYPE_STR)
                bound += S_STR_BOUND (text_lens[index]);
            else if (field->type == PROTO_TYPE_ENUM)
                bound +=
                    S_STR_BOUND (field->enum_info->values[s_scalar (body, field) - 1].wire_len);
            else
                bound += 9;
        }
    }
    if (s_reserve (out, bound))
        return -1;
    uint8_t *at = out->data + out->len;
    at = s_put_map (at, entries);
    at = s_put_str (at, "t", 1);
    at = s_put_str (at, info->name, s_kind_name_lens[msg->kind]);
    for (size_t index = 0; index < info->field_count; index++)
        if (present & (UINT64_C (1) << index))
            at = s_put_field (at, body, &info->fields[index], text_lens[index]);
    out->len = (size_t) (at - out->data);
    assert (out->len <= out->cap);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Reader: one msgpack item at a time from a span of bytes

typedef enum {
    T_NIL,
    T_BOOL,
    T_UINT, // any integer >= 0, whatever format carried it
    T_NINT, // any integer < 0
    T_FLOAT,
    T_STR,
    T_BIN,
    T_EXT,
    T_ARRAY,
    T_MAP,
} token_type_t;

static const char *const s_token_names[] = {"nil",    "boolean", "integer",   "integer", "float",
                                            "string", "binary",  "extension", "array",   "map"};

typedef struct {
    token_type_t type;
    uint64_t u;          // T_UINT value, T_BOOL 0 or 1, T_ARRAY / T_MAP count
    int64_t i;           // T_NINT value
    const uint8_t *data; // T_STR / T_BIN / T_EXT payload
    size_t len;          // of the payload
} token_t;

typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} reader_t;

//  Reader failures, worded for the error message.
#define S_TRUNCATED "truncated"
#define S_INVALID   "invalid msgpack (byte 0xc1)"
#define S_TOO_DEEP  "nested too deeply"

static uint64_t s_be (const uint8_t *bytes, size_t len)
{
    uint64_t value = 0;
    for (size_t index = 0; index < len; index++)
        value = (value << 8) | bytes[index];
    return value;
}

static void s_signed (token_t *token, int64_t value)
{
    if (value < 0) {
        token->type = T_NINT;
        token->i = value;
    }
    else {
        token->type = T_UINT;
        token->u = (uint64_t) value;
    }
}

//  Reads one item's header and, for strings, binaries and extensions, its payload; array and
//  map elements are left to the caller. NULL on success, else what went wrong.
static const char *s_next (reader_t *reader, token_t *token)
{
    if (reader->at >= reader->end)
        return S_TRUNCATED;
    size_t left = (size_t) (reader->end - reader->at);
    const uint8_t *at = reader->at;
    uint8_t lead = *at;
    size_t head = 1; // bytes of header
    size_t payload = 0;
    memset (token, 0, sizeof *token);

    if (lead <= 0x7f) {
        token->type = T_UINT, token->u = lead;
    }
    else if (lead <= 0x8f) {
        token->type = T_MAP, token->u = lead & 0x0f;
    }
    else if (lead <= 0x9f) {
        token->type = T_ARRAY, token->u = lead & 0x0f;
    }
    else if (lead <= 0xbf) {
        token->type = T_STR, payload = lead & 0x1f;
    }
    else if (lead >= 0xe0) {
        token->type = T_NINT, token->i = (int8_t) lead;
    }
    else {
        //  0xc0 ... 0xdf: the size of what follows the lead byte is fixed by it
        static const uint8_t sizes[32] = {
            0, 0, 0, 0, 1, 2, 4, 2, 3,  5, 4, 8, 1, 2, 4, 8, // c0 ... cf
            1, 2, 4, 8, 2, 3, 5, 9, 17, 1, 2, 4, 2, 4, 2, 4  // d0 ... df
        };
        head += sizes[lead - 0xc0];
        if (left < head)
            return S_TRUNCATED;
        const uint8_t *arg = at + 1;
        switch (lead) {
            case 0xc0:
                token->type = T_NIL;
                break;
            case 0xc1:
                return S_INVALID;
            case 0xc2:
            case 0xc3:
                token->type = T_BOOL, token->u = lead == 0xc3;
                break;
            case 0xc4:
            case 0xc5:
            case 0xc6:
                token->type = T_BIN, payload = s_be (arg, head - 1);
                break;
            case 0xc7:
            case 0xc8:
            case 0xc9:
                //  ext 8/16/32: length, then a type byte that the length does not count
                token->type = T_EXT, payload = s_be (arg, head - 2);
                break;
            case 0xca:
            case 0xcb:
                token->type = T_FLOAT;
                break;
            case 0xcc:
            case 0xcd:
            case 0xce:
            case 0xcf:
                token->type = T_UINT, token->u = s_be (arg, head - 1);
                break;
            case 0xd0:
                s_signed (token, (int8_t) s_be (arg, 1));
                break;
            case 0xd1:
                s_signed (token, (int16_t) s_be (arg, 2));
                break;
            case 0xd2:
                s_signed (token, (int32_t) s_be (arg, 4));
                break;
            case 0xd3:
                s_signed (token, (int64_t) s_be (arg, 8));
                break;
            case 0xd4:
            case 0xd5:
            case 0xd6:
            case 0xd7:
            case 0xd8:
                token->type = T_EXT; // fixext: type byte and data counted in head
                break;
            case 0xd9:
            case 0xda:
            case 0xdb:
                token->type = T_STR, payload = s_be (arg, head - 1);
                break;
            case 0xdc:
            case 0xdd:
                token->type = T_ARRAY, token->u = s_be (arg, head - 1);
                break;
            case 0xde:
            case 0xdf:
                token->type = T_MAP, token->u = s_be (arg, head - 1);
                break;
        }
    }
    if (left < head || left - head < payload)
        return S_TRUNCATED;
    token->data = at + head;
    token->len = payload;
    reader->at = at + head + payload;
    return NULL;
}

//  Steps over one complete item. Each element takes at least one byte, so a count larger than
//  the bytes left is refused before any looping; the recursion is bounded by PROTO_MAX_DEPTH.
static const char *s_skip (reader_t *reader, int depth)
{
    token_t token;
    const char *problem = s_next (reader, &token);
    if (problem)
        return problem;
    if (token.type != T_ARRAY && token.type != T_MAP)
        return NULL;
    if (depth >= PROTO_MAX_DEPTH)
        return S_TOO_DEEP;
    uint64_t items = token.type == T_MAP ? token.u * 2 : token.u; // u < 2^32: no overflow
    if (items > (uint64_t) (reader->end - reader->at))
        return S_TRUNCATED;
    for (uint64_t item = 0; item < items; item++)
        if ((problem = s_skip (reader, depth + 1)))
            return problem;
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Decoder

static int s_fail (char *err, size_t errlen, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int s_fail (char *err, size_t errlen, const char *format, ...)
{
    if (err && errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, errlen, format, args);
        va_end (args);
    }
    return -1;
}

//  Untrusted bytes quoted in an error message: at most S_QUOTE_MAX, printable ASCII only, so
//  a hostile string cannot forge log lines or flood them.
#define S_QUOTE_MAX 32

static void s_quote (char *quote, const uint8_t *bytes, size_t len)
{
    size_t index = 0;
    for (; index < len && index < S_QUOTE_MAX; index++)
        quote[index] = bytes[index] >= 0x20 && bytes[index] < 0x7f ? (char) bytes[index] : '?';
    if (len > S_QUOTE_MAX)
        memcpy (quote + index, "...", 3), index += 3;
    quote[index] = 0;
}

typedef struct {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; // its first byte; the item was checked to be complete
} entry_t;

//  The field whose key this is, or -1. The search starts at hint, the field after the last
//  one found: our encoder writes fields in table order, so the first try nearly always hits.
static int s_find_field (const proto_message_info_t *info, const uint8_t *key, size_t len,
                         size_t hint)
{
    size_t count = info->field_count;
    for (size_t tried = 0; tried < count; tried++) {
        size_t index = (hint + tried) % count;
        const proto_field_info_t *field = &info->fields[index];
        if (field->key_len != len)
            continue;
        size_t at = 0;
        while (at < len && (uint8_t) field->key[at] == key[at])
            at++;
        if (at == len)
            return (int) index;
    }
    return -1;
}

//  Decodes one value into its member, or explains in reason (the caller adds the field's name).
static const char *s_decode_field (const proto_field_info_t *field, const token_t *token,
                                   uint8_t *body, char *reason, size_t reason_len)
{
    uint8_t *at = body + field->offset;
    if (token->type == T_NIL && !field->required)
        return NULL; // nil is how many clients say "absent"
    switch (field->type) {
        case PROTO_TYPE_U64:
        case PROTO_TYPE_U32:
        case PROTO_TYPE_I64:
            if (token->type == T_NINT) {
                if (field->type != PROTO_TYPE_I64)
                    return "out of range (negative)";
                memcpy (at, &token->i, sizeof token->i);
                return NULL;
            }
            if (token->type != T_UINT)
                break;
            if (field->type == PROTO_TYPE_U64)
                memcpy (at, &token->u, sizeof token->u);
            else if (field->type == PROTO_TYPE_I64) {
                if (token->u > INT64_MAX)
                    return "out of range (more than 2^63 - 1)";
                int64_t value = (int64_t) token->u;
                memcpy (at, &value, sizeof value);
            }
            else {
                if (token->u > UINT32_MAX)
                    return "out of range (more than 2^32 - 1)";
                uint32_t value = (uint32_t) token->u;
                memcpy (at, &value, sizeof value);
            }
            return NULL;
        case PROTO_TYPE_BOOL: {
            if (token->type != T_BOOL)
                break;
            bool flag = token->u != 0;
            memcpy (at, &flag, sizeof flag);
            return NULL;
        }
        case PROTO_TYPE_STR:
            if (token->type != T_STR)
                break;
            if (token->len > field->max_len) {
                snprintf (reason, reason_len, "string too long (%zu bytes, at most %zu)",
                          token->len, field->max_len);
                return reason;
            }
            if (memchr (token->data, 0, token->len))
                return "string contains a NUL byte";
            if (!s_utf8_valid (token->data, token->len))
                return "string is not valid UTF-8";
            if (token->len == 0 && field->required)
                return "empty, but required";
            memcpy (at, token->data, token->len);
            at[token->len] = 0;
            return NULL;
        case PROTO_TYPE_ENUM: {
            if (token->type != T_STR)
                break;
            int value = s_enum_lookup (field->enum_info, token->data, token->len);
            if (value == 0) {
                char quote[S_QUOTE_MAX + 4];
                s_quote (quote, token->data, token->len);
                snprintf (reason, reason_len, "unknown %s '%s'", field->enum_info->name, quote);
                return reason;
            }
            memcpy (at, &value, sizeof value);
            return NULL;
        }
    }
    snprintf (reason, reason_len, "expected %s, got %s",
              field->type == PROTO_TYPE_BOOL                                    ? "boolean"
              : field->type == PROTO_TYPE_STR || field->type == PROTO_TYPE_ENUM ? "string"
                                                                                : "integer",
              s_token_names[token->type]);
    return reason;
}

//  Reads the top-level map into entries; returns the number of entries or -1.
static int s_read_map (reader_t *reader, entry_t *entries, int *t_index, char *err, size_t errlen)
{
    token_t token;
    const char *problem = s_next (reader, &token);
    if (problem)
        return s_fail (err, errlen, "message: %s", problem);
    if (token.type != T_MAP)
        return s_fail (err, errlen, "message: expected a map, got %s", s_token_names[token.type]);
    if (token.u > PROTO_MAX_KEYS)
        return s_fail (err, errlen, "message: %llu keys, at most %d allowed",
                       (unsigned long long) token.u, PROTO_MAX_KEYS);
    int count = (int) token.u;
    *t_index = -1;
    for (int index = 0; index < count; index++) {
        token_t key;
        if ((problem = s_next (reader, &key)))
            return s_fail (err, errlen, "message: key %d: %s", index + 1, problem);
        if (key.type != T_STR)
            return s_fail (err, errlen, "message: key %d: expected string, got %s", index + 1,
                           s_token_names[key.type]);
        entries[index].key = key.data;
        entries[index].key_len = key.len;
        entries[index].value = reader->at;
        if ((problem = s_skip (reader, 0))) {
            char quote[S_QUOTE_MAX + 4];
            s_quote (quote, key.data, key.len);
            return s_fail (err, errlen, "message: value of key '%s': %s", quote, problem);
        }
        if (key.len == 1 && key.data[0] == 't') {
            if (*t_index >= 0)
                return s_fail (err, errlen, "message: duplicate key 't'");
            *t_index = index;
        }
    }
    if (reader->at != reader->end)
        return s_fail (err, errlen, "message: %zu trailing bytes after the map",
                       (size_t) (reader->end - reader->at));
    return count;
}

static int s_decode (proto_kind_t expected, const uint8_t *data, size_t size, proto_msg_t *msg,
                     char *err, size_t errlen)
{
    if (size == 0)
        return s_fail (err, errlen, "message: empty input");
    if (size > PROTO_MAX_SIZE)
        return s_fail (err, errlen, "message: %zu bytes, at most %d allowed", size, PROTO_MAX_SIZE);
    reader_t reader = {data, data + size};
    entry_t entries[PROTO_MAX_KEYS];
    int t_index = -1;
    int count = s_read_map (&reader, entries, &t_index, err, errlen);
    if (count < 0)
        return -1;

    //  "t": which message this is
    if (t_index < 0)
        return s_fail (err, errlen, "message: missing key 't'");
    token_t token;
    reader_t value = {entries[t_index].value, reader.end};
    s_next (&value, &token); // cannot fail: s_read_map checked every value
    if (token.type != T_STR)
        return s_fail (err, errlen, "message: key 't': expected string, got %s",
                       s_token_names[token.type]);
    proto_kind_t kind = s_kind_lookup (token.data, token.len);
    if (kind == PROTO_NONE) {
        char quote[S_QUOTE_MAX + 4];
        s_quote (quote, token.data, token.len);
        return s_fail (err, errlen, "message: unknown kind '%s'", quote);
    }
    if (expected != PROTO_NONE && kind != expected)
        return s_fail (err, errlen, "message: expected '%s', got '%s'",
                       proto_kind_name (expected) ? proto_kind_name (expected) : "?",
                       proto_kind_name (kind));
    const proto_message_info_t *info = proto_message_info (kind);
    msg->kind = kind;
    uint8_t *body = s_body_mut (msg);

    //  Every other key: a field of this kind, or an unknown key (ignored, but at most once)
    uint64_t seen = 0;
    size_t hint = 0;
    for (int index = 0; index < count; index++) {
        if (index == t_index)
            continue;
        const entry_t *entry = &entries[index];
        int found = entry->key_len ? s_find_field (info, entry->key, entry->key_len, hint) : -1;
        if (found < 0) {
            for (int other = 0; other < index; other++)
                if (entries[other].key_len == entry->key_len &&
                    memcmp (entries[other].key, entry->key, entry->key_len) == 0) {
                    char quote[S_QUOTE_MAX + 4];
                    s_quote (quote, entry->key, entry->key_len);
                    return s_fail (err, errlen, "%s: duplicate key '%s'", info->name, quote);
                }
            continue;
        }
        hint = (size_t) found + 1;
        const proto_field_info_t *field = &info->fields[found];
        if (seen & (UINT64_C (1) << found))
            return s_fail (err, errlen, "%s: duplicate key '%s'", info->name, field->key);
        seen |= UINT64_C (1) << found;
        value.at = entry->value;
        s_next (&value, &token);
        char reason[96];
        const char *problem = s_decode_field (field, &token, body, reason, sizeof reason);
        if (problem)
            return s_fail (err, errlen, "%s: field '%s' (%s): %s", info->name, field->key,
                           field->cname, problem);
    }
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        if (field->required && !(seen & (UINT64_C (1) << index)))
            return s_fail (err, errlen, "%s: field '%s' (%s): missing, but required", info->name,
                           field->key, field->cname);
    }
    return 0;
}

int proto_decode_kind (proto_kind_t expected, const void *data, size_t size, proto_msg_t *msg,
                       char *err, size_t errlen)
{
    assert (msg);
    assert (data || size == 0);
    memset (msg, 0, sizeof *msg);
    if (err && errlen)
        err[0] = 0;
    int rc = s_decode (expected, (const uint8_t *) data, size, msg, err, errlen);
    if (rc)
        memset (msg, 0, sizeof *msg); // never leave a half-decoded message behind
    return rc;
}

int proto_decode (const void *data, size_t size, proto_msg_t *msg, char *err, size_t errlen)
{
    return proto_decode_kind (PROTO_NONE, data, size, msg, err, errlen);
}

//  ---------------------------------------------------------------------------------------
//  Helpers over decoded messages

bool proto_msg_equal (const proto_msg_t *a, const proto_msg_t *b)
{
    assert (a);
    assert (b);
    const proto_message_info_t *info = proto_message_info (a->kind);
    if (a->kind != b->kind || !info)
        return a->kind == b->kind && !info;
    for (size_t index = 0; index < info->field_count; index++) {
        const proto_field_info_t *field = &info->fields[index];
        if (field->type == PROTO_TYPE_STR) {
            const char *text_a = (const char *) s_body (a) + field->offset;
            const char *text_b = (const char *) s_body (b) + field->offset;
            if (strncmp (text_a, text_b, field->max_len + 1) != 0)
                return false;
        }
        else if (s_scalar (s_body (a), field) != s_scalar (s_body (b), field))
            return false;
    }
    return true;
}

//  Where each kind keeps its seq and its market, found once: the matcher asks for every event.
typedef struct {
    const proto_field_info_t *seq;
    const proto_field_info_t *market;
} s_common_t;

static s_common_t s_common[PROTO_KIND_COUNT];
static pthread_once_t s_common_once = PTHREAD_ONCE_INIT;

static void s_common_find (void)
{
    for (int kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        const proto_message_info_t *info = proto_message_info ((proto_kind_t) kind);
        for (size_t index = 0; index < info->field_count; index++) {
            const proto_field_info_t *field = &info->fields[index];
            if (strcmp (field->key, "seq") == 0 && field->type == PROTO_TYPE_U64)
                s_common[kind].seq = field;
            if (strcmp (field->key, "mkt") == 0 && field->type == PROTO_TYPE_STR)
                s_common[kind].market = field;
        }
    }
}

static const s_common_t *s_common_of (proto_kind_t kind)
{
    static const s_common_t none;
    pthread_once (&s_common_once, s_common_find);
    return kind > PROTO_NONE && kind < PROTO_KIND_COUNT ? &s_common[kind] : &none;
}

uint64_t proto_msg_seq (const proto_msg_t *msg)
{
    assert (msg);
    const proto_field_info_t *field = s_common_of (msg->kind)->seq;
    return field ? s_scalar (s_body (msg), field) : 0;
}

const char *proto_msg_market (const proto_msg_t *msg)
{
    assert (msg);
    const proto_field_info_t *field = s_common_of (msg->kind)->market;
    return field ? (const char *) s_body (msg) + field->offset : NULL;
}
