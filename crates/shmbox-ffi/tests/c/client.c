/*
 * A C program over shmbox.h: the C ABI's tests, and a client that other
 * processes (the shmbox command, the FoxPro sample's calls) exchange data
 * with. Built and run by crates/shmbox-ffi/tests/c_api.rs on Linux, and by
 * .ci/windows against shmbox.dll under Wine.
 *
 *   client all PREFIX            every function and status; prints "ok" lines
 *   client write NAME TEXT       open NAME, write TEXT at 0
 *   client read NAME             open NAME, print its text
 *   client serve NAME SIZE       open or create NAME, then obey commands on
 *                                stdin, one per line, answering one line each:
 *     write OFFSET TEXT   -> "wrote N" or "error S MESSAGE"
 *     read N OFFSET       -> "read TEXT" (NULs trimmed)
 *     lock TIMEOUT_MS     -> "locked S" (S: 0 ok, 1 owner died) or "error ..."
 *     unlock              -> "unlocked" or "error ..."
 *     generation          -> "generation G"
 *     exit-holding        -> takes the lock and exits without unlocking
 *     quit                -> closes and exits
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmbox.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

static int failures = 0;

#define CHECK(cond, what)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            printf("ok %s\n", what);                                          \
        } else {                                                              \
            char message_[512];                                               \
            shmbox_last_error_message(message_, sizeof message_);             \
            printf("FAILED %s (line %d; last error: %s)\n", what, __LINE__,   \
                   message_);                                                 \
            failures++;                                                       \
        }                                                                     \
        fflush(stdout);                                                       \
    } while (0)

static int last_error_mentions(const char *text) {
    char message[512];
    shmbox_last_error_message(message, sizeof message);
    return strstr(message, text) != NULL;
}

/* ---- threads: a second thread tries the lock that the first holds ------ */

struct other_thread {
    shmbox_segment *seg;
    int unlock_status;
    int lock_status;
};

#ifdef _WIN32
static DWORD WINAPI other_thread_main(LPVOID arg)
#else
static void *other_thread_main(void *arg)
#endif
{
    struct other_thread *t = arg;
    t->unlock_status = shmbox_unlock(t->seg);
    t->lock_status = shmbox_lock(t->seg, 50);
    if (t->lock_status >= 0)
        shmbox_unlock(t->seg);
    return 0;
}

static void run_other_thread(struct other_thread *t) {
#ifdef _WIN32
    HANDLE thread = CreateThread(NULL, 0, other_thread_main, t, 0, NULL);
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
#else
    pthread_t thread;
    pthread_create(&thread, NULL, other_thread_main, t);
    pthread_join(thread, NULL);
#endif
}

/* ---- a process that dies holding the lock, mid-write ---------------------- */

#ifndef _WIN32
/* Forks a child that opens `name`, locks it, writes "torn" and exits without
 * unlocking (so the write is never committed). 0 if it did so. */
static int die_mid_write(const char *name) {
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) {
        shmbox_segment *mine = NULL;
        if (shmbox_open(name, &mine) != SHMBOX_OK || shmbox_lock(mine, 1000) != SHMBOX_OK ||
            shmbox_write(mine, 0, "torn", 4) != 4)
            _exit(2);
        _exit(0); /* holding the lock, mid-write */
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}
#endif

/* ---- every function, every status ---------------------------------------- */

