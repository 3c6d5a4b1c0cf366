/* Force-included (-include) when building Debian's SQLite 3.40 for wasm32-wasi. That release predates
 * SQLite's own WASI support: its unix VFS names a few POSIX calls wasi-libc does not have. WASI has no
 * file owners, modes or fcntl locks, so these are harmless no-ops; locking uses the dot-file VFS. */
#ifndef WASMSHARP_SQLITE_WASI_COMPAT_H
#define WASMSHARP_SQLITE_WASI_COMPAT_H
#include <sys/types.h>
#include <errno.h>

#ifndef F_RDLCK
#define F_RDLCK 0
#define F_WRLCK 1
#define F_UNLCK 2
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#endif

static inline int chmod(const char *path, mode_t mode) { (void)path; (void)mode; return 0; }
static inline int fchmod(int fd, mode_t mode) { (void)fd; (void)mode; return 0; }
static inline int fchown(int fd, uid_t uid, gid_t gid) { (void)fd; (void)uid; (void)gid; return 0; }
static inline uid_t geteuid(void) { return 0; }
static inline uid_t getuid(void) { return 0; }
#endif
