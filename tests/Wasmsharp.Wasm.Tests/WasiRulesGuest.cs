namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// The guest of <see cref="WasiConformanceTests"/>: checks one WASI preview 1 rule per run (argv[1]), prints "ok"
/// or a "FAIL: ..." line per broken expectation, exit 0 / 1. A scratch directory is preopened at fd 3. Built twice
/// by <see cref="GuestModules"/>: plain ("wasi_rules": Wasmtime's own fd functions) and with SOCKETS defined
/// ("wasi_rules_sock": it imports the preview 1 sock_* calls, so it gets our socket-aware fd_* shadows and our
/// sock_* functions — the rules must hold there too).
/// </summary>
internal static class WasiRulesGuest
{
    public const string Source = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include <wasi/api.h>

        static int fails;
        #define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } } while (0)
        #define MS 1000000ull
        #define CLOSED 1000 /* never opened */

        static __wasi_timestamp_t now(__wasi_clockid_t id) { __wasi_timestamp_t t = 0; return __wasi_clock_time_get(id, 1, &t) == 0 ? t : 0; }

        static __wasi_subscription_t sub __attribute__((aligned(8)));
        static __wasi_event_t ev __attribute__((aligned(8)));
        static __wasi_size_t nevents;

        static __wasi_errno_t poll_clock(__wasi_clockid_t id, __wasi_timestamp_t timeout, __wasi_subclockflags_t flags) {
            memset(&sub, 0, sizeof sub);
            memset(&ev, 0xAA, sizeof ev);
            sub.userdata = 0x1234;
            sub.u.tag = __WASI_EVENTTYPE_CLOCK;
            sub.u.u.clock.id = id;
            sub.u.u.clock.timeout = timeout;
            sub.u.u.clock.flags = flags;
            nevents = 0xDEAD;
            return __wasi_poll_oneoff(&sub, &ev, 1, &nevents);
        }

        static void clock_fired(const char *what, __wasi_errno_t err) {
            CHECK(err == 0 && nevents == 1 && ev.userdata == 0x1234 && ev.error == 0 && ev.type == __WASI_EVENTTYPE_CLOCK,
                  "%s: errno=%u nevents=%u userdata=%llx error=%u type=%u", what, err, (unsigned)nevents,
                  (unsigned long long)ev.userdata, ev.error, ev.type);
        }

        static __wasi_fd_t open_file(const char *name) {
            __wasi_fd_t fd;
            __wasi_rights_t rights = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL;
            __wasi_errno_t e = __wasi_path_open(3, 0, name, __WASI_OFLAGS_CREAT, rights, 0, 0, &fd);
            if (e != 0) { printf("FAIL: path_open %s: errno=%u\n", name, e); exit(2); }
            return fd;
        }

        static int stat_of(__wasi_fd_t fd, __wasi_fdstat_t *st) { return __wasi_fd_fdstat_get(fd, st); }

        /* A terminal's fd reports a character device without seek/tell rights; a regular file REGULAR_FILE with them. */
        static void expect_kind(const char *what, __wasi_fd_t fd, int tty) {
            __wasi_fdstat_t st;
            int e = stat_of(fd, &st);
            int seek = (st.fs_rights_base & (__WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL)) != 0;
            if (tty)
                CHECK(e == 0 && st.fs_filetype == __WASI_FILETYPE_CHARACTER_DEVICE && !seek && isatty(fd) == 1,
                      "%s (fd %u) should be a terminal: errno=%d type=%u seek/tell=%d isatty=%d", what, fd, e, st.fs_filetype, seek, isatty(fd));
            else
                CHECK(e == 0 && st.fs_filetype != __WASI_FILETYPE_CHARACTER_DEVICE && isatty(fd) == 0,
                      "%s (fd %u) should be no terminal: errno=%d type=%u isatty=%d", what, fd, e, st.fs_filetype, isatty(fd));
        }

        static void expect_regular(const char *what, __wasi_fd_t fd) {
            __wasi_fdstat_t st;
            int e = stat_of(fd, &st);
            __wasi_rights_t both = __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL;
            CHECK(e == 0 && st.fs_filetype == __WASI_FILETYPE_REGULAR_FILE && (st.fs_rights_base & both) == both && isatty(fd) == 0,
                  "%s (fd %u) should be a regular file with seek/tell: errno=%d type=%u rights=%llx isatty=%d", what, fd, e,
                  st.fs_filetype, (unsigned long long)st.fs_rights_base, isatty(fd));
        }

