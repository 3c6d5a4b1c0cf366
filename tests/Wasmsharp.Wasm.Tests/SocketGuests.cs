namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// C guests using WasmEdge's socket extension, built once (clang-16, -Wall -Werror like the integration suite),
/// plus integration/programs/httpd.c. Declarations are WasmEdge's ABI, both generations where they differ.
/// </summary>
public sealed class SocketGuests : IDisposable
{
    private const string Header = """
        #include <fcntl.h>
        #include <poll.h>
        #include <stdint.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include <wasi/api.h>
        typedef struct { uint8_t *buf; uint32_t buf_len; } wasi_address_t;
        typedef struct { uint8_t family; uint32_t sa_data_len; uint8_t *sa_data; } wasi_sockaddr_t;
        typedef struct {
            uint16_t ai_flags; uint8_t ai_family; uint8_t ai_socktype; uint8_t ai_protocol;
            uint32_t ai_addrlen; wasi_sockaddr_t *ai_addr; char *ai_canonname; uint32_t ai_canonname_len; void *ai_next;
        } wasi_addrinfo_t;
        #define WASMEDGE(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))
        WASMEDGE("sock_open") int32_t ws_open(int32_t family, int32_t type, int32_t *fd);
        WASMEDGE("sock_bind") int32_t ws_bind(int32_t fd, wasi_address_t *address, int32_t port);
        WASMEDGE("sock_listen") int32_t ws_listen(int32_t fd, int32_t backlog);
        WASMEDGE("sock_accept") int32_t ws_accept(int32_t fd, int32_t flags, int32_t *accepted);
        WASMEDGE("sock_accept") int32_t ws_accept_v1(int32_t fd, int32_t *accepted);
        WASMEDGE("sock_connect") int32_t ws_connect(int32_t fd, wasi_address_t *address, int32_t port);
        WASMEDGE("sock_recv") int32_t ws_recv(int32_t fd, __wasi_iovec_t *iovs, int32_t n, int32_t flags, uint32_t *got, uint16_t *oflags);
        WASMEDGE("sock_send") int32_t ws_send(int32_t fd, const __wasi_ciovec_t *iovs, int32_t n, int32_t flags, uint32_t *sent);
        WASMEDGE("sock_shutdown") int32_t ws_shutdown(int32_t fd, int32_t how);
        WASMEDGE("sock_getlocaladdr") int32_t ws_getlocaladdr(int32_t fd, wasi_address_t *address, uint32_t *type, uint32_t *port);
        WASMEDGE("sock_getpeeraddr") int32_t ws_getpeeraddr(int32_t fd, wasi_address_t *address, uint32_t *type, uint32_t *port);
        WASMEDGE("sock_getlocaladdr") int32_t ws_getlocaladdr_v2(int32_t fd, wasi_address_t *address, uint32_t *port);
        WASMEDGE("sock_getaddrinfo") int32_t ws_getaddrinfo(const char *node, uint32_t node_len, const char *service,
            uint32_t service_len, const wasi_addrinfo_t *hints, uint32_t *res, uint32_t max, uint32_t *res_len);
        static uint8_t loopback[4] = {127, 0, 0, 1};
        __attribute__((unused)) static int listener(int port) {
            int32_t fd; int rc = ws_open(1, 2, &fd);
            if (rc != 0) { printf("open rc=%d\n", rc); exit(1); }
            wasi_address_t a = {loopback, 4};
            if ((rc = ws_bind(fd, &a, port)) != 0 || (rc = ws_listen(fd, 16)) != 0) { printf("listen rc=%d\n", rc); exit(1); }
            return fd;
        }
        // getaddrinfo of NODE:SERVICE (stream), one line: "gai NODE rc=RC n=N ADDR:PORT/tTYPE/pPROTO/lLEN...".
        __attribute__((unused)) static void resolve(const char *node, const char *service) {
            wasi_addrinfo_t hints, res[4]; wasi_sockaddr_t sa[4]; uint8_t data[4][26];
            memset(&hints, 0, sizeof hints); hints.ai_socktype = 2;
            for (int i = 0; i < 4; i++) {
                memset(&res[i], 0, sizeof res[i]); res[i].ai_addr = &sa[i]; sa[i].sa_data = data[i]; sa[i].sa_data_len = 26;
                res[i].ai_next = i < 3 ? &res[i + 1] : NULL;
            }
            uint32_t first = (uint32_t)(uintptr_t)&res[0], n = 0;
            int rc = ws_getaddrinfo(node, strlen(node) + 1, service, strlen(service) + 1, &hints, &first, 4, &n);
            printf("gai %s rc=%d n=%u", node, rc, (unsigned)n);
            for (uint32_t i = 0; i < n; i++) {
                int port = data[i][0] << 8 | data[i][1];
                if (sa[i].family == 1) printf(" %u.%u.%u.%u:%d", data[i][2], data[i][3], data[i][4], data[i][5], port);
                else printf(" v6(last=%u):%d", data[i][21], port);
                printf("/t%u/p%u/l%u", res[i].ai_socktype, res[i].ai_protocol, (unsigned)res[i].ai_addrlen);
            }
            printf("\n");
        }

        """;

