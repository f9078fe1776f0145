/*
 * Proves the valgrind setup of tests/c can fail: this program deliberately
 * leaks objects the C API returned (a string and a container list), and
 * run.sh requires valgrind, with the same options and suppressions as for
 * lifecycle.c, to report them and exit non-zero.
 */
#include <stdio.h>

#include "vmcontainer.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOME_DIR\n", argv[0]);
        return 2;
    }
    vmc_manager_t *m = NULL;
    vmc_error_t *err = NULL;
    char *id = NULL;
    vmc_container_list_t *list = NULL;
    if (vmc_manager_new(argv[1], NULL, &m, &err) != VMC_OK ||
        vmc_generate_id(&id, &err) != VMC_OK || vmc_manager_list(m, &list, &err) != VMC_OK) {
        fprintf(stderr, "leak_probe: %s\n", vmc_error_message(err));
        return 2;
    }
    /* Uses the runtime too, so its threads exist as in the real test. */
    if (vmc_manager_stop(m, "deadbeef", 0, NULL, NULL) != VMC_ERROR_NOT_FOUND) return 2;
    printf("leak_probe: leaking id %s and a list of %zu\n", id, vmc_container_list_len(list));
    id = NULL;
    list = NULL;
    vmc_manager_free(m);
    return 0;
}
