// env: prints every environment variable, one per line — the guest must see the container's
// environment (image config + --env) and nothing of the shim's own.
#include <stdio.h>

extern char **environ;

int main(void) {
    for (char **e = environ; *e; e++)
        printf("%s\n", *e);
    return 0;
}
