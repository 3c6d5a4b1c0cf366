/* wasi-libc has no <pwd.h>; the SQLite shell only asks it for a home directory and falls back to $HOME. */
#ifndef WASMSHARP_SQLITE_WASI_PWD_H
#define WASMSHARP_SQLITE_WASI_PWD_H
#include <stddef.h>
struct passwd { char *pw_name; char *pw_dir; };
static inline struct passwd *getpwuid(unsigned uid) { (void)uid; return NULL; }
#endif
