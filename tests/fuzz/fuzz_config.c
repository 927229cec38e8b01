/*  fuzz_config — the configuration loader on arbitrary file contents: every input is either
    loaded or refused with a message, never a crash, a leak or an out-of-range value.
*/
#include "config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    memcpy (text, data, size);
    text[size] = '\0';
    mce_config_t *cfg = malloc (sizeof *cfg);
    char err[CONFIG_ERR_MAX];
    if (config_load_text (cfg, text, err, sizeof err) == 0) {
        if (cfg->market_count < 1 || cfg->market_count > CONFIG_MARKETS_MAX)
            abort ();
        for (int i = 0; i < cfg->market_count; i++)
            if (cfg->markets[i].tick <= 0 || cfg->markets[i].min_qty > cfg->markets[i].max_qty)
                abort ();
    }
    else if (err[0] == '\0')
        abort (); //  a refusal always says why
    free (cfg);
    free (text);
    return 0;
}