static int all(const char *prefix) {
    char name[200], other[220], buf[256];
    shmbox_segment *a = NULL, *b = NULL, *missing = NULL;
    uint64_t generation = 0;

    CHECK(strlen(shmbox_version()) >= 5 && strchr(shmbox_version(), '.'), "version");

    snprintf(name, sizeof name, "%s-api", prefix);
    CHECK(shmbox_create(name, 64, &a) == SHMBOX_OK && a != NULL, "create");
    CHECK(shmbox_create(name, 64, &b) == SHMBOX_ERR_ALREADY_EXISTS, "create: ALREADY_EXISTS");
    CHECK(last_error_mentions(name), "the message names the segment");

    snprintf(other, sizeof other, "%s-none", prefix);
    CHECK(shmbox_open(other, &missing) == SHMBOX_ERR_NOT_FOUND && missing == NULL,
          "open: NOT_FOUND");
    CHECK(shmbox_open_or_create(name, 128, &b) == SHMBOX_ERR_SIZE_MISMATCH,
          "open_or_create: SIZE_MISMATCH");
    CHECK(shmbox_open_or_create(name, 64, &b) == SHMBOX_OK && b != NULL && b != a,
          "open_or_create of an existing segment");
    CHECK(shmbox_size(a) == 64 && shmbox_size(b) == 64, "size");
    CHECK(shmbox_generation(a) == 0, "generation 0");

    /* Writes and reads clamp at the end, as the sample's do. */
    CHECK(shmbox_write(a, 0, "hello", 5) == 5, "write");
    CHECK(shmbox_write(a, 60, "abcdefgh", 8) == 4, "write: clamped at the end");
    CHECK(shmbox_write(a, 64, "x", 1) == 0, "write at the end: 0 bytes");
    CHECK(shmbox_write(a, 65, "x", 1) == SHMBOX_ERR_OUT_OF_RANGE, "write: OUT_OF_RANGE");
    memset(buf, 0, sizeof buf);
    CHECK(shmbox_read(b, 0, buf, 5) == 5 && memcmp(buf, "hello", 5) == 0, "read");
    CHECK(shmbox_read(b, 60, buf, 100) == 4 && memcmp(buf, "abcd", 4) == 0,
          "read: clamped at the end");
    CHECK(shmbox_read(b, 65, buf, 1) == SHMBOX_ERR_OUT_OF_RANGE, "read: OUT_OF_RANGE");
    CHECK(shmbox_generation(b) == 2, "generation counts commits");

    /* The lock, across calls, and what it keeps out. */
    CHECK(shmbox_lock(a, 1000) == SHMBOX_OK, "lock");
    CHECK(shmbox_lock(a, 0) == SHMBOX_ERR_INVALID_ARGUMENT, "lock twice: INVALID_ARGUMENT");
    CHECK(shmbox_lock(b, 50) == SHMBOX_ERR_TIMEOUT, "another handle waits: TIMEOUT");
    CHECK(shmbox_write(a, 0, "under", 5) == 5, "write under the held lock");
    CHECK(shmbox_read(a, 0, buf, 5) == 5 && memcmp(buf, "under", 5) == 0,
          "read under the held lock");
    CHECK(shmbox_generation(a) == 2, "no commit before the unlock");
    CHECK(shmbox_unlock(b) == SHMBOX_ERR_NOT_OWNER, "unlock of a handle not locked: NOT_OWNER");
    {
        struct other_thread t = {a, 0, 0};
        run_other_thread(&t);
        CHECK(t.unlock_status == SHMBOX_ERR_NOT_OWNER, "unlock from another thread: NOT_OWNER");
        CHECK(t.lock_status == SHMBOX_ERR_TIMEOUT, "lock from another thread: TIMEOUT");
    }
    CHECK(shmbox_unlock(a) == SHMBOX_OK, "unlock");
    CHECK(shmbox_generation(b) == 3, "the unlock committed one generation");
    CHECK(shmbox_unlock(a) == SHMBOX_ERR_NOT_OWNER, "unlock twice: NOT_OWNER");
    CHECK(last_error_mentions(name), "NOT_OWNER names the segment");

    /* Change notification. */
    generation = 0;
    CHECK(shmbox_wait_for_change(a, 3, 50, &generation) == SHMBOX_ERR_TIMEOUT,
          "wait_for_change: TIMEOUT");
    CHECK(shmbox_write(b, 0, "news", 4) == 4, "a write to wait for");
    CHECK(shmbox_wait_for_change(a, 3, 1000, &generation) == SHMBOX_OK && generation == 4,
          "wait_for_change sees it");
    CHECK(shmbox_wait_for_change(a, 3, 0, NULL) == SHMBOX_OK, "wait_for_change: NULL result");

    /* Bad arguments are errors, never crashes. */
    CHECK(shmbox_create(NULL, 64, &missing) == SHMBOX_ERR_INVALID_ARGUMENT, "NULL name");
    CHECK(shmbox_create(other, 0, &missing) == SHMBOX_ERR_INVALID_ARGUMENT, "size 0");
    CHECK(shmbox_create("a/b", 64, &missing) == SHMBOX_ERR_INVALID_ARGUMENT, "bad name");
    CHECK(shmbox_open(name, NULL) == SHMBOX_ERR_INVALID_ARGUMENT, "NULL out");
    CHECK(shmbox_write(NULL, 0, "x", 1) == SHMBOX_ERR_INVALID_ARGUMENT, "NULL handle");
    CHECK(shmbox_write(a, 0, NULL, 5) == SHMBOX_ERR_INVALID_ARGUMENT, "NULL data");
    CHECK(shmbox_read(a, 0, NULL, 5) == SHMBOX_ERR_INVALID_ARGUMENT, "NULL buffer");
    CHECK(shmbox_write(a, 0, NULL, 0) == 0, "NULL data of length 0");
    CHECK(shmbox_write((shmbox_segment *)(uintptr_t)0x7654321, 0, "x", 1) ==
              SHMBOX_ERR_INVALID_ARGUMENT,
          "a made-up handle");
    CHECK(shmbox_size(NULL) == 0 && shmbox_generation(NULL) == 0, "size and generation of NULL");
    CHECK(shmbox_lock(NULL, 0) == SHMBOX_ERR_INVALID_ARGUMENT, "lock NULL");
    CHECK(shmbox_unlock(NULL) == SHMBOX_ERR_INVALID_ARGUMENT, "unlock NULL");
    CHECK(shmbox_wait_for_change(NULL, 0, 0, NULL) == SHMBOX_ERR_INVALID_ARGUMENT,
          "wait_for_change NULL");
    shmbox_close(NULL);

    /* The last error message: its length, and truncation. */
    {
        char small[8];
        size_t needed = shmbox_last_error_message(NULL, 0);
        size_t again = shmbox_last_error_message(small, sizeof small);
        CHECK(needed > 8 && again == needed && strlen(small) == 7, "last_error_message truncates");
    }

#ifndef _WIN32
    /* A foreign or broken file under the name. */
    {
        char path[300];
        int fd;
        snprintf(other, sizeof other, "%s-perm", prefix);
        snprintf(path, sizeof path, "/dev/shm/shmbox.%s", other);
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
        fchmod(fd, 0666);
        write(fd, "x", 1);
        close(fd);
        CHECK(shmbox_open(other, &missing) == SHMBOX_ERR_PERMISSION,
              "every user may write it: PERMISSION");
        unlink(path);

        snprintf(other, sizeof other, "%s-corrupt", prefix);
        snprintf(path, sizeof path, "/dev/shm/shmbox.%s", other);
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
        memset(buf, 'z', sizeof buf);
        write(fd, buf, sizeof buf);
        write(fd, buf, sizeof buf);
        close(fd);
        CHECK(shmbox_open(other, &missing) == SHMBOX_ERR_CORRUPT, "not a segment: CORRUPT");
        unlink(path);
    }

    /* A writer that dies in the middle of a write: the next locker is told,
     * and a reader without the lock is refused torn data. */
    CHECK(die_mid_write(name) == 0, "a writer died mid-write");
    CHECK(shmbox_lock(b, 1000) == SHMBOX_OWNER_DIED, "lock: OWNER_DIED");
    CHECK(shmbox_read(b, 0, buf, 4) == 4 && memcmp(buf, "torn", 4) == 0,
          "the lock's holder reads what is there");
    CHECK(shmbox_write(b, 0, "mend", 4) == 4, "a write under the lock repairs it");
    CHECK(shmbox_unlock(b) == SHMBOX_OK, "unlock after the repair");
    CHECK(shmbox_read(a, 0, buf, 4) == 4 && memcmp(buf, "mend", 4) == 0, "repaired");
    CHECK(die_mid_write(name) == 0, "another writer died mid-write");
    CHECK(shmbox_read(b, 0, buf, 4) == SHMBOX_ERR_INCONSISTENT, "read: INCONSISTENT");
    CHECK(shmbox_write(a, 0, "whole", 5) == 5 && shmbox_read(b, 0, buf, 5) == 5,
          "a write repairs it again");

    /* A child made by fork cannot use its parent's handle. */
    {
        pid_t pid = fork();
        int status = 0;
        if (pid == 0)
            _exit(shmbox_write(a, 0, "child", 5) == SHMBOX_ERR_OTHER ? 0 : 3);
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child's handle: OTHER");
    }
#endif

    /* Closing: twice is harmless; a closed handle is refused. */
    CHECK(shmbox_lock(a, 1000) == SHMBOX_OK, "lock before close");
    shmbox_close(a);
    CHECK(shmbox_lock(b, 1000) == SHMBOX_OK, "close released the lock");
    CHECK(shmbox_unlock(b) == SHMBOX_OK, "and it can be unlocked");
    shmbox_close(a);
    CHECK(shmbox_write(a, 0, "x", 1) == SHMBOX_ERR_INVALID_ARGUMENT, "a closed handle");
    CHECK(last_error_mentions("not an open segment handle"), "the message says it is closed");
    shmbox_close(b);
    CHECK(shmbox_open(name, &missing) == SHMBOX_ERR_NOT_FOUND,
          "the last close removed the segment");

    if (failures == 0)
        printf("all passed\n");
    return failures == 0 ? 0 : 1;
}

