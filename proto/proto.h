/*  proto — the mce messages as C types, and their msgpack codec.

    Everything here is expanded from messages.def, the one description of the wire: enums,
    one struct per message, the proto_msg_t tagged union and the tables describing each field.
    The codec walks those tables, so adding a field is one line in messages.def.

    On the wire every message is one msgpack map with short string keys; key "t" names the
    message. proto/MESSAGES.md (generated) is the reference for other languages.

    Structs are plain values with fixed-size string buffers so a message can live on the stack
    and be decoded without allocating. msgpack-c stays inside proto.c.
*/
#ifndef MCE_PROTO_H
#define MCE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Sent in every heartbeat. Bump it when a change is not backward compatible: a key reused
//  or removed, a type or unit changed, an optional field made required. Adding optional
//  fields or new messages does not bump it: decoders ignore keys they do not know.
#define PROTO_VERSION 1

//  Bounds of the decoder: work per message is linear in its size, and these cap the size.
#define PROTO_MAX_SIZE  65536 // bytes in one message
#define PROTO_MAX_KEYS  64    // entries in the top-level map
#define PROTO_MAX_DEPTH 16    // nesting inside the value of an unknown key

//  String fields hold at most this many bytes of UTF-8 (plus the NUL in C).
#define PROTO_STR8_MAX   8
#define PROTO_STR32_MAX  32
#define PROTO_STR64_MAX  64
#define PROTO_STR96_MAX  96
#define PROTO_STR128_MAX 128

//  ---------------------------------------------------------------------------------------
//  Enumerations: 0 (PROTO_<ENUM>_NONE) means absent, real values start at 1.

#define ENUM_TYPE(name_, upper_, doc_)     typedef enum { PROTO_##upper_##_NONE = 0,
#define VALUE(upper_, value_, wire_, doc_) PROTO_##upper_##_##value_,
#define END_ENUM_TYPE(name_)                                                                       \
    }                                                                                              \
    proto_##name_##_t;
#include "messages.def"

//  proto_<enum>_name: the wire string ("buy"), NULL when out of range.
//  proto_<enum>_from_name: the value for a wire string, 0 (NONE) when unknown or NULL.
#define END_ENUM_TYPE(name_)                                                                       \
    const char *proto_##name_##_name (proto_##name_##_t value);                                    \
    proto_##name_##_t proto_##name_##_from_name (const char *wire);
#include "messages.def"

//  ---------------------------------------------------------------------------------------
//  Messages

typedef enum {
    PROTO_NONE = 0,
#define MESSAGE(name_, direction_, doc_) PROTO_##name_,
#include "messages.def"
    PROTO_KIND_COUNT
} proto_kind_t;

//  How each field type looks in a struct. ENUM (e) expands to proto_<e>_t.
#define PROTO_MEMBER_U64(cname_)    uint64_t cname_
#define PROTO_MEMBER_I64(cname_)    int64_t cname_
#define PROTO_MEMBER_U32(cname_)    uint32_t cname_
#define PROTO_MEMBER_BOOL(cname_)   bool cname_
#define PROTO_MEMBER_STR8(cname_)   char cname_[PROTO_STR8_MAX + 1]
#define PROTO_MEMBER_STR32(cname_)  char cname_[PROTO_STR32_MAX + 1]
#define PROTO_MEMBER_STR64(cname_)  char cname_[PROTO_STR64_MAX + 1]
#define PROTO_MEMBER_STR96(cname_)  char cname_[PROTO_STR96_MAX + 1]
#define PROTO_MEMBER_STR128(cname_) char cname_[PROTO_STR128_MAX + 1]
#define PROTO_MEMBER_ENUM(enum_)    proto_##enum_##_t

#define MESSAGE(name_, direction_, doc_)                   typedef struct {
#define FIELD(cname_, key_, type_, required_, unit_, doc_) PROTO_MEMBER_##type_ (cname_);
#define END_MESSAGE(name_)                                                                         \
    }                                                                                              \
    proto_##name_##_t;
#include "messages.def"

//  One decoded message. All members of the union start at the same address.
typedef struct {
    proto_kind_t kind;
    union {
#define MESSAGE(name_, direction_, doc_) proto_##name_##_t name_;
#include "messages.def"
    };
} proto_msg_t;

//  ---------------------------------------------------------------------------------------
//  Codec

//  A growable byte buffer owned by the caller; encoders append to it.
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} proto_buf_t;

void proto_buf_init (proto_buf_t *buf);
//  Forgets the contents (len = 0) and keeps the memory for the next message.
void proto_buf_reset (proto_buf_t *buf);
void proto_buf_free (proto_buf_t *buf);
//  Appends len bytes (growing the buffer). 0, or -1 when memory runs out.
int proto_buf_append (proto_buf_t *buf, const void *data, size_t len);

