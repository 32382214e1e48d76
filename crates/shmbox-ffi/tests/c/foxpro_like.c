/*
 * The calls that examples/foxpro/shmbox.prg makes, in the same order, with
 * the types its DECLAREs give them: what 32-bit Visual FoxPro does, for the
 * tests to run where FoxPro cannot. Built for i686 only (FoxPro's INTEGER is
 * 32 bits, and so is a handle in a 32-bit process).
 *
 * Like FoxPro's DECLARE ... IN shmbox.dll, it loads the DLL by name and
 * finds each function by its undecorated name (GetProcAddress), and calls
 * it as stdcall.
 *
 *   foxpro_like NAME SIZE     SharedMemory.Init(NAME, SIZE); prints
 *                             "ready ERRORCODE", then obeys stdin:
 *     size                -> "size N"                 GetSharedMemorySize()
 *     write OFFSET TEXT   -> "wrote N errorcode E[ MESSAGE]"
 *                                                     WriteToSharedMemory(TEXT, OFFSET)
 *     read N OFFSET       -> "read TEXT errorcode E"  ReadFromSharedMemory(N, OFFSET)
 *     quit                -> SharedMemory.Destroy, then exits
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DECLARE INTEGER shmbox_open_or_create IN shmbox.dll STRING, INTEGER, INTEGER @ */
typedef int(__stdcall *open_or_create_fn)(const char *name, int size, int *handle);
/* DECLARE shmbox_close IN shmbox.dll INTEGER */
typedef void(__stdcall *close_fn)(int handle);
/* DECLARE INTEGER shmbox_size IN shmbox.dll INTEGER */
typedef int(__stdcall *size_fn)(int handle);
/* DECLARE INTEGER shmbox_write IN shmbox.dll INTEGER, INTEGER, STRING, INTEGER */
typedef int(__stdcall *write_fn)(int handle, int offset, const char *data, int len);
/* DECLARE INTEGER shmbox_read IN shmbox.dll INTEGER, INTEGER, STRING @, INTEGER */
typedef int(__stdcall *read_fn)(int handle, int offset, char *buffer, int len);
/* DECLARE INTEGER shmbox_last_error_message IN shmbox.dll STRING @, INTEGER */
typedef int(__stdcall *message_fn)(char *buffer, int len);

static open_or_create_fn shmbox_open_or_create;
static close_fn shmbox_close;
static size_fn shmbox_size;
static write_fn shmbox_write;
static read_fn shmbox_read;
static message_fn shmbox_last_error_message;

/* The class's properties. */
static int hSegment = 0, bufsize = 0, errorcode = 0;
static char errormessage[1024] = "";

static FARPROC find(HMODULE dll, const char *name) {
    FARPROC f = GetProcAddress(dll, name);
    if (!f) {
        printf("ready -1000 shmbox.dll does not export %s undecorated\n", name);
        exit(1);
    }
    return f;
}

/* PROTECTED PROCEDURE declare */
static void declare(void) {
    HMODULE dll = LoadLibraryA("shmbox.dll");
    if (!dll) {
        printf("ready -1001 cannot load shmbox.dll (error %lu)\n", GetLastError());
        exit(1);
    }
    shmbox_open_or_create = (open_or_create_fn)find(dll, "shmbox_open_or_create");
    shmbox_close = (close_fn)find(dll, "shmbox_close");
    shmbox_size = (size_fn)find(dll, "shmbox_size");
    shmbox_write = (write_fn)find(dll, "shmbox_write");
    shmbox_read = (read_fn)find(dll, "shmbox_read");
    shmbox_last_error_message = (message_fn)find(dll, "shmbox_last_error_message");
}

/* PROTECTED PROCEDURE SetError(nStatus) */
static void set_error(int status) {
    char message[1024];
    memset(message, 0, sizeof message); /* REPLICATE(CHR(0), 1024) */
    shmbox_last_error_message(message, 1024);
    errorcode = status;
    strcpy(errormessage, message); /* LEFT(cMessage, AT(CHR(0), cMessage) - 1) */
}

/* PROTECTED PROCEDURE InitMapping */
static void init_mapping(const char *name) {
    int handle = 0;
    int status = shmbox_open_or_create(name, bufsize, &handle);
    if (status != 0) {
        set_error(status);
    } else {
        hSegment = handle;
        bufsize = shmbox_size(handle);
    }
}

/* FUNCTION WriteToSharedMemory(cBuffer, nOffset) */
static int write_to_shared_memory(const char *buffer, int offset) {
    int written;
    errorcode = 0;
    if (hSegment == 0)
        return 0;
    written = shmbox_write(hSegment, offset, buffer, (int)strlen(buffer));
    if (written < 0) {
        set_error(written);
        written = 0;
    }
    return written;
}

/* FUNCTION ReadFromSharedMemory(nBytesToRead, nOffset); the caller frees. */
static char *read_from_shared_memory(int bytes_to_read, int offset) {
    char *buffer;
    int got;
    errorcode = 0;
    if (hSegment == 0)
        return calloc(1, 1);
    if (bytes_to_read > bufsize)
        bytes_to_read = bufsize;
    buffer = calloc(bytes_to_read + 1, 1); /* REPLICATE(CHR(0), nBytesToRead) */
    got = shmbox_read(hSegment, offset, buffer, bytes_to_read);
    if (got < 0) {
        set_error(got);
        buffer[0] = 0;
    } else {
        buffer[got] = 0; /* LEFT(cBuffer, nRead) */
    }
    return buffer;
}

/* PROTECTED PROCEDURE ReleaseMapping */
static void release_mapping(void) {
    if (hSegment != 0) {
        shmbox_close(hSegment);
        hSegment = 0;
    }
}

int main(int argc, char **argv) {
    char line[4096];
    if (argc != 3) {
        fprintf(stderr, "usage: foxpro_like NAME SIZE\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    /* PROCEDURE Init(cMappingName, nBufsize) */
    declare();
    bufsize = atoi(argv[2]);
    init_mapping(argv[1]);
    printf("ready %d\n", errorcode);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, "size") == 0) {
            printf("size %d\n", bufsize); /* GetSharedMemorySize() */
        } else if (strncmp(line, "write ", 6) == 0) {
            char *text;
            int offset = (int)strtol(line + 6, &text, 10), n;
            if (*text == ' ')
                text++;
            n = write_to_shared_memory(text, offset);
            if (errorcode != 0)
                printf("wrote %d errorcode %d %s\n", n, errorcode, errormessage);
            else
                printf("wrote %d errorcode 0\n", n);
        } else if (strncmp(line, "read ", 5) == 0) {
            char *rest;
            int n = (int)strtol(line + 5, &rest, 10);
            int offset = (int)strtol(rest, NULL, 10);
            char *text = read_from_shared_memory(n, offset);
            printf("read %s errorcode %d\n", text, errorcode);
            free(text);
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            printf("unknown %s\n", line);
        }
    }
    release_mapping(); /* PROCEDURE Destroy */
    return 0;
}
