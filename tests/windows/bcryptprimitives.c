/*
 * Test-only stand-in for bcryptprimitives.dll under Wine 8 (Debian 12).
 *
 * Rust's standard library on Windows draws its randomness from ProcessPrng
 * in bcryptprimitives.dll. Windows 10 and later and Wine 9 and later have
 * it; Wine 8 does not, so a Windows test binary cannot start there. This
 * file is built next to the test binary only (.ci/windows.sh), where
 * Windows loads it before the system's copy. ProcessPrng forwards to
 * RtlGenRandom (advapi32 SystemFunction036), the system generator. It is
 * never packaged or shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
