/*  crc32c — CRC-32C (Castagnoli), the checksum of the journal's record framing.

    Castagnoli rather than zlib's CRC-32 because x86-64 computes it in hardware (SSE4.2) and
    it detects more error patterns in the record sizes we write. Debian ships no CRC-32C
    library among our dependencies, so it is written here: the SSE4.2 instruction when the
    CPU has it, a table-driven loop otherwise. Both give identical results.
*/
#ifndef MCE_CRC32C_H
#define MCE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Start with crc = 0; chainable: crc32c (crc32c (0, a, n), b, m) == crc32c (0, a||b, n+m).
//  crc32c (0, "123456789", 9) == 0xE3069283.
uint32_t crc32c (uint32_t crc, const void *data, size_t len);

//  The portable path alone, for tests that compare it with the hardware path.
uint32_t crc32c_sw (uint32_t crc, const void *data, size_t len);

//  True when crc32c uses the SSE4.2 instruction on this CPU.
bool crc32c_hw_available (void);

#endif
