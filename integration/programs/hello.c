// hello: the smallest end-to-end check. A greeting on stdout, a line on stderr (both must reach
// `ctr run`), then each argument on its own line (argv must arrive verbatim).
#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from wasm\n");
    fprintf(stderr, "hello on stderr\n");
    for (int i = 1; i < argc; i++)
        printf("%s\n", argv[i]);
    return 0;
}