    private static readonly Dictionary<string, string> Sources = new()
    {
        // Resolves each argument (service 80), one "gai" line each.
        ["resolve"] = """
            int main(int argc, char **argv) {
                for (int a = 1; a < argc; a++) resolve(argv[a], "80");
                return 0;
            }
            """,
        // Client: getaddrinfo, connect, local/peer address (V1), send/recv, refused connect.
        ["sockclient"] = """
            int main(int argc, char **argv) {
                int port = atoi(argv[1]);
                resolve("localhost", argv[1]);
                resolve("127.0.0.1", "80");
                resolve("web.internal", "8080");
                resolve("nosuch.example", "80");
                int32_t fd; ws_open(1, 2, &fd);
                wasi_address_t a = {loopback, 4};
                printf("connect rc=%d\n", ws_connect(fd, &a, port));
                uint8_t addr[16]; wasi_address_t out = {addr, 16}; uint32_t type = 0, p = 0;
                int rc = ws_getlocaladdr(fd, &out, &type, &p);
                printf("local rc=%d type=%u %u.%u.%u.%u port>0=%d\n", rc, (unsigned)type, addr[0], addr[1], addr[2], addr[3], p > 0);
                rc = ws_getpeeraddr(fd, &out, &type, &p);
                printf("peer rc=%d type=%u %u.%u.%u.%u:%u\n", rc, (unsigned)type, addr[0], addr[1], addr[2], addr[3], (unsigned)p);
                const char ping[] = "ping\n"; __wasi_ciovec_t civ = {(const uint8_t *)ping, 5}; uint32_t sent = 0;
                printf("send rc=%d sent=%u\n", ws_send(fd, &civ, 1, 0, &sent), (unsigned)sent);
                char buf[64]; size_t used = 0; uint32_t got; uint16_t of;
                for (;;) {
                    __wasi_iovec_t iov = {(uint8_t *)buf + used, sizeof buf - 1 - used};
                    rc = ws_recv(fd, &iov, 1, 0, &got, &of);
                    if (rc != 0 || got == 0) break;
                    used += got;
                }
                buf[used] = 0;
                printf("recv rc=%d got=%s", rc, buf);
                close(fd);
                int32_t other; ws_open(1, 2, &other);
                printf("refused rc=%d\n", ws_connect(other, &a, port + 1));
                return 0;
            }
            """,
        // Blocks in accept (V1), recv or poll, for kill and pause; "exit" leaves a listener open and returns.
        ["blocker"] = """
            int main(int argc, char **argv) {
                int s = listener(atoi(argv[1]));
                const char *mode = argv[2];
                puts("ready"); fflush(stdout);
                if (!strcmp(mode, "exit")) return 0;
                if (!strcmp(mode, "poll")) {
                    struct pollfd p = {s, POLLIN, 0};
                    int n = poll(&p, 1, -1);
                    printf("polled %d\n", n); fflush(stdout);
                }
                int32_t c; int rc = ws_accept_v1(s, &c);
                printf("accepted rc=%d\n", rc); fflush(stdout);
                if (!strcmp(mode, "recv")) {
                    char b[16]; ssize_t n = read(c, b, sizeof b);
                    printf("got %d\n", (int)n); fflush(stdout);
                }
                return 0;
            }
            """,
        // Opens sockets until one fails.
        ["manysockets"] = """
            int main(void) {
                int opened = 0, rc = 0; int32_t fd = -1, last = -1;
                while ((rc = ws_open(1, 2, &fd)) == 0 && opened < 1000) { opened++; last = fd; }
                printf("opened %d rc=%d last=%d\n", opened, rc, (int)last);
                return 0;
            }
            """,
        // Serves two clients at once with poll(): echoes each line, ends when both have hung up.
        ["pollserver"] = """
            int main(int argc, char **argv) {
                int s = listener(atoi(argv[1]));
                puts("ready"); fflush(stdout);
                struct pollfd fds[3] = {{s, POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
                int clients = 0, done = 0;
                while (done < 2) {
                    if (poll(fds, 3, -1) <= 0) { puts("poll failed"); return 1; }
                    if (fds[0].revents & POLLIN) {
                        int32_t c; int rc = ws_accept(s, 0, &c);
                        if (rc != 0) { printf("accept rc=%d\n", rc); return 1; }
                        fds[1 + clients++].fd = c;
                        if (clients == 2) fds[0].fd = -1;
                    }
                    for (int i = 1; i < 3; i++) {
                        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
                        char b[64]; ssize_t n = read(fds[i].fd, b, sizeof b - 1);
                        if (n <= 0) { close(fds[i].fd); fds[i].fd = -1; done++; continue; }
                        b[n] = 0;
                        char reply[80]; int len = snprintf(reply, sizeof reply, "echo: %s", b);
                        write(fds[i].fd, reply, (size_t)len);
                        printf("client %d: %s", i, b); fflush(stdout);
                    }
                }
                puts("both done");
                return 0;
            }
            """,
        // Descriptor behaviour: fdstat/filestat, O_NONBLOCK accept (V1) → EAGAIN, numbers interleaved with files,
        // poll_oneoff with sockets, clocks and files, fd_renumber.
        // WASI rules on socket descriptors that are closed or never were (WasiConformanceTests has the rest):
        // one line of errnos each (8 = EBADF); fd_fdstat_set_rights answers ENOTSUP (58), as for a file.
        ["sockclosed"] = """
            static int type_of(int fd) { __wasi_fdstat_t st; int rc = __wasi_fd_fdstat_get(fd, &st); return rc ? -rc : st.fs_filetype; }
            int main(void) {
                int32_t s, t, gone;
                if (ws_open(1, 2, &s) || ws_open(1, 2, &t) || ws_open(1, 2, &gone)) { printf("open failed\n"); return 1; }
                printf("close rc=%d\n", __wasi_fd_close(gone));
                printf("renumber onto closed rc=%d onto never-opened rc=%d from closed rc=%d; source type=%d\n",
                       __wasi_fd_renumber(s, gone), __wasi_fd_renumber(s, 1000), __wasi_fd_renumber(gone, s), type_of(s));
                __wasi_fdstat_t st;
                if (__wasi_fd_fdstat_get(s, &st) != 0) { printf("fdstat failed\n"); return 1; }
                printf("open socket: set_rights=%d\n", __wasi_fd_fdstat_set_rights(s, st.fs_rights_base, st.fs_rights_inheriting));
                printf("close rc=%d\n", __wasi_fd_close(s));
                char buf[4]; __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf}; __wasi_ciovec_t ciov = {(const uint8_t *)buf, 1};
                __wasi_size_t n; uint32_t n32; uint16_t ro; __wasi_filesize_t pos; __wasi_filestat_t fst; int32_t accepted;
                __wasi_subscription_t sub; __wasi_event_t ev; memset(&sub, 0, sizeof sub);
                sub.u.tag = __WASI_EVENTTYPE_FD_READ; sub.u.u.fd_read.file_descriptor = s;
                printf("closed socket: read=%d write=%d fdstat=%d filestat=%d seek=%d close=%d recv=%d send=%d shutdown=%d accept=%d renumber=%d poll=%d\n",
                       __wasi_fd_read(s, &iov, 1, &n), __wasi_fd_write(s, &ciov, 1, &n), -type_of(s), __wasi_fd_filestat_get(s, &fst),
                       __wasi_fd_seek(s, 0, __WASI_WHENCE_CUR, &pos), __wasi_fd_close(s), ws_recv(s, &iov, 1, 0, &n32, &ro),
                       ws_send(s, &ciov, 1, 0, &n32), ws_shutdown(s, 1), ws_accept(s, 0, &accepted), __wasi_fd_renumber(s, t),
                       __wasi_poll_oneoff(&sub, &ev, 1, &n));
                printf("other socket type=%d\n", type_of(t));
                return 0;
            }
            """,
        ["sockmisc"] = """
            static __wasi_subscription_t subs[3] __attribute__((aligned(8)));
            static __wasi_event_t events[3] __attribute__((aligned(8)));
            static void sub_fd(int i, int ud, int type, int fd) {
                memset(&subs[i], 0, sizeof subs[i]); subs[i].userdata = ud; subs[i].u.tag = type;
                subs[i].u.u.fd_read.file_descriptor = fd;
            }
            static void sub_clock(int i, int ud, long long ns) {
                memset(&subs[i], 0, sizeof subs[i]); subs[i].userdata = ud; subs[i].u.tag = __WASI_EVENTTYPE_CLOCK;
                subs[i].u.u.clock.id = __WASI_CLOCKID_MONOTONIC; subs[i].u.u.clock.timeout = ns;
            }
            static void run(const char *name, int n) {
                __wasi_size_t got = 0;
                int rc = __wasi_poll_oneoff(subs, events, n, &got);
                printf("%s rc=%d n=%u", name, rc, (unsigned)got);
                for (unsigned i = 0; i < got; i++)
                    printf(" [ud=%llu type=%u err=%u nbytes=%llu hup=%u]", (unsigned long long)events[i].userdata, events[i].type,
                           events[i].error, (unsigned long long)events[i].fd_readwrite.nbytes, events[i].fd_readwrite.flags);
                printf("\n");
            }
            static int type_of(int fd) { __wasi_fdstat_t st; int rc = __wasi_fd_fdstat_get(fd, &st); return rc ? -rc : st.fs_filetype; }
            int main(int argc, char **argv) {
                int port = atoi(argv[1]);
                int s = listener(port);
                __wasi_fdstat_t st; if (__wasi_fd_fdstat_get(s, &st)) return 1;
                printf("fdstat type=%u flags=%u\n", st.fs_filetype, st.fs_flags);
                fcntl(s, F_SETFL, O_NONBLOCK);
                __wasi_filestat_t fst;
                if (__wasi_fd_fdstat_get(s, &st) || __wasi_fd_filestat_get(s, &fst)) return 1;
                printf("nonblock flags=%u filestat type=%u\n", st.fs_flags, fst.filetype);
                int32_t c; printf("accept_v1 nonblocking rc=%d\n", ws_accept_v1(s, &c));
                uint8_t storage[128] = {0}; wasi_address_t a = {storage, 128}; uint32_t p = 0;
                int rc = ws_getlocaladdr_v2(s, &a, &p);
                printf("local_v2 rc=%d family=%u %u.%u.%u.%u:%u\n", rc, storage[0], storage[2], storage[3], storage[4], storage[5], (unsigned)p);

                sub_fd(0, 1, __WASI_EVENTTYPE_FD_READ, s); sub_clock(1, 2, 30000000); run("idle+clock", 2);
                int f = open("/data/x.txt", O_CREAT | O_RDWR, 0644);
                write(f, "abc", 3);
                sub_fd(0, 1, __WASI_EVENTTYPE_FD_READ, s); sub_fd(1, 3, __WASI_EVENTTYPE_FD_READ, f); run("idle+file", 2);

                int32_t cl; ws_open(1, 2, &cl); wasi_address_t lo = {loopback, 4};
                printf("connect rc=%d\n", ws_connect(cl, &lo, port));
                sub_fd(0, 1, __WASI_EVENTTYPE_FD_READ, s); run("pending", 1);
                fcntl(s, F_SETFL, 0);
                rc = ws_accept_v1(s, &c);
                printf("accept rc=%d\n", rc);
                write(cl, "hi", 2);
                sub_fd(0, 4, __WASI_EVENTTYPE_FD_READ, c); sub_fd(1, 5, __WASI_EVENTTYPE_FD_WRITE, cl); run("data+writable", 2);
                char b[8]; printf("read %d\n", (int)read(c, b, sizeof b));
                close(cl);
                sub_fd(0, 4, __WASI_EVENTTYPE_FD_READ, c); run("hangup", 1);
                printf("read after hangup %d\n", (int)read(c, b, sizeof b));

                int f1 = open("/data/a.txt", O_CREAT | O_WRONLY, 0644);
                int32_t s1; ws_open(1, 1, &s1);
                close(f1);
                int32_t s2; ws_open(1, 1, &s2);
                int f2 = open("/data/b.txt", O_CREAT | O_RDWR, 0644);
                printf("numbers f1=%d s1=%d s2=%d f2=%d types %d %d %d\n", f1, (int)s1, (int)s2, f2, type_of(s1), type_of(s2), type_of(f2));
                write(f2, "file ok", 7); lseek(f2, 0, SEEK_SET);
                char fb[8] = {0}; read(f2, fb, 7);
                printf("file says %s\n", fb);
                printf("renumber rc=%d types %d %d\n", __wasi_fd_renumber(s1, f2), type_of(f2), type_of(s1));
                printf("seek on socket rc=%d\n", __wasi_fd_seek(s2, 0, 0, NULL));
                return 0;
            }
            """,
    };

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "wasmsharp-socket-tests-" + Guid.NewGuid().ToString("N"));
    public WasmHost Host { get; } = new();

    public SocketGuests()
    {
        System.IO.Directory.CreateDirectory(Directory);
        var builds = new List<Task>();
        foreach (var (name, body) in Sources)
        {
            File.WriteAllText(Path.Combine(Directory, name + ".c"), Header + body);
            builds.Add(Compile(Path.Combine(Directory, name + ".c"), Wasm(name)));
        }
        builds.Add(Compile(Path.Combine(RepositoryRoot(), "integration", "programs", "httpd.c"), Wasm("httpd")));
        var wat = Path.Combine(Directory, "wrongtype.wat");
        File.WriteAllText(wat, """
            (module
              (import "wasi_snapshot_preview1" "sock_accept" (func $a (param i32) (result i32)))
              (memory (export "memory") 1)
              (func (export "_start") (drop (call $a (i32.const 3)))))
            """);
        builds.Add(Run("wat2wasm", wat, "-o", Wasm("wrongtype")));
        Task.WaitAll(builds.ToArray());
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "integration", "programs", "httpd.c")))
                return dir.FullName;
        throw new InvalidOperationException("integration/programs/httpd.c not found above the test binaries");
    }

    private static Task Compile(string source, string output) =>
        Run("clang-16", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Werror", "-Wl,--strip-debug", source, "-o", output);

    public string Wasm(string name) => Path.Combine(Directory, name + ".wasm");

    public WasmModule Load(string name) => Host.LoadModule(Wasm(name));

    private static Task Run(string tool, params string[] args) => GuestModules.RunTool(tool, args);

    public void Dispose() => GuestModules.DisposeHostAndDirectory(Host, Directory);
}

[CollectionDefinition(Name)]
public sealed class SocketCollection : ICollectionFixture<SocketGuests>
{
    public const string Name = "socket guests";
}