        int main(int argc, char **argv) {
            const char *rule = argc > 1 ? argv[1] : "";
            if (!strcmp(rule, "poll_zero_subscriptions")) {
                /* witx: "If nsubscriptions is 0, returns errno::inval." Nothing is written. */
                nevents = 0xDEAD;
                __wasi_errno_t e = __wasi_poll_oneoff(&sub, &ev, 0, &nevents);
                CHECK(e == __WASI_ERRNO_INVAL && nevents == 0xDEAD, "errno=%u nevents=%u", e, (unsigned)nevents);
            } else if (!strcmp(rule, "poll_clock_relative")) {
                __wasi_timestamp_t t0 = now(__WASI_CLOCKID_MONOTONIC);
                clock_fired("relative 30 ms", poll_clock(__WASI_CLOCKID_MONOTONIC, 30 * MS, 0));
                __wasi_timestamp_t took = now(__WASI_CLOCKID_MONOTONIC) - t0;
                CHECK(took >= 30 * MS, "returned after %llu ns, before its 30 ms", (unsigned long long)took);
            } else if (!strcmp(rule, "poll_clock_absolute")) {
                /* subscription_clock_abstime: the timeout is a time of the named clock, not a duration. */
                __wasi_timestamp_t deadline = now(__WASI_CLOCKID_MONOTONIC) + 30 * MS;
                clock_fired("monotonic absolute", poll_clock(__WASI_CLOCKID_MONOTONIC, deadline, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME));
                __wasi_timestamp_t at = now(__WASI_CLOCKID_MONOTONIC);
                CHECK(at >= deadline, "monotonic absolute: woke %llu ns before its deadline", (unsigned long long)(deadline - at));
                deadline = now(__WASI_CLOCKID_REALTIME) + 30 * MS;
                clock_fired("realtime absolute", poll_clock(__WASI_CLOCKID_REALTIME, deadline, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME));
                at = now(__WASI_CLOCKID_REALTIME);
                CHECK(at >= deadline, "realtime absolute: woke %llu ns before its deadline", (unsigned long long)(deadline - at));
                /* A deadline already passed fires at once (1 ns after each clock's origin). */
                __wasi_timestamp_t t0 = now(__WASI_CLOCKID_MONOTONIC);
                clock_fired("monotonic past", poll_clock(__WASI_CLOCKID_MONOTONIC, 1, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME));
                clock_fired("realtime past", poll_clock(__WASI_CLOCKID_REALTIME, 1, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME));
                CHECK(now(__WASI_CLOCKID_MONOTONIC) - t0 < 1000 * MS, "past deadlines should not wait");
            } else if (!strcmp(rule, "poll_invalid_subscriptions")) {
                /* Values outside the witx enums/flags, and the CPU-time clocks (no sleeping on them), are EINVAL
                   for the whole call, as in Wasmtime. */
                __wasi_errno_t e = poll_clock(7, MS, 0);
                CHECK(e == __WASI_ERRNO_INVAL && nevents == 0xDEAD, "clock id 7: errno=%u", e);
                e = poll_clock(__WASI_CLOCKID_PROCESS_CPUTIME_ID, MS, 0);
                CHECK(e == __WASI_ERRNO_INVAL, "process cputime: errno=%u", e);
                e = poll_clock(__WASI_CLOCKID_MONOTONIC, MS, 2);
                CHECK(e == __WASI_ERRNO_INVAL, "unknown subclockflags bit: errno=%u", e);
                poll_clock(__WASI_CLOCKID_MONOTONIC, MS, 0);
                sub.u.tag = 3;
                e = __wasi_poll_oneoff(&sub, &ev, 1, &nevents);
                CHECK(e == __WASI_ERRNO_INVAL, "event type 3: errno=%u", e);
            } else if (!strcmp(rule, "fdstat_terminal")) {
                /* argv[2]: "1" when the host says stdio is a terminal. */
                int tty = argc > 2 && argv[2][0] == '1';
                expect_kind("stdin", 0, tty);
                expect_kind("stdout", 1, tty);
                expect_kind("stderr", 2, tty);
                __wasi_fd_t f = open_file("regular.txt");
                expect_regular("a regular file", f);
                /* A terminal moved to another number is still a terminal ... */
                __wasi_fd_t g = open_file("placeholder.txt");
                CHECK(__wasi_fd_renumber(0, g) == 0, "renumber stdin onto an open fd");
                expect_kind("stdin moved", g, tty);
                /* ... and a file moved onto a stdio number is a file (onto 2: 0 was closed by the move above). */
                CHECK(__wasi_fd_renumber(f, 2) == 0, "renumber a file onto fd 2");
                expect_regular("a file renumbered onto fd 2", 2);
            } else if (!strcmp(rule, "renumber_open_target")) {
                /* The target is closed and replaced; the source number is free afterwards. */
                __wasi_fd_t f = open_file("a.txt"), g = open_file("b.txt");
                __wasi_fdstat_t st;
                CHECK(__wasi_fd_renumber(f, g) == 0, "renumber onto an open fd");
                CHECK(stat_of(f, &st) == __WASI_ERRNO_BADF, "the source should be closed");
                CHECK(stat_of(g, &st) == 0 && st.fs_filetype == __WASI_FILETYPE_REGULAR_FILE, "the target should be the file");
                CHECK(__wasi_fd_close(f) == __WASI_ERRNO_BADF, "closing the moved-away source should be EBADF");
            } else if (!strcmp(rule, "renumber_closed_target")) {
                /* wasi-testsuite's renumber: an invalid target is EBADF (Wasmtime agrees); nothing changes. */
                __wasi_fd_t f = open_file("a.txt"), g = open_file("b.txt");
                __wasi_fdstat_t st;
                CHECK(__wasi_fd_close(g) == 0, "close");
                __wasi_errno_t e = __wasi_fd_renumber(f, g);
                CHECK(e == __WASI_ERRNO_BADF, "renumber onto a closed fd: errno=%u", e);
                e = __wasi_fd_renumber(f, CLOSED);
                CHECK(e == __WASI_ERRNO_BADF, "renumber onto a never-opened fd: errno=%u", e);
                e = __wasi_fd_renumber(CLOSED, f);
                CHECK(e == __WASI_ERRNO_BADF, "renumber from a never-opened fd: errno=%u", e);
                CHECK(stat_of(f, &st) == 0, "the source stays open");
                /* Yosys's pattern: a stdio fd set aside onto a spare fd, later moved back — onto a number the first
                   renumber closed, so the move back fails and the fd stays closed (stderr here, so stdout reports). */
                __wasi_fd_t spare = open_file("spare.txt");
                CHECK(__wasi_fd_renumber(2, spare) == 0, "set stderr aside");
                e = __wasi_fd_renumber(spare, 2);
                CHECK(e == __WASI_ERRNO_BADF, "moving it back onto the closed fd 2: errno=%u", e);
                CHECK(stat_of(2, &st) == __WASI_ERRNO_BADF, "fd 2 stays closed");
                CHECK(stat_of(spare, &st) == 0, "stderr stays at the spare fd");
            #ifdef SOCKETS
            } else if (!strcmp(rule, "sock_on_non_sockets")) {
                /* Preview 1's sock_* on a descriptor that is not open: EBADF; open but no socket: ENOTSOCK
                   (wasi-testsuite's sock_shutdown-invalid_fd / -not_sock). */
                __wasi_fd_t f = open_file("f.txt");
                __wasi_fd_t fds[] = {CLOSED, 1, 3, f};
                for (int i = 0; i < 4; i++) {
                    __wasi_errno_t want = fds[i] == CLOSED ? __WASI_ERRNO_BADF : __WASI_ERRNO_NOTSOCK;
                    char buf[4]; __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf}; __wasi_ciovec_t ciov = {(const uint8_t *)buf, 1};
                    __wasi_size_t n; __wasi_roflags_t ro; __wasi_fd_t accepted;
                    __wasi_errno_t e = __wasi_sock_shutdown(fds[i], __WASI_SDFLAGS_RD);
                    CHECK(e == want, "sock_shutdown(%u): errno=%u, want %u", fds[i], e, want);
                    e = __wasi_sock_recv(fds[i], &iov, 1, 0, &n, &ro);
                    CHECK(e == want, "sock_recv(%u): errno=%u, want %u", fds[i], e, want);
                    e = __wasi_sock_send(fds[i], &ciov, 1, 0, &n);
                    CHECK(e == want, "sock_send(%u): errno=%u, want %u", fds[i], e, want);
                    e = __wasi_sock_accept(fds[i], 0, &accepted);
                    CHECK(e == want, "sock_accept(%u): errno=%u, want %u", fds[i], e, want);
                }
            #endif
            } else {
                printf("FAIL: unknown rule %s\n", rule);
                return 2;
            }
            if (fails == 0)
                printf("ok\n");
            return fails == 0 ? 0 : 1;
        }
        """;
}
