/*  gen_messages_md — writes proto/MESSAGES.md, the reference of the wire for people and for
    clients in other languages, from the tables proto.c expands out of messages.def.

        mce-proto-docs                  write to stdout
        mce-proto-docs PATH             write to PATH
        mce-proto-docs --check PATH     exit 1 when PATH is not what would be written

    The output depends on nothing but messages.def (no dates, no paths, no versions of tools),
    so --check in CI proves the committed file is current.
*/
#include "proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Markdown table cells: a '|' in a doc string would end the cell.
static void s_cell (FILE *out, const char *text)
{
    for (; *text; text++)
        if (*text == '|')
            fputs ("\\|", out);
        else
            fputc (*text, out);
}

static void s_intro (FILE *out)
{
    fprintf (
        out,
        "<!-- Generated from proto/messages.def by mce-proto-docs (proto/gen_messages_md.c). "
        "Do not edit: change messages.def, then `cmake --build build --target proto-docs`. -->\n"
        "# mce messages\n"
        "\n"
        "Every message that crosses a socket in mce: commands and replies between gateway and "
        "matcher, events on the matcher bus (stream `m`) and the settler bus (stream `s`), and "
        "the replay protocol. Protocol version **%d** (`PROTO_VERSION`, sent in every "
        "`heartbeat`).\n"
        "\n"
        "## Wire format\n"
        "\n"
        "- Every message is **one msgpack map with short string keys**. Key `t` holds the "
        "message's name as a string (`\"new_order\"`, `\"trade\"`); the other keys are listed "
        "below. Keys may come in any order; mce writes `t` first, then fields in the order "
        "listed.\n"
        "- Enumerations are lowercase strings on the wire (`\"buy\"`). In C they are enums "
        "whose value 0 (`PROTO_<ENUM>_NONE`) means absent.\n"
        "- A **required** field must be present. An optional field that is absent or `nil` "
        "reads as 0, `\"\"`, `false` or no enum value; mce leaves out optional fields that hold "
        "those values. A required string must not be empty.\n"
        "- **Unknown keys are ignored**, so a newer sender may add optional fields; their "
        "values must still be well-formed msgpack.\n"
        "- A message is rejected, whole, when it is not a map, lacks `t` or names an unknown "
        "message, has a field of the wrong type or out of range, an unknown enum string, a "
        "missing required field, a duplicate key, bytes after the map, more than %d bytes, more "
        "than %d keys, or values nested more than %d deep.\n"
        "- Integers are integers whatever msgpack format carries them (`int 8` 5 is as good as "
        "`uint 64` 5); floats are never accepted.\n"
        "- **Versioning.** Adding optional fields or new messages keeps `PROTO_VERSION`. "
        "Reusing or removing a key, changing a type or a unit, or making a field required bumps "
        "it.\n"
        "\n"
        "| type | on the wire |\n"
        "|---|---|\n"
        "| U64 | msgpack integer, 0 … 2^64 − 1 |\n"
        "| I64 | msgpack integer, −2^63 … 2^63 − 1 |\n"
        "| U32 | msgpack integer, 0 … 2^32 − 1 |\n"
        "| BOOL | msgpack `true` or `false` |\n"
        "| STR*n* | msgpack str of at most *n* bytes of UTF-8, without NUL bytes |\n"
        "| *enum* | msgpack str, one of the enumeration's values below |\n"
        "\n"
        "Units: **Wh** energy; **µ/kWh** price in micro-units per kWh (`\"0.15\"` = 150000); "
        "**µ** money in micro-units; **ns** nanoseconds since the Unix epoch. All integers: "
        "no floating point anywhere. A delivery epoch number is the epoch's start in Unix "
        "seconds divided by the epoch length.\n"
        "\n",
        PROTO_VERSION, PROTO_MAX_SIZE, PROTO_MAX_KEYS, PROTO_MAX_DEPTH);
}