/* ---- one-shot commands -------------------------------------------------- */

static int open_existing(const char *name, shmbox_segment **seg) {
    int status = shmbox_open(name, seg);
    if (status != SHMBOX_OK) {
        char message[512];
        shmbox_last_error_message(message, sizeof message);
        fprintf(stderr, "client: %s\n", message);
    }
    return status;
}

static int write_text(const char *name, const char *text) {
    shmbox_segment *seg = NULL;
    intptr_t n;
    if (open_existing(name, &seg) != SHMBOX_OK)
        return 1;
    n = shmbox_write(seg, 0, text, strlen(text));
    shmbox_close(seg);
    printf("wrote %ld\n", (long)n);
    return n == (intptr_t)strlen(text) ? 0 : 1;
}

static int read_text(const char *name) {
    shmbox_segment *seg = NULL;
    char *buf;
    size_t size;
    intptr_t n;
    if (open_existing(name, &seg) != SHMBOX_OK)
        return 1;
    size = shmbox_size(seg);
    buf = calloc(size + 1, 1);
    n = shmbox_read(seg, 0, buf, size);
    shmbox_close(seg);
    if (n < 0)
        return 1;
    printf("%s\n", buf);
    free(buf);
    return 0;
}

/* ---- the command loop ---------------------------------------------------- */

