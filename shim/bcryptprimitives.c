/*
 * bcryptprimitives.dll shim for Wine 8, whose builtin lacks ProcessPrng.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll
 * for its random numbers (HashMap seeds). Wine 8's builtin DLL does not
 * export it, so a Rust .exe fails to start there. This tiny DLL, placed
 * beside the .exe (a DLL in the application's folder is found first),
 * exports ProcessPrng on top of advapi32's SystemFunction036 (RtlGenRandom).
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -shared -o bcryptprimitives.dll \
 *            bcryptprimitives.c -ladvapi32
 * Only for testing under Wine; real Windows (10 and later) has ProcessPrng.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* SystemFunction036 takes a ULONG: feed large requests in chunks. */
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
