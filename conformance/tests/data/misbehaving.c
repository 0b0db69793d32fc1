/* A PKCS#11 module that wraps another one (WRAPPED_MODULE) but crashes in C_GenerateRandom
 * and hangs in C_SeedRandom: the suite must fail those cases and still write its report. */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST list;

static CK_RV crash_random(CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG n)
{
    (void)h; (void)p; (void)n;
    *(volatile int *)0 = 1; /* a real fault, as a buggy module would make */
    return CKR_GENERAL_ERROR;
}

static CK_RV hang_seed(CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG n)
{
    (void)h; (void)p; (void)n;
    for (;;)
        sleep(1);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
    if (pp == NULL)
        return CKR_ARGUMENTS_BAD;
    if (list.C_Initialize == NULL) {
        const char *path = getenv("WRAPPED_MODULE");
        void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
        CK_FUNCTION_LIST_PTR real = NULL;
        if (get == NULL || get(&real) != CKR_OK || real == NULL)
            return CKR_GENERAL_ERROR;
        list = *real;
        list.C_GenerateRandom = crash_random;
        list.C_SeedRandom = hang_seed;
    }
    *pp = &list;
    return CKR_OK;
}
