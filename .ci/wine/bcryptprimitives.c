/* A stand-in for bcryptprimitives.dll, which Wine 8 lacks and Rust's std
 * imports (ProcessPrng, for HashMap keys and the like): without it every Rust
 * executable fails to start under Wine with status 53. It draws the bytes
 * from RtlGenRandom (advapi32's SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