//  Batch frames: several messages in one ZeroMQ frame, so a link that sends many small
//  messages pays ZeroMQ's (and CurveZMQ's) cost per frame once for all of them. A batch frame
//  is the byte PROTO_BATCH_MARK (0xc1, which msgpack never uses, so no single message starts
//  with it), then for each message its length (u32, big-endian) and its bytes. A frame that
//  does not start with the mark is one message, as always.
#define PROTO_BATCH_MARK 0xc1
#define PROTO_BATCH_MAX  64 //  messages in one batch frame, at most
//  Starts a batch frame in buf (which must be empty). 0 or -1 (memory).
int proto_batch_start (proto_buf_t *buf);
//  Appends one encoded message to the batch frame in buf. 0 or -1 (memory).
int proto_batch_add (proto_buf_t *buf, const void *msg, size_t len);
//  Encodes msg into the batch frame in buf. 0, or -1 as proto_encode (buf left as it was).
int proto_batch_encode (proto_buf_t *buf, const proto_msg_t *msg);
bool proto_batch_is (const void *data, size_t size);
//  The next message of the batch frame data, from *offset (0 to begin): 1 with *msg and *len
//  set and *offset moved past it, 0 at the frame's end, -1 when the frame is malformed (a
//  length of 0 or past the end, or more than PROTO_BATCH_MAX messages counted in *count).
int proto_batch_next (const void *data, size_t size, size_t *offset, size_t *count,
                      const uint8_t **msg, size_t *len);

//  Appends msg as one msgpack map: "t", then every required field and every optional field
//  that is not zero, "", false or enum 0 (those are omitted: absent decodes the same).
//  Returns -1, leaving buf as it was, on a programmer error (unknown kind, string too long,
//  not NUL-terminated, not UTF-8 or with an empty required string, enum out of range or a
//  required enum 0) or when memory runs out.
int proto_encode (const proto_msg_t *msg, proto_buf_t *out);

//  Decodes one message of any kind into msg (fully overwritten). Returns 0, or -1 with a
//  reason in err (when err is not NULL), e.g. "new_order: field 'qty' (qty): expected
//  integer". Never allocates; work is bounded by size (at most PROTO_MAX_SIZE bytes).
int proto_decode (const void *data, size_t size, proto_msg_t *msg, char *err, size_t errlen);

//  As proto_decode, and also -1 when the message is not of the expected kind.
int proto_decode_kind (proto_kind_t expected, const void *data, size_t size, proto_msg_t *msg,
                       char *err, size_t errlen);

//  True when both messages have the same kind and equal fields (bytes after a string's NUL
//  do not count).
bool proto_msg_equal (const proto_msg_t *a, const proto_msg_t *b);

//  "new_order" for PROTO_new_order; NULL for an invalid kind.
const char *proto_kind_name (proto_kind_t kind);
//  PROTO_NONE when unknown or NULL.
proto_kind_t proto_kind_from_name (const char *name);

//  The field under key "seq" (the event sequence number; for a heartbeat the latest committed
//  seq, for an ack the deciding event's), 0 if the kind has none.
uint64_t proto_msg_seq (const proto_msg_t *msg);
//  The field under key "mkt", NULL if the kind has none. Borrowed from msg.
const char *proto_msg_market (const proto_msg_t *msg);

//  ---------------------------------------------------------------------------------------
//  The model as data, for generators, tests and generic tools (all tables are static).

typedef enum {
    PROTO_TYPE_U64 = 1,
    PROTO_TYPE_I64,
    PROTO_TYPE_U32,
    PROTO_TYPE_BOOL,
    PROTO_TYPE_STR,
    PROTO_TYPE_ENUM,
} proto_type_t;

typedef struct {
    const char *wire;  // "buy"
    const char *cname; // "PROTO_SIDE_BUY"
    const char *doc;
    size_t wire_len; // strlen (wire), for the decoder's lookups
} proto_enum_value_info_t;

typedef struct {
    const char *name; // "side": the C type is proto_side_t
    const char *doc;
    const proto_enum_value_info_t *values; // values[v - 1] describes value v
    size_t count;                          // values are 1 ... count
} proto_enum_info_t;

typedef struct {
    const char *cname; // C member name: "price"
    const char *key;   // wire key: "px"
    size_t key_len;    // strlen (key), for the decoder's lookups
    proto_type_t type;
    const char *type_name;              // "U64", "STR32", ...; the enum's name for ENUM
    size_t max_len;                     // PROTO_TYPE_STR: most bytes allowed (without the NUL)
    const proto_enum_info_t *enum_info; // PROTO_TYPE_ENUM: its values
    bool required;                      // must be present on the wire
    const char *unit;                   // "Wh", "µ/kWh", "µ", "ns" or ""
    const char *doc;
    size_t offset; // of the member in proto_<message>_t
} proto_field_info_t;

typedef struct {
    proto_kind_t kind;
    const char *name;      // "new_order"
    const char *direction; // "command: gateway → matcher"
    const char *doc;
    const proto_field_info_t *fields; // in messages.def order, which is the wire order
    size_t field_count;
} proto_message_info_t;

//  NULL for an invalid kind. Kinds run from 1 to PROTO_KIND_COUNT - 1.
const proto_message_info_t *proto_message_info (proto_kind_t kind);
//  The index-th enumeration in messages.def order; NULL past the last.
const proto_enum_info_t *proto_enum_info (size_t index);

#endif
