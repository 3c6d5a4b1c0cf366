/* HTTP/1.0 server on WasmEdge's WASI socket extension (newer generation: sock_accept(fd, flags, *fd)).
   Usage: httpd PORT [DOCROOT]. Listens on 0.0.0.0:PORT, answers GET /path with DOCROOT/path (404 if missing)
   or, without DOCROOT, a fixed body; one log line per request on stdout: "GET /path STATUS BYTES PEER". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint8_t *buf;
    uint32_t buf_len;
} wasi_address_t;

#ifdef __wasi__
#define WASMEDGE(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))
WASMEDGE("sock_open") int32_t ws_open(int32_t family, int32_t type, int32_t *fd);
WASMEDGE("sock_setsockopt") int32_t ws_setsockopt(int32_t fd, int32_t level, int32_t name, const void *value, int32_t size);
WASMEDGE("sock_bind") int32_t ws_bind(int32_t fd, wasi_address_t *address, int32_t port);
WASMEDGE("sock_listen") int32_t ws_listen(int32_t fd, int32_t backlog);
WASMEDGE("sock_accept") int32_t ws_accept(int32_t fd, int32_t flags, int32_t *accepted);
WASMEDGE("sock_getpeeraddr") int32_t ws_getpeeraddr(int32_t fd, wasi_address_t *address, uint32_t *type, uint32_t *port);
#else
/* Built natively (the runc side of `make bench`): the same calls on POSIX sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

static int32_t ws_open(int32_t family, int32_t type, int32_t *fd) {
    int s = socket(family == 1 ? AF_INET : AF_INET6, type == 2 ? SOCK_STREAM : SOCK_DGRAM, 0);
    return s < 0 ? errno : (*fd = s, 0);
}
static int32_t ws_setsockopt(int32_t fd, int32_t level, int32_t name, const void *value, int32_t size) {
    (void)level; (void)name; /* only SO_REUSEADDR is used */
    return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, value, (socklen_t)size) ? errno : 0;
}
static int32_t ws_bind(int32_t fd, wasi_address_t *address, int32_t port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    memcpy(&sa.sin_addr, address->buf, 4);
    return bind(fd, (struct sockaddr *)&sa, sizeof sa) ? errno : 0;
}
static int32_t ws_listen(int32_t fd, int32_t backlog) { return listen(fd, backlog) ? errno : 0; }
static int32_t ws_accept(int32_t fd, int32_t flags, int32_t *accepted) {
    (void)flags;
    int c = accept(fd, NULL, NULL);
    return c < 0 ? errno : (*accepted = c, 0);
}
static int32_t ws_getpeeraddr(int32_t fd, wasi_address_t *address, uint32_t *type, uint32_t *port) {
    struct sockaddr_in sa;
    socklen_t length = sizeof sa;
    if (getpeername(fd, (struct sockaddr *)&sa, &length) != 0 || sa.sin_family != AF_INET)
        return errno ? errno : EAFNOSUPPORT;
    memcpy(address->buf, &sa.sin_addr, 4);
    *type = 4;
    *port = ntohs(sa.sin_port);
    return 0;
}
#endif

static const char fixed_body[] = "hello from wasmsharp\n";

static int write_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n <= 0)
            return -1;
        data += n;
        length -= (size_t)n;
    }
    return 0;
}

static void respond(int fd, int status, const char *body, size_t length) {
    char head[160];
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
    int n = snprintf(head, sizeof head, "HTTP/1.0 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, length);
    if (write_all(fd, head, (size_t)n) == 0)
        write_all(fd, body, length);
}

/* Reads DOCROOT/path into a malloc'ed buffer; NULL when missing or unsafe. */
static char *load(const char *docroot, const char *path, size_t *length) {
    if (strstr(path, "..") != NULL)
        return NULL;
    char full[1024];
    snprintf(full, sizeof full, "%s/%s", docroot, path[0] == '/' ? path + 1 : path);
    FILE *file = fopen(full, "rb");
    if (file == NULL)
        return NULL;
    size_t capacity = 4096, used = 0;
    char *data = malloc(capacity);
    size_t n;
    while (data != NULL && (n = fread(data + used, 1, capacity - used, file)) > 0) {
        used += n;
        if (used == capacity) {
            capacity *= 2;
            char *grown = realloc(data, capacity);
            if (grown == NULL)
                free(data);
            data = grown;
        }
    }
    fclose(file);
    *length = used;
    return data;
}

static void serve(int fd, const char *docroot) {
    char request[4096];
    size_t used = 0;
    while (used < sizeof request - 1) {
        ssize_t n = read(fd, request + used, sizeof request - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        request[used] = 0;
        if (strstr(request, "\r\n\r\n") != NULL || strstr(request, "\n\n") != NULL)
            break;
    }
    request[used] = 0;

    uint8_t peer[16] = {0};
    wasi_address_t address = {peer, sizeof peer};
    uint32_t type = 0, port = 0;
    char peer_text[64] = "?";
    if (ws_getpeeraddr(fd, &address, &type, &port) == 0 && type == 4)
        snprintf(peer_text, sizeof peer_text, "%u.%u.%u.%u:%u", peer[0], peer[1], peer[2], peer[3], (unsigned)port);

    char method[8] = {0}, path[512] = {0};
    int status;
    size_t length = 0;
    if (sscanf(request, "%7s %511s", method, path) != 2 || strcmp(method, "GET") != 0) {
        status = 400;
        respond(fd, status, "bad request\n", 12);
        length = 12;
    } else if (docroot == NULL) {
        status = 200;
        length = sizeof fixed_body - 1;
        respond(fd, status, fixed_body, length);
    } else {
        char *body = load(docroot, strcmp(path, "/") == 0 ? "/index.html" : path, &length);
        status = body != NULL ? 200 : 404;
        if (body == NULL)
            length = 10;
        respond(fd, status, body != NULL ? body : "not found\n", length);
        free(body);
    }
    printf("%s %s %d %zu %s\n", method[0] ? method : "-", path[0] ? path : "-", status, length, peer_text);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: httpd PORT [DOCROOT]\n");
        return 2;
    }
#ifndef __wasi__
    signal(SIGPIPE, SIG_IGN); /* a client that goes away must not end the server (a Wasm guest has no signals) */
#endif
    int port = atoi(argv[1]);
    const char *docroot = argc > 2 ? argv[2] : NULL;

    int32_t server = -1;
    int32_t rc = ws_open(1 /* inet4 */, 2 /* stream */, &server);
    if (rc != 0) {
        fprintf(stderr, "sock_open: errno %d\n", rc);
        return 1;
    }
    int32_t one = 1;
    ws_setsockopt(server, 0 /* SOL_SOCKET */, 0 /* SO_REUSEADDR */, &one, sizeof one);
    uint8_t any[4] = {0, 0, 0, 0};
    wasi_address_t address = {any, sizeof any};
    if ((rc = ws_bind(server, &address, port)) != 0 || (rc = ws_listen(server, 128)) != 0) {
        fprintf(stderr, "bind/listen on port %d: errno %d\n", port, rc);
        return 1;
    }
    printf("listening on port %d\n", port);
    fflush(stdout);

    for (;;) {
        int32_t client = -1;
        if ((rc = ws_accept(server, 0, &client)) != 0) {
            fprintf(stderr, "sock_accept: errno %d\n", rc);
            continue;
        }
        serve(client, docroot);
        close(client);
    }
}
