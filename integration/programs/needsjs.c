// needsjs: a module built for a JavaScript host (as npm's ruby.wasm is): it imports env.js_call, which no
// WASI runtime provides. The shim must refuse it at create, naming it, before compiling it.
#include <stdio.h>

__attribute__((import_module("env"), import_name("js_call"))) int js_call(int);

int main(void) {
    printf("%d\n", js_call(1));
    return 0;
}
