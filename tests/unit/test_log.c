/*  test_log — a log line stays one line whatever it quotes: control characters from outside
    (a URL path, a topic, a user id) are written as \xNN, so they can neither forge a line nor
    drive a terminal.
*/
#include "log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Logs one line with stderr sent to a file, and returns what was written (to free).
static char *s_logged (const char *text)
{
    char path[] = "/tmp/mce-test-log-XXXXXX";
    int fd = mkstemp (path);
    cr_assert_geq (fd, 0);
    unlink (path);
    int saved = dup (STDERR_FILENO);
    cr_assert_geq (saved, 0);
    cr_assert_geq (dup2 (fd, STDERR_FILENO), 0);
    log_init ("test");
    log_warn ("http", "unknown path %s", text);
    cr_assert_geq (dup2 (saved, STDERR_FILENO), 0);
    close (saved);
    off_t size = lseek (fd, 0, SEEK_END);
    char *out = calloc (1, (size_t) size + 1);
    cr_assert_eq (pread (fd, out, (size_t) size, 0), size);
    close (fd);
    return out;
}

Test (log, control_characters_cannot_forge_a_line_or_drive_a_terminal)
{
    char *out = s_logged ("/api/x\n2026-12-07T00:00:00.000000Z ERROR mce-gateway forged\r\x1b[31m"
                          "\x7f\t ok µ");
    cr_assert_eq (strchr (out, '\n'), out + strlen (out) - 1, "one line: %s", out);
    cr_assert_null (strchr (out, '\r'));
    cr_assert_null (strchr (out, '\x1b'));
    cr_assert_null (strchr (out, '\x7f'));
    cr_assert_null (strchr (out, '\t'));
    cr_assert_not_null (strstr (out, "unknown path /api/x\\x0a2026-12-07T00:00:00.000000Z ERROR "
                                     "mce-gateway forged\\x0d\\x1b[31m\\x7f\\x09 ok µ\n"),
                        "%s", out);
    free (out);
}

Test (log, a_long_line_is_cut_and_still_ends_the_line)
{
    char text[8192];
    memset (text, '\n', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    char *out = s_logged (text);
    size_t len = strlen (out);
    cr_assert_gt (len, 1000);
    cr_assert_leq (len, 2048);
    cr_assert_eq (strchr (out, '\n'), out + len - 1, "one line, newline-terminated");
    //  only whole escapes: the line ends in "\x0a" and its newline
    cr_assert_eq (strncmp (out + len - 5, "\\x0a\n", 5), 0, "%s", out + len - 8);
    free (out);
}