static void s_enums (FILE *out)
{
    fprintf (out, "## Enumerations\n"
                  "\n"
                  "| enum | value | C constant | meaning |\n"
                  "|---|---|---|---|\n");
    const proto_enum_info_t *info;
    for (size_t index = 0; (info = proto_enum_info (index)); index++) {
        fprintf (out, "| **%s** | | `proto_%s_t` | ", info->name, info->name);
        s_cell (out, info->doc);
        fprintf (out, " |\n");
        for (size_t value = 0; value < info->count; value++) {
            fprintf (out, "| | `%s` | `%s` | ", info->values[value].wire,
                     info->values[value].cname);
            s_cell (out, info->values[value].doc);
            fprintf (out, " |\n");
        }
    }
    fprintf (out, "\n");
}

static void s_messages (FILE *out)
{
    fprintf (out, "## Messages\n"
                  "\n"
                  "| message | direction | meaning |\n"
                  "|---|---|---|\n");
    for (int kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        const proto_message_info_t *info = proto_message_info ((proto_kind_t) kind);
        fprintf (out, "| [%s](#%s) | %s | ", info->name, info->name, info->direction);
        s_cell (out, info->doc);
        fprintf (out, " |\n");
    }
    for (int kind = 1; kind < PROTO_KIND_COUNT; kind++) {
        const proto_message_info_t *info = proto_message_info ((proto_kind_t) kind);
        fprintf (out, "\n### %s\n\n*%s* — C type `proto_%s_t`, kind `PROTO_%s`.\n\n%s.\n\n",
                 info->name, info->direction, info->name, info->name, info->doc);
        fprintf (out, "| key | C field | type | required | unit | meaning |\n"
                      "|---|---|---|---|---|---|\n");
        fprintf (out, "| `t` | | string | yes | | `\"%s\"` |\n", info->name);
        for (size_t index = 0; index < info->field_count; index++) {
            const proto_field_info_t *field = &info->fields[index];
            fprintf (out, "| `%s` | `%s` | %s%s | %s | %s | ", field->key, field->cname,
                     field->type == PROTO_TYPE_ENUM ? "enum " : "", field->type_name,
                     field->required ? "yes" : "no", field->unit);
            s_cell (out, field->doc);
            fprintf (out, " |\n");
        }
    }
}

static int s_usage (void)
{
    fprintf (stderr, "usage: mce-proto-docs [PATH]\n"
                     "       mce-proto-docs --check PATH\n");
    return 2;
}

//  Whole contents of path into a malloc'd buffer; NULL if it cannot be read.
static char *s_slurp (const char *path, size_t *len)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *copy = open_memstream (&text, &size);
    char chunk[4096];
    size_t got;
    while (copy && (got = fread (chunk, 1, sizeof chunk, file)) > 0)
        fwrite (chunk, 1, got, copy);
    int failed = ferror (file);
    fclose (file);
    if (!copy || fclose (copy) || failed) {
        free (text);
        return NULL;
    }
    *len = size;
    return text;
}

int main (int argc, char **argv)
{
    bool check = argc == 3 && strcmp (argv[1], "--check") == 0;
    if (argc > 3 || (argc == 3 && !check) || (argc == 2 && argv[1][0] == '-'))
        return s_usage ();
    const char *path = argc == 1 ? NULL : argv[argc - 1];

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    if (!out) {
        perror ("mce-proto-docs");
        return 1;
    }
    s_intro (out);
    s_enums (out);
    s_messages (out);
    if (fclose (out)) {
        perror ("mce-proto-docs");
        return 1;
    }

    int rc = 0;
    if (check) {
        size_t old_len = 0;
        char *old = s_slurp (path, &old_len);
        if (!old || old_len != len || memcmp (old, text, len) != 0) {
            fprintf (stderr,
                     "mce-proto-docs: %s is not what messages.def generates; run "
                     "`cmake --build <build dir> --target proto-docs` and commit it\n",
                     path);
            rc = 1;
        }
        free (old);
    }
    else if (path) {
        FILE *file = fopen (path, "wb");
        bool written = file && fwrite (text, 1, len, file) == len;
        if ((file && fclose (file)) || !written) {
            perror (path);
            rc = 1;
        }
    }
    else if (fwrite (text, 1, len, stdout) != len || fflush (stdout))
        rc = 1;
    free (text);
    return rc;
}
