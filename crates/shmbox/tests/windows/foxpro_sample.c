/*
 * The FoxPro sample's SharedMemory class (../shared/seeds: "使用共享内存在
 * 应用程序（进程）之间交换数据"), call for call, as a console program that
 * the interop tests drive through its standard input:
 *
 *   foxpro_sample NAME SIZE
 *
 * On start it does what the class's InitMapping does and prints
 * "ready ERRORCODE": CreateMutex(0, 0, "sync_"+NAME), then
 * CreateFileMapping(INVALID_HANDLE_VALUE, 0, PAGE_READWRITE, 0, SIZE, NAME)
 * and MapViewOfFile(..., FILE_MAP_ALL_ACCESS, 0, 0, SIZE).
 *
 * Then one command per line:
 *   write OFFSET TEXT  WriteToSharedMemory: WaitForSingleObject(mutex, 5000),
 *                      RtlMoveMemory of MIN(SIZE-OFFSET, LEN(TEXT)) bytes,
 *                      ReleaseMutex. Prints "wrote N", or "busy RESULT" if
 *                      the wait did not return 0 (as the class, which then
 *                      writes nothing).
 *   read               ReadFromSharedMemory: the same around a copy of SIZE
 *                      bytes. Prints "read TEXT" (up to the first NUL).
 *   lock               WaitForSingleObject(mutex, 5000) alone; prints
 *                      "locked" or "busy RESULT".
 *   unlock             ReleaseMutex; prints "unlocked" or "not owner".
 *   exit               ExitProcess(0), whatever is held: a holder that
 *                      dies.
 * It ends on end of input as the class's Destroy does.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static HANDLE hSyncObject, hMapping;
static char *hBuffer;
static DWORD bufsize;

static int LockAccess(DWORD *result)
{
    *result = WaitForSingleObject(hSyncObject, 5000);
    return *result == WAIT_OBJECT_0;
}

static void ReleaseAccess(void)
{
    ReleaseMutex(hSyncObject);
}

int main(int argc, char **argv)
{
    char name[512], line[4096];
    DWORD errorcode = 0, result;

    if (argc != 3) {
        fprintf(stderr, "usage: foxpro_sample NAME SIZE\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    bufsize = (DWORD)strtoul(argv[2], NULL, 10);

    snprintf(name, sizeof name, "sync_%s", argv[1]);
    hSyncObject = CreateMutexA(0, 0, name);
    if (hSyncObject == 0) {
        printf("ready %lu\n", GetLastError());
        return 1;
    }
    hMapping = CreateFileMappingA(INVALID_HANDLE_VALUE, 0, PAGE_READWRITE, 0, bufsize, argv[1]);
    if (hMapping == 0 || hMapping == INVALID_HANDLE_VALUE) {
        printf("ready %lu\n", GetLastError());
        return 1;
    }
    errorcode = GetLastError(); /* 183 (ERROR_ALREADY_EXISTS) if it existed */
    hBuffer = MapViewOfFile(hMapping, FILE_MAP_ALL_ACCESS, 0, 0, bufsize);
    if (hBuffer == 0) {
        printf("ready %lu\n", GetLastError());
        return 1;
    }
    printf("ready %lu\n", errorcode);

    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "write ", 6) == 0) {
            char *text;
            DWORD offset = (DWORD)strtoul(line + 6, &text, 10), n;
            if (*text == ' ')
                text++;
            n = (DWORD)strlen(text);
            if (LockAccess(&result)) {
                if (bufsize - offset < n)
                    n = bufsize - offset;
                RtlMoveMemory(hBuffer + offset, text, n);
                ReleaseAccess();
                printf("wrote %lu\n", n);
            } else {
                printf("busy %lu\n", result);
            }
        } else if (strcmp(line, "read") == 0) {
            if (LockAccess(&result)) {
                char *copy = calloc(bufsize + 1, 1);
                RtlMoveMemory(copy, hBuffer, bufsize);
                ReleaseAccess();
                printf("read %s\n", copy);
                free(copy);
            } else {
                printf("busy %lu\n", result);
            }
        } else if (strcmp(line, "lock") == 0) {
            if (LockAccess(&result))
                printf("locked\n");
            else
                printf("busy %lu\n", result);
        } else if (strcmp(line, "unlock") == 0) {
            printf(ReleaseMutex(hSyncObject) ? "unlocked\n" : "not owner\n");
        } else if (strcmp(line, "exit") == 0) {
            ExitProcess(0);
        } else {
            printf("unknown %s\n", line);
        }
    }

    UnmapViewOfFile(hBuffer);
    CloseHandle(hMapping);
    CloseHandle(hSyncObject);
    return 0;
}