static void answer_error(int status) {
    char message[512];
    shmbox_last_error_message(message, sizeof message);
    printf("error %d %s\n", status, message);
}

static int serve(const char *name, size_t size) {
    shmbox_segment *seg = NULL;
    char line[4096];
    int status = shmbox_open_or_create(name, size, &seg);
    if (status != SHMBOX_OK) {
        answer_error(status);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "write ", 6) == 0) {
            char *text = NULL;
            unsigned long offset = strtoul(line + 6, &text, 10);
            intptr_t n;
            if (*text == ' ')
                text++;
            n = shmbox_write(seg, offset, text, strlen(text));
            if (n < 0)
                answer_error((int)n);
            else
                printf("wrote %ld\n", (long)n);
        } else if (strncmp(line, "read ", 5) == 0) {
            char *rest = NULL;
            unsigned long n = strtoul(line + 5, &rest, 10);
            unsigned long offset = strtoul(rest, NULL, 10);
            char *buf = calloc(n + 1, 1);
            intptr_t got = shmbox_read(seg, offset, buf, n);
            if (got < 0)
                answer_error((int)got);
            else
                printf("read %s\n", buf);
            free(buf);
        } else if (strncmp(line, "lock ", 5) == 0) {
            int s = shmbox_lock(seg, (uint32_t)strtoul(line + 5, NULL, 10));
            if (s < 0)
                answer_error(s);
            else
                printf("locked %d\n", s);
        } else if (strcmp(line, "unlock") == 0) {
            int s = shmbox_unlock(seg);
            if (s < 0)
                answer_error(s);
            else
                printf("unlocked\n");
        } else if (strcmp(line, "generation") == 0) {
            printf("generation %llu\n", (unsigned long long)shmbox_generation(seg));
        } else if (strcmp(line, "exit-holding") == 0) {
            int s = shmbox_lock(seg, 5000);
            printf("exiting with the lock (%d)\n", s);
            fflush(stdout);
#ifdef _WIN32
            ExitProcess(0);
#else
            _exit(0);
#endif
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            printf("unknown command\n");
        }
        fflush(stdout);
    }
    shmbox_close(seg);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "all") == 0)
        return all(argv[2]);
    if (argc == 4 && strcmp(argv[1], "write") == 0)
        return write_text(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "read") == 0)
        return read_text(argv[2]);
    if (argc == 4 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2], strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: client all PREFIX | write NAME TEXT | read NAME | serve NAME SIZE\n");
    return 2;
}
