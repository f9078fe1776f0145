/*
 * C test of libvmcontainer through include/vmcontainer.h.
 *
 *   lifecycle unit    GUEST HOME   no VM: versions, IDs, formats, hypervisor,
 *                                  templates, options, error paths, NULLs,
 *                                  devenv without an image, failed installs
 *                                  from $VMC_TEST_CDN_URL/{tampered,gone},
 *                                  push/pull/export against the registry at
 *                                  $VMC_TEST_REGISTRY
 *   lifecycle vm      GUEST HOME   unit, then the full lifecycle on the test
 *                                  guest (with a cancelled exec), a foreground
 *                                  run, and the devenv: install from
 *                                  $VMC_TEST_CDN_URL, boot the guest as the dev
 *                                  VM, shell and test on pipes (one VM at a
 *                                  time)
 *   lifecycle cleanup GUEST HOME   force-remove every container in HOME
 *
 * GUEST is the output directory of tests/guest/build.sh; HOME a fresh,
 * short temporary directory (it becomes VMCONTAINER_HOME for the manager).
 * Prints "lifecycle: N passed, 0 failed" and exits 0, or names the first
 * failed check and exits 1 after removing every container it started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmcontainer.h"

/* Boot under TCG on a loaded 2-core machine can take minutes. */
#define READY_TIMEOUT_MS (240u * 1000u)
#define CONTAINER_NAME "c-lifecycle"
#define ATTACHED_NAME "c-attached"

static const char *g_guest;
static const char *g_home;
static vmc_manager_t *g_manager;
static vmc_error_t *err;
static int g_passed;

static void cleanup_all(void);

static void fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lifecycle: FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (err != NULL) {
        fprintf(stderr, " [error %s: %s]", vmc_error_kind(err), vmc_error_message(err));
    }
    fputc('\n', stderr);
    cleanup_all();
    fprintf(stderr, "lifecycle: %d passed, 1 failed\n", g_passed);
    exit(1);
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) fail(__FILE__, __LINE__, "check `" #cond "` failed: " __VA_ARGS__);        \
        g_passed++;                                                                            \
    } while (0)

/* A call that must succeed. */
#define OK(call)                                                                               \
    do {                                                                                       \
        vmc_error_code_t rc_ = (call);                                                         \
        if (rc_ != VMC_OK)                                                                     \
            fail(__FILE__, __LINE__, "%s returned %s", #call, vmc_error_code_name((int)rc_)); \
        if (err != NULL) fail(__FILE__, __LINE__, "%s succeeded but set an error", #call);     \
        g_passed++;                                                                            \
    } while (0)

/* A call that must fail with `want`, with a message containing `needle`. */
#define FAILS(call, want, needle) expect_error((call), (want), (needle), #call, __FILE__, __LINE__)

static void expect_error(vmc_error_code_t got, vmc_error_code_t want, const char *needle,
                         const char *what, const char *file, int line) {
    if (got != want)
        fail(file, line, "%s returned %s, expected %s", what, vmc_error_code_name((int)got),
             vmc_error_code_name((int)want));
    if (err == NULL) fail(file, line, "%s failed without an error object", what);
    if (vmc_error_code(err) != want) fail(file, line, "%s: error object has another code", what);
    if (strcmp(vmc_error_kind(err), vmc_error_code_name((int)want)) != 0)
        fail(file, line, "%s: kind %s does not match the code", what, vmc_error_kind(err));
    const char *msg = vmc_error_message(err);
    if (msg == NULL || msg[0] == '\0') fail(file, line, "%s: empty message", what);
    if (needle != NULL && strstr(msg, needle) == NULL)
        fail(file, line, "%s: message lacks \"%s\"", what, needle);
    vmc_error_free(err);
    err = NULL;
    g_passed++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL) fail(__FILE__, __LINE__, "out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *content) {
    FILE *f = fopen(path, "w");
    if (f == NULL) fail(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Removes every container of the test home, whatever state it is in. */
static void cleanup_all(void) {
    vmc_manager_t *m = g_manager;
    vmc_error_t *e = NULL;
    if (m == NULL && vmc_manager_new(g_home, NULL, &m, &e) != VMC_OK) {
        fprintf(stderr, "lifecycle: cleanup: %s\n", vmc_error_message(e));
        vmc_error_free(e);
        return;
    }
    vmc_container_list_t *list = NULL;
    if (vmc_manager_list(m, &list, &e) == VMC_OK) {
        for (size_t i = 0; i < vmc_container_list_len(list); i++) {
            const char *id = vmc_container_id(vmc_container_list_get(list, i));
            if (vmc_manager_remove(m, id, true, NULL, &e) != VMC_OK) {
                fprintf(stderr, "lifecycle: cleanup: removing %s: %s\n", id, vmc_error_message(e));
                vmc_error_free(e);
                e = NULL;
            } else {
                fprintf(stderr, "lifecycle: cleanup: removed %s\n", id);
            }
        }
    } else {
        fprintf(stderr, "lifecycle: cleanup: %s\n", vmc_error_message(e));
        vmc_error_free(e);
    }
    vmc_container_list_free(list);
    if (m != g_manager) vmc_manager_free(m);
}

/* ---------------------------------------------------------------- unit -- */

static void test_version_and_ids(void) {
    CHECK(strcmp(vmc_version(), VMC_VERSION) == 0, "library %s, header %s", vmc_version(),
          VMC_VERSION);
    char *a = NULL, *b = NULL;
    OK(vmc_generate_id(&a, &err));
    OK(vmc_generate_id(&b, &err));
    CHECK(strlen(a) == 8 && strspn(a, "0123456789abcdef") == 8, "id %s", a);
    CHECK(strcmp(a, b) != 0, "two IDs are equal: %s", a);
    vmc_string_free(a);
    vmc_string_free(b);
    CHECK(strcmp(vmc_error_code_name(VMC_ERROR_NOT_FOUND), "not_found") == 0, "");
    CHECK(strcmp(vmc_error_code_name(12345), "unknown") == 0, "");
    CHECK(strcmp(vmc_status_name(VMC_STATUS_RUNNING), "running") == 0, "");
    CHECK(strcmp(vmc_status_name(-1), "unknown") == 0, "");
}

static void test_image_formats(void) {
    static const struct {
        const char *file;
        vmc_image_format_t want;
        const char *name;
    } cases[] = {
        {"vmtest.iso", VMC_IMAGE_FORMAT_ISO, "iso"},
        {"vmtest.qcow2", VMC_IMAGE_FORMAT_QCOW2, "qcow2"},
        {"vmtest.vmdk", VMC_IMAGE_FORMAT_VMDK, "vmdk"},
        {"vmtest.raw", VMC_IMAGE_FORMAT_RAW, "raw"},
        {"vmtest-kernel", VMC_IMAGE_FORMAT_KERNEL_INITRD, "kernel+initrd"},
        {"no-such-image.bin", VMC_IMAGE_FORMAT_UNKNOWN, "unknown"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = path_in(g_guest, cases[i].file);
        vmc_image_format_t f = VMC_IMAGE_FORMAT_UNKNOWN;
        OK(vmc_detect_image_format(p, &f, &err));
        CHECK(f == cases[i].want, "%s detected as %s", cases[i].file, vmc_image_format_name(f));
        CHECK(strcmp(vmc_image_format_name(f), cases[i].name) == 0, "");
        free(p);
    }
}

static void test_hypervisor(void) {
    vmc_hypervisor_t *h = NULL;
    OK(vmc_detect_hypervisor(&h, &err));
    CHECK(strcmp(vmc_hypervisor_name(h), "qemu") == 0, "detected %s", vmc_hypervisor_name(h));
    CHECK(vmc_hypervisor_available(h), "");
    char *accel = NULL, *reason = NULL;
    OK(vmc_hypervisor_accel(h, &accel, &reason, &err));
    CHECK(strcmp(accel, "tcg") == 0 || strcmp(accel, "kvm") == 0, "accel %s", accel);
    CHECK(reason != NULL && reason[0] != '\0', "");
    vmc_string_free(accel);
    vmc_string_free(reason);
    vmc_hypervisor_free(h);

    h = NULL;
    OK(vmc_get_hypervisor("QEMU", &h, &err));
    CHECK(strcmp(vmc_hypervisor_name(h), "qemu") == 0, "");
    vmc_hypervisor_free(h);
    h = (vmc_hypervisor_t *)1; /* must be reset to NULL on failure */
    FAILS(vmc_get_hypervisor("bogus", &h, &err), VMC_ERROR_INVALID_INPUT, "bogus");
    CHECK(h == NULL, "out-pointer not cleared on failure");
    FAILS(vmc_get_hypervisor("hyperkit", &h, &err), VMC_ERROR_HYPERVISOR_UNAVAILABLE, "hyperkit");
}

static void test_templates(void) {
    char *dir = path_in(g_home, "linuxkit");
    mkdir(dir, 0700);
    char *file = path_in(dir, "mine.yml");
    write_file(file, "# My template\nkernel:\n  cmdline: ${CMD:-quiet}\n");

    vmc_template_list_t *list = NULL;
    OK(vmc_list_templates(g_home, &list, &err));
    int dev = 0, php = 0, mine = 0;
    for (size_t i = 0; i < vmc_template_list_len(list); i++) {
        const vmc_template_t *t = vmc_template_list_get(list, i);
        const char *name = vmc_template_name(t);
        if (strcmp(name, "core-dev") == 0) dev = vmc_template_is_builtin(t) && !vmc_template_path(t);
        if (strcmp(name, "server-php") == 0) php = vmc_template_is_builtin(t);
        if (strcmp(name, "mine") == 0) {
            mine = !vmc_template_is_builtin(t) &&
                   strcmp(vmc_template_description(t), "My template") == 0 &&
                   strcmp(vmc_template_path(t), file) == 0;
        }
    }
    CHECK(dev && php && mine, "listing: core-dev %d, server-php %d, mine %d", dev, php, mine);
    CHECK(vmc_template_list_get(list, vmc_template_list_len(list)) == NULL, "");
    vmc_template_list_free(list);

    char *content = NULL;
    OK(vmc_get_template(g_home, "core-dev", &content, &err));
    CHECK(strstr(content, "${SSH_KEY}") != NULL, "core-dev lacks ${SSH_KEY}");
    vmc_template_variables_t *vars = NULL;
    OK(vmc_extract_variables(content, &vars, &err));
    CHECK(vmc_template_variables_required_len(vars) == 1 &&
              strcmp(vmc_template_variables_required_get(vars, 0), "SSH_KEY") == 0,
          "core-dev required variables");
    int memory = 0;
    for (size_t i = 0; i < vmc_template_variables_optional_len(vars); i++) {
        const char *name = NULL, *def = NULL;
        CHECK(vmc_template_variables_optional_get(vars, i, &name, &def), "");
        if (strcmp(name, "MEMORY") == 0) memory = strcmp(def, "2048") == 0;
    }
    CHECK(memory, "core-dev MEMORY default is not 2048");
    CHECK(!vmc_template_variables_optional_get(vars, 99, NULL, NULL), "");
    vmc_template_variables_free(vars);
    vmc_string_free(content);

    FAILS(vmc_apply_template(g_home, "core-dev", NULL, NULL, 0, &content, &err),
          VMC_ERROR_TEMPLATE_VARIABLES, "missing required variables: SSH_KEY");
    const char *names[] = {"SSH_KEY"}, *values[] = {"ssh-ed25519 AAAA test"};
    OK(vmc_apply_template(g_home, "core-dev", names, values, 1, &content, &err));
    CHECK(strstr(content, "ssh-ed25519 AAAA test") != NULL && strstr(content, "${") == NULL, "");
    vmc_string_free(content);
    FAILS(vmc_get_template(g_home, "no-such-template", &content, &err), VMC_ERROR_TEMPLATE,
          "no-such-template");

    const char *n2[] = {"A", "X"}, *v2[] = {"${B}", "unused"};
    OK(vmc_apply_variables("a=${A} b=${B:-two} c=${C:-}!", n2, v2, 2, &content, &err));
    CHECK(strcmp(content, "a=${B} b=two c=!") == 0, "applied: %s", content);
    vmc_string_free(content);
    FAILS(vmc_apply_variables("${Z} ${A}", NULL, NULL, 0, &content, &err),
          VMC_ERROR_TEMPLATE_VARIABLES, "A, Z");
    free(file);
    free(dir);
}

static void test_options(void) {
    vmc_run_options_t *o = vmc_run_options_new();
    CHECK(o != NULL, "");
    OK(vmc_run_options_add_port_spec(o, "8080:80", &err));
    /* Each mapping keeps its own listen address. */
    OK(vmc_run_options_add_port_spec(o, "0.0.0.0:8443:443", &err));
    OK(vmc_run_options_add_port_spec(o, "127.0.0.1:8444:444", &err));
    FAILS(vmc_run_options_add_port_spec(o, "8080:80:90:100", &err), VMC_ERROR_INVALID_INPUT,
          "4 fields");
    FAILS(vmc_run_options_add_port_spec(o, "nope", &err), VMC_ERROR_INVALID_INPUT, "nope");
    FAILS(vmc_run_options_add_port_spec(o, "70000:80", &err), VMC_ERROR_INVALID_INPUT, "70000");
    FAILS(vmc_run_options_set_bind_address(o, "not-an-ip", &err), VMC_ERROR_INVALID_INPUT,
          "not-an-ip");
    FAILS(vmc_run_options_add_volume_spec(o, "/only-host", &err), VMC_ERROR_INVALID_INPUT,
          "/only-host");
    OK(vmc_run_options_add_volume_spec(o, "/tmp:/mnt/tmp", &err));
    vmc_run_options_free(o);
}

/* The error kinds, cancellation, run from a template, the dev session
 * options and detection, without a VM. */
static void test_new_api(vmc_manager_t *m) {
    /* The core's kinds, one per code, with the code's name. */
    size_t kinds = vmc_error_kind_count();
    CHECK(kinds >= 17, "%zu kinds", kinds);
    for (size_t i = 0; i < kinds; i++) {
        CHECK(strcmp(vmc_error_kind_at(i), vmc_error_code_name((int)i + 1)) == 0, "kind %zu", i);
    }
    CHECK(vmc_error_kind_at(kinds) == NULL, "");
    CHECK(strcmp(vmc_error_code_name(VMC_ERROR_CANCELLED), "cancelled") == 0, "");

    /* Live objects: a string counts until it is freed. */
    int64_t live = vmc_live_objects();
    char *id = NULL;
    OK(vmc_generate_id(&id, &err));
    CHECK(vmc_live_objects() == live + 1, "");
    vmc_string_free(id);
    CHECK(vmc_live_objects() == live, "");

    /* A cancelled token ends the waiting calls of a bound handle at once;
     * the plain handle and the non-waiting calls are not affected. */
    vmc_cancel_t *tok = vmc_cancel_new();
    CHECK(tok != NULL && !vmc_cancel_is_cancelled(tok), "");
    vmc_manager_t *view = NULL;
    OK(vmc_manager_with_cancel(m, tok, &view, &err));
    FAILS(vmc_manager_stop(view, "nope", 0, NULL, &err), VMC_ERROR_NOT_FOUND, "nope");
    vmc_cancel_cancel(tok);
    vmc_cancel_cancel(tok);
    CHECK(vmc_cancel_is_cancelled(tok), "");
    FAILS(vmc_manager_stop(view, "nope", 0, NULL, &err), VMC_ERROR_CANCELLED, "cancelled");
    FAILS(vmc_manager_wait_ready(view, "nope", 1000, NULL, &err), VMC_ERROR_CANCELLED, NULL);
    FAILS(vmc_manager_stop(m, "nope", 0, NULL, &err), VMC_ERROR_NOT_FOUND, "nope");
    vmc_container_list_t *list = NULL;
    OK(vmc_manager_list(view, &list, &err));
    vmc_container_list_free(list);
    vmc_cancel_free(tok); /* the view keeps its own reference */
    FAILS(vmc_manager_remove(view, "nope", true, NULL, &err), VMC_ERROR_CANCELLED, NULL);
    vmc_manager_free(view);
    FAILS(vmc_manager_with_cancel(m, NULL, &view, &err), VMC_ERROR_INVALID_ARGUMENT, "cancel");
    vmc_cancel_cancel(NULL);
    vmc_cancel_free(NULL);

    /* Run from a template: lookup and variables fail before any build. */
    vmc_container_t *c = NULL;
    FAILS(vmc_manager_run_template(m, "core-dev", NULL, 0, NULL, &c, &err),
          VMC_ERROR_TEMPLATE_VARIABLES, "SSH_KEY");
    const char *bad_vars[] = {"NOEQUALS"};
    FAILS(vmc_manager_run_template(m, "core-dev", bad_vars, 1, NULL, &c, &err),
          VMC_ERROR_INVALID_INPUT, "NOEQUALS");
    FAILS(vmc_manager_run_template(m, "nope", NULL, 0, NULL, &c, &err), VMC_ERROR_TEMPLATE,
          "server-php");
    CHECK(c == NULL, "");

    /* Detection and .core/test.yaml. */
    char *project = path_in(g_home, "detect");
    mkdir(project, 0700);
    char *gomod = path_in(project, "go.mod");
    write_file(gomod, "module x\n");
    char *line = NULL;
    OK(vmc_detect_test_command(project, &line, &err));
    CHECK(line != NULL && strcmp(line, "go test ./...") == 0, "test command %s", line);
    vmc_string_free(line);
    OK(vmc_detect_serve_command(project, &line, &err));
    CHECK(strcmp(line, "python3 -m http.server 8000") == 0, "serve command %s", line);
    vmc_string_free(line);
    OK(vmc_load_test_config(project, &line, &err));
    CHECK(line == NULL, "no test.yaml, yet %s", line);
    char *core = path_in(project, ".core");
    mkdir(core, 0700);
    char *yaml = path_in(core, "test.yaml");
    write_file(yaml, "version: 1\ncommand: make check\ncommands:\n  - name: unit\n    run: make unit\n");
    OK(vmc_load_test_config(project, &line, &err));
    CHECK(line != NULL && strstr(line, "\"make check\"") && strstr(line, "\"unit\""), "%s", line);
    vmc_string_free(line);
    OK(vmc_devenv_image_name(&line, &err));
    CHECK(strncmp(line, "core-devops-", 12) == 0, "%s", line);
    vmc_string_free(line);

    /* Session options: what serve and test would run, with no VM. */
    vmc_devenv_t *d = NULL;
    OK(vmc_devenv_new(g_home, &d, &err));
    vmc_devenv_session_options_t *so = vmc_devenv_session_options_new();
    OK(vmc_devenv_session_options_set_project(so, project, &err));
    OK(vmc_devenv_test_command(d, so, &line, &err));
    CHECK(strcmp(line, "make check") == 0, "%s", line);
    vmc_string_free(line);
    OK(vmc_devenv_session_options_set_test_name(so, "unit", &err));
    OK(vmc_devenv_test_command(d, so, &line, &err));
    CHECK(strcmp(line, "make unit") == 0, "%s", line);
    vmc_string_free(line);
    const char *argv[] = {"node", "server.js"};
    OK(vmc_devenv_session_options_set_command(so, argv, 2, &err));
    OK(vmc_devenv_serve_command(d, so, &line, &err));
    CHECK(strcmp(line, "node server.js") == 0, "%s", line);
    vmc_string_free(line);
    const char *auth[] = {"gh", "aws"};
    FAILS(vmc_devenv_session_options_set_auth(so, auth, 2, &err), VMC_ERROR_INVALID_INPUT, "aws");
    OK(vmc_devenv_session_options_set_auth(so, auth, 1, &err));
    FAILS(vmc_devenv_session_options_set_stdio(so, -1, -5, -1, &err),
          VMC_ERROR_INVALID_ARGUMENT, "stdout_fd");
    int fds[2];
    CHECK(pipe(fds) == 0, "");
    OK(vmc_devenv_session_options_set_stdio(so, -1, fds[1], -1, &err));
    close(fds[0]);
    close(fds[1]);
    int32_t code = -1;
    FAILS(vmc_devenv_shell(d, so, &code, &err), VMC_ERROR_NOT_RUNNING, NULL);
    FAILS(vmc_devenv_test(d, so, &code, &err), VMC_ERROR_NOT_RUNNING, NULL);
    FAILS(vmc_devenv_shell(d, so, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "exit_code");
    vmc_devenv_session_options_free(so);
    vmc_devenv_session_options_free(NULL);
    vmc_devenv_free(d);
    free(yaml);
    free(core);
    free(gomod);
    free(project);
}

/* Every call with a NULL or non-UTF-8 argument returns an error code. */
static void test_bad_arguments(vmc_manager_t *m) {
    vmc_manager_t *m2 = NULL;
    vmc_container_t *c = NULL;
    vmc_exec_result_t *r = NULL;
    char *s = NULL;
    FAILS(vmc_manager_new(g_home, NULL, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "out");
    FAILS(vmc_manager_new("\xff\xfe", NULL, &m2, &err), VMC_ERROR_INVALID_ARGUMENT, "UTF-8");
    FAILS(vmc_manager_get(NULL, "x", &c, &err), VMC_ERROR_INVALID_ARGUMENT, "manager");
    FAILS(vmc_manager_get(m, NULL, &c, &err), VMC_ERROR_INVALID_ARGUMENT, "reference");
    FAILS(vmc_manager_get(m, "x", NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "out");
    FAILS(vmc_manager_run(m, NULL, NULL, &c, &err), VMC_ERROR_INVALID_ARGUMENT, "image");
    FAILS(vmc_manager_stop(m, NULL, 0, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "reference");
    FAILS(vmc_manager_exec(m, "x", NULL, 2, &r, &err), VMC_ERROR_INVALID_ARGUMENT, "argv");
    const char *argv[] = {"echo", NULL};
    FAILS(vmc_manager_exec(m, "x", argv, 2, &r, &err), VMC_ERROR_INVALID_ARGUMENT, "argv[1]");
    FAILS(vmc_manager_logs(m, "x", NULL, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "out");
    FAILS(vmc_manager_logs_follow(m, "x", NULL, NULL, &err), VMC_ERROR_INVALID_ARGUMENT,
          "on_line");
    FAILS(vmc_log_follow_next(NULL, &s, &err), VMC_ERROR_INVALID_ARGUMENT, "follower");
    FAILS(vmc_run_options_set_name(NULL, "x", &err), VMC_ERROR_INVALID_ARGUMENT, "options");
    FAILS(vmc_apply_variables(NULL, NULL, NULL, 0, &s, &err), VMC_ERROR_INVALID_ARGUMENT,
          "content");
    FAILS(vmc_detect_image_format(NULL, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "path");
    FAILS(vmc_container_to_json(NULL, &s, &err), VMC_ERROR_INVALID_ARGUMENT, "container");
    /* Without an error object, the code alone still comes back. */
    CHECK(vmc_manager_get(m, NULL, &c, NULL) == VMC_ERROR_INVALID_ARGUMENT, "");
    /* Accessors and releases accept NULL. */
    CHECK(vmc_container_id(NULL) == NULL && vmc_container_pid(NULL) == 0, "");
    CHECK(vmc_container_list_len(NULL) == 0 && vmc_container_list_get(NULL, 0) == NULL, "");
    CHECK(vmc_exec_result_stdout(NULL, NULL) == NULL && vmc_exec_result_exit_code(NULL) == -1, "");
    CHECK(vmc_error_code(NULL) == VMC_ERROR_INVALID_ARGUMENT && vmc_error_message(NULL) == NULL,
          "");
    CHECK(vmc_manager_home(NULL) == NULL && vmc_hypervisor_name(NULL) == NULL, "");
    vmc_manager_free(NULL);
    vmc_run_options_free(NULL);
    vmc_container_free(NULL);
    vmc_container_list_free(NULL);
    vmc_exec_result_free(NULL);
    vmc_log_follow_free(NULL);
    vmc_hypervisor_free(NULL);
    vmc_template_list_free(NULL);
    vmc_template_variables_free(NULL);
    vmc_error_free(NULL);
    vmc_string_free(NULL);
    g_passed++;
}

/* Unknown IDs and bad images fail with the right code and a useful message. */
static void test_error_paths(vmc_manager_t *m) {
    vmc_container_t *c = NULL;
    vmc_exec_result_t *r = NULL;
    char *s = NULL;
    const char *argv[] = {"true"};
    FAILS(vmc_manager_get(m, "deadbeef", &c, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_stop(m, "deadbeef", 1000, NULL, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_remove(m, "deadbeef", true, NULL, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_exec(m, "deadbeef", argv, 1, &r, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_logs(m, "deadbeef", &s, NULL, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_inspect(m, "deadbeef", &s, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_start(m, "deadbeef", NULL, &err), VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_wait_ready(m, "deadbeef", 1000, NULL, &err), VMC_ERROR_NOT_FOUND,
          "deadbeef");
    int answered = -1;
    FAILS(vmc_manager_wait_ready_via(m, "deadbeef", 1000, VMC_TRANSPORT_SSH, &c, &answered, &err),
          VMC_ERROR_NOT_FOUND, "deadbeef");
    FAILS(vmc_manager_wait_ready_via(m, "deadbeef", 1000, 7, &c, &answered, &err),
          VMC_ERROR_INVALID_ARGUMENT, "transport 7");
    CHECK(answered == -1, "answered set on failure");
    CHECK(c == NULL && r == NULL && s == NULL, "out-pointers set on failure");

    FAILS(vmc_manager_run(m, "/nonexistent/image.iso", NULL, &c, &err), VMC_ERROR_INVALID_INPUT,
          "/nonexistent/image.iso");
    char *junk = path_in(g_home, "junk.txt");
    write_file(junk, "this is not a bootable image\n");
    vmc_run_options_t *o = vmc_run_options_new();
    OK(vmc_run_options_set_detach(o, true, &err));
    FAILS(vmc_manager_run(m, junk, o, &c, &err), VMC_ERROR_INVALID_INPUT, "unknown image format");
    OK(vmc_run_options_set_memory_mb(o, 0, &err));
    char *kernel = path_in(g_guest, "vmtest-kernel");
    FAILS(vmc_manager_run(m, kernel, o, &c, &err), VMC_ERROR_INVALID_INPUT, "memory");
    vmc_run_options_free(o);
    free(kernel);
    free(junk);

    /* Snapshots: unknown names, bad names, nothing listed. */
    vmc_snapshot_t *snap = NULL;
    FAILS(vmc_manager_snapshot_create(m, "deadbeef", "s1", &snap, &err), VMC_ERROR_NOT_FOUND,
          "deadbeef");
    FAILS(vmc_manager_snapshot_create(m, "deadbeef", "a/b", &snap, &err),
          VMC_ERROR_INVALID_INPUT, "a/b");
    FAILS(vmc_manager_run_snapshot(m, "nosuch", NULL, &c, &err), VMC_ERROR_NOT_FOUND, "nosuch");
    FAILS(vmc_manager_run_snapshot_attached(m, "nosuch", NULL, NULL, NULL, &c, &err),
          VMC_ERROR_INVALID_ARGUMENT, "on_output");
    FAILS(vmc_manager_snapshot_get(m, "nosuch", &snap, &err), VMC_ERROR_NOT_FOUND, "nosuch");
    FAILS(vmc_manager_snapshot_remove(m, "nosuch", &err), VMC_ERROR_NOT_FOUND, "nosuch");
    FAILS(vmc_manager_commit(m, "deadbeef", "/tmp/x.qcow2", &err), VMC_ERROR_NOT_FOUND,
          "deadbeef");
    CHECK(snap == NULL && c == NULL, "out-pointers set on failure");
    vmc_snapshot_list_t *snaps = NULL;
    OK(vmc_manager_snapshot_list(m, &snaps, &err));
    CHECK(vmc_snapshot_list_len(snaps) == 0 && vmc_snapshot_list_get(snaps, 0) == NULL, "");
    vmc_snapshot_list_free(snaps);
    CHECK(vmc_snapshot_name(NULL) == NULL && vmc_snapshot_memory_mb(NULL) == 0, "");

    vmc_container_list_t *list = NULL;
    OK(vmc_manager_list(m, &list, &err));
    CHECK(vmc_container_list_len(list) == 0, "failed runs left %zu records",
          vmc_container_list_len(list));
    vmc_container_list_free(list);
}

/* A record from a newer version (an unknown status) and one mapping that
 * listens beyond loopback read as such; a damaged record can be removed. */
static void test_unknown_and_damaged_records(vmc_manager_t *m) {
    char *state = path_in(g_home, "containers.json");
    write_file(state,
               "{\"containers\": {\"0a0a0a0a\": {\"id\": \"0a0a0a0a\", \"name\": null,"
               " \"image\": \"/i.iso\", \"status\": \"hibernating\", \"pid\": 0,"
               " \"started_at\": \"2025-01-01T00:00:00Z\", \"ports\": {\"8080\": 80, \"8443\": 443},"
               " \"bind_addresses\": {\"8443\": \"0.0.0.0\"}},"
               " \"../../x\": {\"id\": \"../../x\"}}}");
    vmc_container_t *c = NULL;
    OK(vmc_manager_get(m, "0a0a0a0a", &c, &err));
    CHECK(vmc_container_status(c) == VMC_STATUS_UNKNOWN, "status %d", vmc_container_status(c));
    CHECK(strcmp(vmc_container_status_name(c), "hibernating") == 0, "%s",
          vmc_container_status_name(c));
    uint16_t host = 0, guest = 0;
    CHECK(vmc_container_port_at(c, 1, &host, &guest) && host == 8443 && guest == 443, "");
    CHECK(strcmp(vmc_container_port_bind_address(c, 0), "127.0.0.1") == 0, "");
    CHECK(strcmp(vmc_container_port_bind_address(c, 1), "0.0.0.0") == 0, "");
    CHECK(vmc_container_port_bind_address(c, 2) == NULL, "");
    vmc_container_free(c);
    c = NULL;
    FAILS(vmc_manager_get(m, "../../x", &c, &err), VMC_ERROR_STATE_CORRUPT, "damaged");
    OK(vmc_manager_remove(m, "../../x", false, NULL, &err));
    OK(vmc_manager_remove(m, "0a0a0a0a", false, NULL, &err));
    vmc_container_list_t *list = NULL;
    OK(vmc_manager_list(m, &list, &err));
    CHECK(vmc_container_list_len(list) == 0, "records left");
    vmc_container_list_free(list);
    free(state);
}

/* Snapshot of the running container, a clone resumed from it, and the
 * refusals around them. Two VMs run while the clone lives. */
static void test_spawn(vmc_manager_t *m, const char *id) {
    /* stdin in, stdout and stderr apart, env and cwd, the exit code. */
    const char *argv[] = {"sh", "-c", "tr a-z A-Z; echo \"$GREETING $(pwd)\" >&2; exit 4"};
    const char *env[] = {"GREETING=it's $HOME"};
    vmc_process_t *p = NULL;
    OK(vmc_manager_spawn(m, id, argv, 3, env, 1, "/tmp", NULL, 0, 0, &p, &err));
    CHECK(vmc_process_pid(p) > 1, "pid %u", vmc_process_pid(p));
    OK(vmc_process_write(p, (const uint8_t *)"hello", 5, &err));
    OK(vmc_process_close_stdin(p, &err));
    FAILS(vmc_process_write(p, (const uint8_t *)"x", 1, &err), VMC_ERROR_INVALID_INPUT, "closed");
    char out[256] = {0}, errbuf[256] = {0};
    size_t got = 0, n = 0;
    do {
        OK(vmc_process_read(p, VMC_STDOUT, (uint8_t *)out + got, sizeof out - 1 - got, &n, &err));
        got += n;
    } while (n > 0 && got < sizeof out - 1);
    CHECK(strcmp(out, "HELLO") == 0, "stdout %s", out);
    got = 0;
    do {
        OK(vmc_process_read(p, VMC_STDERR, (uint8_t *)errbuf + got, sizeof errbuf - 1 - got, &n,
                            &err));
        got += n;
    } while (n > 0 && got < sizeof errbuf - 1);
    CHECK(strcmp(errbuf, "it's $HOME /tmp\n") == 0, "stderr %s", errbuf);
    int code = -1, sig = -1;
    OK(vmc_process_wait(p, &code, &sig, &err));
    CHECK(code == 4 && sig == 0, "code %d signal %d", code, sig);
    vmc_process_free(p);

    /* A signal ends it; a timeout kills it and says so. */
    const char *sleep_argv[] = {"sleep", "300"};
    OK(vmc_manager_spawn(m, id, sleep_argv, 2, NULL, 0, NULL, NULL, 0, 0, &p, &err));
    OK(vmc_process_kill(p, 15, &err));
    OK(vmc_process_wait(p, &code, &sig, &err));
    CHECK(code == 143 && sig == 15, "code %d signal %d", code, sig);
    vmc_process_free(p);
    OK(vmc_manager_spawn(m, id, sleep_argv, 2, NULL, 0, NULL, NULL, 0, 1500, &p, &err));
    FAILS(vmc_process_wait(p, &code, &sig, &err), VMC_ERROR_TIMEOUT, "sleep");
    vmc_process_free(p);
    FAILS(vmc_manager_spawn(m, id, sleep_argv, 2, env, 1, NULL, "bad user", 0, 0, &p, &err),
          VMC_ERROR_INVALID_INPUT, "bad user");
    vmc_process_free(NULL);
}

static void test_snapshot(vmc_manager_t *m, const char *id) {
    double t0 = now_s();
    vmc_snapshot_t *s = NULL;
    OK(vmc_manager_snapshot_create(m, id, "c-snap", &s, &err));
    double t_create = now_s() - t0;
    CHECK(strcmp(vmc_snapshot_name(s), "c-snap") == 0, "");
    CHECK(strcmp(vmc_snapshot_source_id(s), id) == 0, "");
    CHECK(strcmp(vmc_snapshot_source_name(s), CONTAINER_NAME) == 0, "");
    CHECK(vmc_snapshot_memory_mb(s) == 512 && vmc_snapshot_cpus(s) == 1, "");
    CHECK(vmc_snapshot_size_bytes(s) > 0 && vmc_snapshot_path(s)[0] == '/', "");
    CHECK(vmc_snapshot_created_at(s)[0] != '\0' && vmc_snapshot_qemu_version(s)[0] != '\0', "");
    char *json = NULL;
    OK(vmc_snapshot_to_json(s, &json, &err));
    CHECK(strstr(json, "\"machine\"") != NULL && strstr(json, "\"devices\"") != NULL, "%s", json);
    vmc_string_free(json);
    vmc_snapshot_free(s);
    FAILS(vmc_manager_snapshot_create(m, id, "c-snap", NULL, &err), VMC_ERROR_INVALID_INPUT,
          "already exists");
    vmc_snapshot_list_t *snaps = NULL;
    OK(vmc_manager_snapshot_list(m, &snaps, &err));
    CHECK(vmc_snapshot_list_len(snaps) == 1, "");
    CHECK(strcmp(vmc_snapshot_name(vmc_snapshot_list_get(snaps, 0)), "c-snap") == 0, "");
    vmc_snapshot_list_free(snaps);
    OK(vmc_manager_snapshot_get(m, "c-snap", &s, &err));
    CHECK(strcmp(vmc_snapshot_name(s), "c-snap") == 0 && vmc_snapshot_memory_mb(s) == 512, "");
    vmc_snapshot_free(s);

    vmc_run_options_t *o = vmc_run_options_new();
    OK(vmc_run_options_set_detach(o, true, &err));
    OK(vmc_run_options_set_memory_mb(o, 256, &err));
    vmc_container_t *c = NULL;
    FAILS(vmc_manager_run_snapshot(m, "c-snap", o, &c, &err), VMC_ERROR_INVALID_INPUT, "512 MB");
    vmc_run_options_free(o);
    o = vmc_run_options_new();
    OK(vmc_run_options_set_detach(o, true, &err));
    OK(vmc_run_options_set_name(o, "c-clone", &err));
    t0 = now_s();
    OK(vmc_manager_run_snapshot(m, "c-snap", o, &c, &err));
    const char *cmd[] = {"sh", "-c", "echo clone-$(hostname)"};
    vmc_exec_result_t *r = NULL;
    OK(vmc_manager_exec(m, "c-clone", cmd, 3, &r, &err));
    double t_warm = now_s() - t0;
    CHECK(strcmp(vmc_exec_result_stdout(r, NULL), "clone-vmtest\n") == 0, "\"%s\"",
          vmc_exec_result_stdout(r, NULL));
    vmc_exec_result_free(r);
    CHECK(strcmp(vmc_container_name(c), "c-clone") == 0 && vmc_container_memory_mb(c) == 512, "");
    CHECK(strcmp(vmc_container_id(c), id) != 0, "");
    CHECK(strcmp(vmc_container_snapshot(c), "c-snap") == 0, "");
    vmc_container_free(c);
    FAILS(vmc_manager_snapshot_remove(m, "c-snap", &err), VMC_ERROR_INVALID_INPUT, "c-clone");
    /* The kernel+initrd guest has no disk to commit. */
    FAILS(vmc_manager_commit(m, "c-clone", "/tmp/c-clone.qcow2", &err), VMC_ERROR_INVALID_INPUT,
          "no disk");
    OK(vmc_manager_remove(m, "c-clone", true, NULL, &err));
    OK(vmc_manager_snapshot_remove(m, "c-snap", &err));
    vmc_run_options_free(o);
    fprintf(stderr, "lifecycle: snapshot create %.2fs, run from it to exec %.2fs\n", t_create,
            t_warm);
}

/* ------------------------------------------------------------------ vm -- */

struct follow_state {
    pthread_t caller;
    int lines;
    int other_thread;
};

static int on_line(void *user_data, const char *line, size_t len) {
    struct follow_state *st = user_data;
    if (!pthread_equal(pthread_self(), st->caller)) st->other_thread = 1;
    if (strlen(line) != len) st->other_thread = 2; /* NUL-terminated at len */
    st->lines++;
    return st->lines >= 3; /* stop after three lines */
}

/* Waits (pull style) for a line containing `needle`; returns seconds taken. */
static double follow_until(vmc_log_follower_t *f, const char *needle) {
    double start = now_s();
    for (;;) {
        double left_ms = READY_TIMEOUT_MS - (now_s() - start) * 1000.0;
        if (left_ms <= 0) fail(__FILE__, __LINE__, "no \"%s\" line in the log", needle);
        char *line = NULL;
        OK(vmc_log_follow_next_timeout(f, (uint64_t)left_ms, &line, &err));
        if (line == NULL) fail(__FILE__, __LINE__, "log ended before \"%s\"", needle);
        int found = strstr(line, needle) != NULL;
        vmc_string_free(line);
        if (found) return now_s() - start;
    }
}

/* Cancels a token after a delay, from its own thread. */
struct canceller {
    vmc_cancel_t *token;
    unsigned delay_ms;
};

static void *cancel_later(void *arg) {
    struct canceller *c = arg;
    usleep(c->delay_ms * 1000u);
    vmc_cancel_cancel(c->token);
    return NULL;
}

/* Reads what is left in a pipe into a new string. */
static char *read_all(int fd) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

static void test_lifecycle(vmc_manager_t *m) {
    char *kernel = path_in(g_guest, "vmtest-kernel");
    char *key = path_in(g_guest, "id_ed25519");
    vmc_run_options_t *o = vmc_run_options_new();
    OK(vmc_run_options_set_detach(o, true, &err));
    OK(vmc_run_options_set_name(o, CONTAINER_NAME, &err));
    OK(vmc_run_options_set_memory_mb(o, 512, &err));
    OK(vmc_run_options_set_cpus(o, 1, &err));
    OK(vmc_run_options_set_ssh_key(o, key, &err));

    double t0 = now_s();
    vmc_container_t *c = NULL;
    OK(vmc_manager_run(m, kernel, o, &c, &err));
    double t_run = now_s() - t0;
    char id[16];
    snprintf(id, sizeof id, "%s", vmc_container_id(c));
    CHECK(strlen(id) == 8 && strspn(id, "0123456789abcdef") == 8, "id %s", id);
    CHECK(strcmp(vmc_container_name(c), CONTAINER_NAME) == 0, "");
    CHECK(vmc_container_status(c) == VMC_STATUS_RUNNING, "");
    CHECK(strcmp(vmc_container_status_name(c), "running") == 0, "");
    CHECK(vmc_container_pid(c) > 0 && vmc_container_ssh_port(c) > 0, "");
    CHECK(vmc_container_memory_mb(c) == 512 && vmc_container_cpus(c) == 1, "");
    CHECK(vmc_container_format(c) == VMC_IMAGE_FORMAT_KERNEL_INITRD, "");
    CHECK(strcmp(vmc_container_image(c), kernel) == 0, "image %s", vmc_container_image(c));
    CHECK(strcmp(vmc_container_hypervisor(c), "qemu") == 0 && vmc_container_accel(c) != NULL, "");
    CHECK(strcmp(vmc_container_ssh_key(c), key) == 0, "");
    CHECK(vmc_container_started_at(c)[0] != '\0' && vmc_container_stopped_at(c) == NULL, "");
    CHECK(vmc_container_port_count(c) == 0 && vmc_container_volume_count(c) == 0, "");
    CHECK(vmc_container_snapshot(c) == NULL, "");
    int code = 0;
    CHECK(!vmc_container_exit_code(c, &code), "detached run has an exit code");
    char *json = NULL;
    OK(vmc_container_to_json(c, &json, &err));
    CHECK(strstr(json, id) != NULL && strstr(json, "\"status\":\"running\"") != NULL, "%s", json);
    vmc_string_free(json);
    vmc_container_free(c);

    /* The log, followed from the start, reaches the ready line. */
    vmc_log_follower_t *f = NULL;
    OK(vmc_manager_logs_follower(m, id, &f, &err));
    double t_ready_line = follow_until(f, "VMTEST READY");
    t0 = now_s();
    OK(vmc_manager_wait_ready(m, CONTAINER_NAME, READY_TIMEOUT_MS, &c, &err));
    double t_ssh = now_s() - t0;
    CHECK(strcmp(vmc_container_id(c), id) == 0, "");
    vmc_container_free(c);
    int answered = -1;
    OK(vmc_manager_wait_ready_via(m, id, READY_TIMEOUT_MS, VMC_TRANSPORT_SSH, NULL, &answered,
                                  &err));
    CHECK(answered == VMC_TRANSPORT_SSH, "answered %d", answered);

    /* Lookup by name, by prefix, and in the list. */
    char prefix[5];
    memcpy(prefix, id, 4);
    prefix[4] = '\0';
    OK(vmc_manager_get(m, prefix, &c, &err));
    CHECK(strcmp(vmc_container_id(c), id) == 0, "");
    vmc_container_free(c);
    vmc_container_list_t *list = NULL;
    OK(vmc_manager_list(m, &list, &err));
    CHECK(vmc_container_list_len(list) == 1, "");
    CHECK(strcmp(vmc_container_id(vmc_container_list_get(list, 0)), id) == 0, "");
    vmc_container_list_free(list);
    char *info = NULL;
    OK(vmc_manager_inspect(m, id, &info, &err));
    CHECK(strstr(info, "\"log_path\"") != NULL && strstr(info, id) != NULL, "%s", info);
    vmc_string_free(info);

    /* Exec: exit code and both streams. */
    const char *cmd[] = {"sh", "-c", "echo out; echo err >&2; exit 3"};
    vmc_exec_result_t *r = NULL;
    t0 = now_s();
    OK(vmc_manager_exec(m, id, cmd, 3, &r, &err));
    double t_exec = now_s() - t0;
    size_t len = 0;
    CHECK(vmc_exec_result_exit_code(r) == 3, "exit code %d", vmc_exec_result_exit_code(r));
    CHECK(strcmp(vmc_exec_result_stdout(r, &len), "out\n") == 0 && len == 4, "stdout \"%s\"",
          vmc_exec_result_stdout(r, NULL));
    CHECK(strcmp(vmc_exec_result_stderr(r, &len), "err\n") == 0 && len == 4, "stderr \"%s\"",
          vmc_exec_result_stderr(r, NULL));
    vmc_exec_result_free(r);
    /* A long command, cancelled from another thread: the call returns at
     * once (the ssh client is killed), and the next exec works. */
    vmc_cancel_t *tok = vmc_cancel_new();
    vmc_manager_t *view = NULL;
    OK(vmc_manager_with_cancel(m, tok, &view, &err));
    struct canceller cl = {tok, 500};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, cancel_later, &cl) == 0, "");
    const char *sleep_cmd[] = {"sleep", "60"};
    t0 = now_s();
    FAILS(vmc_manager_exec(view, id, sleep_cmd, 2, &r, &err), VMC_ERROR_CANCELLED, "cancelled");
    double t_cancel = now_s() - t0;
    pthread_join(th, NULL);
    CHECK(t_cancel < 10, "a cancelled exec took %.1fs", t_cancel);
    vmc_manager_free(view);
    vmc_cancel_free(tok);
    const char *echo[] = {"echo", "two  spaces", "$HOME"};
    OK(vmc_manager_exec(m, CONTAINER_NAME, echo, 3, &r, &err));
    CHECK(vmc_exec_result_exit_code(r) == 0, "");
    CHECK(strcmp(vmc_exec_result_stdout(r, NULL), "two  spaces $HOME\n") == 0,
          "arguments were re-split or expanded: \"%s\"", vmc_exec_result_stdout(r, NULL));
    vmc_exec_result_free(r);

    /* Standard input and a chosen transport. */
    const char *upper[] = {"tr", "a-z", "A-Z"};
    OK(vmc_manager_exec_with(m, id, upper, 3, (const uint8_t *)"hello", 5, VMC_TRANSPORT_SSH,
                             &r, &err));
    CHECK(strcmp(vmc_exec_result_stdout(r, NULL), "HELLO") == 0, "stdin: \"%s\"",
          vmc_exec_result_stdout(r, NULL));
    vmc_exec_result_free(r);
    FAILS(vmc_manager_exec_with(m, id, upper, 3, NULL, 0, 7, &r, &err),
          VMC_ERROR_INVALID_ARGUMENT, "transport");

    /* Copy a file in and back out. */
    char *src = path_in(g_home, "copy-src.txt");
    char *back = path_in(g_home, "copy-back.txt");
    write_file(src, "copied both ways\n");
    OK(vmc_manager_copy_to(m, id, src, "/tmp/c.txt", false, VMC_TRANSPORT_AUTO, &err));
    OK(vmc_manager_copy_from(m, id, "/tmp/c.txt", back, false, VMC_TRANSPORT_AUTO, &err));
    FILE *fb = fopen(back, "r");
    char line[64] = {0};
    CHECK(fb && fgets(line, sizeof line, fb) && strcmp(line, "copied both ways\n") == 0,
          "copied back: \"%s\"", line);
    if (fb) fclose(fb);
    FAILS(vmc_manager_copy_from(m, id, "/no/such", back, false, VMC_TRANSPORT_AUTO, &err),
          VMC_ERROR_INVALID_INPUT, "/no/such");
    free(src);
    free(back);

    /* Whole log. */
    char *log = NULL;
    OK(vmc_manager_logs(m, id, &log, &len, &err));
    CHECK(strstr(log, "VMTEST READY") != NULL && strlen(log) == len, "");
    vmc_string_free(log);

    /* Follow with a callback: runs on this thread, stops when asked. */
    struct follow_state st = {pthread_self(), 0, 0};
    OK(vmc_manager_logs_follow(m, id, on_line, &st, &err));
    CHECK(st.lines == 3 && st.other_thread == 0, "lines %d, other thread %d", st.lines,
          st.other_thread);

    test_spawn(m, id);
    test_snapshot(m, id);

    /* Running containers refuse start and plain remove. */
    FAILS(vmc_manager_start(m, id, NULL, &err), VMC_ERROR_RUNNING, id);
    FAILS(vmc_manager_remove(m, id, false, NULL, &err), VMC_ERROR_RUNNING, id);

    /* Stop (ACPI), then the follower drains and ends. */
    t0 = now_s();
    OK(vmc_manager_stop(m, id, VMC_DEFAULT_STOP_TIMEOUT_MS, &c, &err));
    double t_stop = now_s() - t0;
    CHECK(vmc_container_status(c) == VMC_STATUS_STOPPED && vmc_container_stopped_at(c) != NULL,
          "");
    vmc_container_free(c);
    for (int i = 0;; i++) {
        char *line = NULL;
        OK(vmc_log_follow_next_timeout(f, 30000, &line, &err));
        if (line == NULL) break;
        vmc_string_free(line);
        CHECK(i < 100000, "follower never ends");
    }
    vmc_log_follow_free(f);
    FAILS(vmc_manager_stop(m, id, 1000, NULL, &err), VMC_ERROR_NOT_RUNNING, id);
    FAILS(vmc_manager_exec(m, id, cmd, 3, &r, &err), VMC_ERROR_NOT_RUNNING, id);

    /* Remove: record and log are gone. */
    char *logs_dir = path_in(g_home, "logs");
    char log_name[32];
    snprintf(log_name, sizeof log_name, "%s.log", id);
    char *log_path = path_in(logs_dir, log_name);
    CHECK(file_exists(log_path), "%s missing before remove", log_path);
    OK(vmc_manager_remove(m, id, false, &c, &err));
    CHECK(strcmp(vmc_container_id(c), id) == 0, "");
    vmc_container_free(c);
    CHECK(!file_exists(log_path), "%s still there after remove", log_path);
    FAILS(vmc_manager_get(m, id, &c, &err), VMC_ERROR_NOT_FOUND, id);
    free(log_path);
    free(logs_dir);

    fprintf(stderr,
            "lifecycle: timings: run %.2fs, ready line %.1fs, ssh ready %.1fs, exec %.2fs, "
            "stop %.2fs\n",
            t_run, t_ready_line, t_ssh, t_exec, t_stop);
    vmc_run_options_free(o);
    free(key);
    free(kernel);
}

/* Foreground run: output reaches the callback on this thread, and the
 * callback can stop the VM through the library (re-entrancy). */
struct attached_state {
    vmc_manager_t *m;
    pthread_t caller;
    int other_thread;
    int stop_rc;
    int stopping;
    char *seen; /* all output so far (serial output of one boot is small) */
    size_t len;
};

static void on_output(void *user_data, const uint8_t *data, size_t len) {
    struct attached_state *st = user_data;
    if (!pthread_equal(pthread_self(), st->caller)) st->other_thread = 1;
    char *grown = realloc(st->seen, st->len + len);
    if (grown == NULL) fail(__FILE__, __LINE__, "out of memory");
    st->seen = grown;
    memcpy(st->seen + st->len, data, len);
    st->len += len;
    if (!st->stopping && memmem(st->seen, st->len, "VMTEST READY", 12) != NULL) {
        st->stopping = 1;
        vmc_error_t *e = NULL;
        st->stop_rc = vmc_manager_stop(st->m, ATTACHED_NAME, VMC_DEFAULT_STOP_TIMEOUT_MS, NULL, &e);
        if (e != NULL) {
            fprintf(stderr, "lifecycle: stop from callback: %s\n", vmc_error_message(e));
            vmc_error_free(e);
        }
    }
}

static void test_attached(vmc_manager_t *m) {
    char *kernel = path_in(g_guest, "vmtest-kernel");
    vmc_run_options_t *o = vmc_run_options_new();
    OK(vmc_run_options_set_name(o, ATTACHED_NAME, &err));
    OK(vmc_run_options_set_memory_mb(o, 512, &err));
    struct attached_state st = {.m = m, .caller = pthread_self(), .stop_rc = -1};
    FAILS(vmc_manager_run_attached(m, kernel, o, NULL, &st, NULL, &err), VMC_ERROR_INVALID_ARGUMENT,
          "on_output");
    vmc_container_t *c = NULL;
    double t0 = now_s();
    OK(vmc_manager_run_attached(m, kernel, o, on_output, &st, &c, &err));
    double t = now_s() - t0;
    CHECK(st.stopping && st.stop_rc == VMC_OK, "callback did not stop the VM (rc %d)", st.stop_rc);
    CHECK(st.other_thread == 0, "output callback ran on another thread");
    CHECK(st.len > 0, "");
    free(st.seen);
    CHECK(vmc_container_status(c) == VMC_STATUS_STOPPED, "status %s",
          vmc_container_status_name(c));
    CHECK(vmc_container_exit_code(c, &(int){0}), "foreground run has no exit code");
    OK(vmc_manager_remove(m, ATTACHED_NAME, false, NULL, &err));
    vmc_container_free(c);
    vmc_run_options_free(o);
    free(kernel);
    fprintf(stderr, "lifecycle: timings: attached run %.1fs\n", t);
}

/* -------------------------------------------------------------- devenv -- */

/* Without an installed image: status, refusals, a bad config.yaml. */
static void test_devenv_unit(void) {
    vmc_devenv_t *d = NULL;
    OK(vmc_devenv_new(g_home, &d, &err));
    CHECK(!vmc_devenv_is_installed(d), "");
    vmc_devenv_status_t *st = NULL;
    OK(vmc_devenv_status(d, &st, &err));
    CHECK(!vmc_devenv_status_installed(st) && !vmc_devenv_status_running(st), "");
    CHECK(vmc_devenv_status_image_version(st) == NULL && vmc_devenv_status_container_id(st) == NULL,
          "");
    CHECK(strstr(vmc_devenv_status_image_path(st), "core-devops-") != NULL, "image path %s",
          vmc_devenv_status_image_path(st));
    CHECK(!vmc_devenv_status_uptime_secs(st, &(uint64_t){0}), "");
    vmc_devenv_status_free(st);
    bool running = true;
    OK(vmc_devenv_is_running(d, &running, &err));
    CHECK(!running, "");
    FAILS(vmc_devenv_boot(d, NULL, NULL, &err), VMC_ERROR_NOT_FOUND, "core-devops-");
    FAILS(vmc_devenv_stop(d, NULL, &err), VMC_ERROR_NOT_RUNNING, NULL);
    FAILS(vmc_devenv_install(NULL, NULL, NULL, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "devenv");
    FAILS(vmc_devenv_is_running(d, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "running");
    vmc_devenv_boot_options_t *o = vmc_devenv_boot_options_new();
    FAILS(vmc_devenv_boot_options_set_project(o, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "path");
    vmc_devenv_boot_options_free(o);
    vmc_devenv_free(d);

    char *bad = path_in(g_home, "badcfg");
    mkdir(bad, 0700);
    char *cfg = path_in(bad, "config.yaml");
    write_file(cfg, "version: 1\nimages:\n  source: ftp\n");
    d = (vmc_devenv_t *)1;
    FAILS(vmc_devenv_new(bad, &d, &err), VMC_ERROR_INVALID_INPUT, "config.yaml");
    CHECK(d == NULL, "");
    vmc_devenv_free(NULL);
    vmc_devenv_status_free(NULL);
    vmc_devenv_install_report_free(NULL);
    vmc_devenv_boot_options_free(NULL);
    free(cfg);
    free(bad);
}

/* A home under g_home whose config.yaml takes dev images from `url`. */
static vmc_devenv_t *devenv_for(const char *dir_name, const char *url) {
    char *dir = path_in(g_home, dir_name);
    mkdir(dir, 0700);
    char *cfg = path_in(dir, "config.yaml");
    char text[1024];
    snprintf(text, sizeof text, "version: 1\nimages:\n  source: cdn\n  cdn:\n    url: %s\n", url);
    write_file(cfg, text);
    vmc_devenv_t *d = NULL;
    OK(vmc_devenv_new(dir, &d, &err));
    free(cfg);
    free(dir);
    return d;
}

/* Installs that fail: a checksum mismatch, and an image the CDN answers
 * with 404 (see run.sh for the two broken releases). */
static void test_devenv_install_errors(void) {
    const char *url = getenv("VMC_TEST_CDN_URL");
    if (url == NULL || url[0] == '\0') fail(__FILE__, __LINE__, "VMC_TEST_CDN_URL is not set");
    CHECK(strcmp(vmc_error_code_name(VMC_ERROR_DOWNLOAD), "download") == 0, "");
    CHECK(strcmp(vmc_error_code_name(VMC_ERROR_CHECKSUM), "checksum") == 0, "");
    CHECK(VMC_ERROR_IO == 14 && VMC_ERROR_DOWNLOAD == 15 && VMC_ERROR_CHECKSUM == 16, "");
    char sub[512];
    vmc_devenv_install_report_t *r = (vmc_devenv_install_report_t *)1;

    snprintf(sub, sizeof sub, "%s/tampered", url);
    vmc_devenv_t *d = devenv_for("dl-tampered", sub);
    FAILS(vmc_devenv_install(d, NULL, NULL, &r, &err), VMC_ERROR_CHECKSUM, "checksum mismatch");
    CHECK(r == NULL, "report set after a failure");
    CHECK(!vmc_devenv_is_installed(d), "");
    vmc_devenv_free(d);

    snprintf(sub, sizeof sub, "%s/gone", url);
    d = devenv_for("dl-gone", sub);
    r = (vmc_devenv_install_report_t *)1;
    FAILS(vmc_devenv_install(d, NULL, NULL, &r, &err), VMC_ERROR_DOWNLOAD, "HTTP 404");
    CHECK(r == NULL, "report set after a failure");
    CHECK(!vmc_devenv_is_installed(d), "");
    vmc_devenv_free(d);
}

struct progress_state {
    pthread_t caller;
    int calls;
    int other_thread;
    uint64_t last;
    int64_t total;
};

static void on_progress(void *user_data, uint64_t downloaded, int64_t total) {
    struct progress_state *st = user_data;
    if (!pthread_equal(pthread_self(), st->caller)) st->other_thread = 1;
    st->calls++;
    st->last = downloaded;
    st->total = total;
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Install from the loopback CDN, then boot the test guest as the dev VM. */
static void test_devenv_vm(vmc_manager_t *m) {
    const char *url = getenv("VMC_TEST_CDN_URL");
    if (url == NULL || url[0] == '\0') fail(__FILE__, __LINE__, "VMC_TEST_CDN_URL is not set");
    char *key = path_in(g_guest, "id_ed25519");
    char *cfg = path_in(g_home, "config.yaml");
    char text[1024];
    snprintf(text, sizeof text,
             "version: 1\nimages:\n  source: cdn\n  cdn:\n    url: %s\n"
             "dev:\n  memory: 512\n  cpus: 1\n  ssh_key: %s\n",
             url, key);
    write_file(cfg, text);
    char *project = path_in(g_home, "project");
    mkdir(project, 0700);
    char *marker = path_in(project, "marker.txt");
    write_file(marker, "project shared at /app\n");

    vmc_devenv_t *d = NULL;
    OK(vmc_devenv_new(g_home, &d, &err));
    struct progress_state ps = {.caller = pthread_self(), .total = -2};
    vmc_devenv_install_report_t *r = NULL;
    double t0 = now_s();
    OK(vmc_devenv_install(d, on_progress, &ps, &r, &err));
    double t_install = now_s() - t0;
    char *qcow2 = path_in(g_guest, "vmtest.qcow2");
    long size = file_size(qcow2);
    CHECK(ps.calls > 0 && ps.other_thread == 0, "progress: %d calls, other thread %d", ps.calls,
          ps.other_thread);
    CHECK((long)ps.last == size && ps.total == size, "progress ended at %llu of %lld, file %ld",
          (unsigned long long)ps.last, (long long)ps.total, size);
    CHECK(strcmp(vmc_devenv_install_report_version(r), "1.0.0") == 0, "");
    CHECK(strcmp(vmc_devenv_install_report_source(r), "cdn") == 0, "");
    CHECK(strlen(vmc_devenv_install_report_sha256(r)) == 64, "");
    CHECK((long)vmc_devenv_install_report_size(r) == size, "");
    CHECK(!vmc_devenv_install_report_already_installed(r), "");
    CHECK(file_size(vmc_devenv_install_report_path(r)) == size, "");
    vmc_devenv_install_report_free(r);
    OK(vmc_devenv_install(d, NULL, NULL, &r, &err));
    CHECK(vmc_devenv_install_report_already_installed(r), "second install downloaded again");
    vmc_devenv_install_report_free(r);
    CHECK(vmc_devenv_is_installed(d), "");

    char *current = NULL, *latest = NULL;
    bool has_update = true;
    OK(vmc_devenv_check_update(d, &current, &latest, &has_update, &err));
    CHECK(strcmp(current, "1.0.0") == 0 && strcmp(latest, "1.0.0") == 0 && !has_update, "");
    vmc_string_free(current);
    vmc_string_free(latest);
    OK(vmc_devenv_check_update(d, NULL, NULL, NULL, &err));

    vmc_devenv_boot_options_t *o = vmc_devenv_boot_options_new();
    OK(vmc_devenv_boot_options_set_project(o, project, &err));
    OK(vmc_devenv_boot_options_set_ready_timeout_ms(o, READY_TIMEOUT_MS, &err));
    vmc_container_t *c = NULL;
    t0 = now_s();
    OK(vmc_devenv_boot(d, o, &c, &err));
    double t_boot = now_s() - t0;
    CHECK(strcmp(vmc_container_name(c), "core-dev") == 0, "");
    CHECK(vmc_container_memory_mb(c) == 512 && vmc_container_cpus(c) == 1, "");
    vmc_container_free(c);
    FAILS(vmc_devenv_boot(d, o, NULL, &err), VMC_ERROR_RUNNING, NULL);

    bool running = false;
    OK(vmc_devenv_is_running(d, &running, &err));
    CHECK(running, "");
    vmc_devenv_status_t *st = NULL;
    OK(vmc_devenv_status(d, &st, &err));
    uint64_t up = 0;
    CHECK(vmc_devenv_status_installed(st) && vmc_devenv_status_running(st), "");
    CHECK(strcmp(vmc_devenv_status_image_version(st), "1.0.0") == 0, "");
    CHECK(vmc_devenv_status_container_id(st) != NULL && vmc_devenv_status_ssh_port(st) > 0, "");
    CHECK(vmc_devenv_status_memory_mb(st) == 512 && vmc_devenv_status_cpus(st) == 1, "");
    CHECK(vmc_devenv_status_uptime_secs(st, &up), "");
    CHECK(strcmp(vmc_devenv_status_project(st), project) == 0, "project %s",
          vmc_devenv_status_project(st));
    vmc_devenv_status_free(st);

    const char *cat[] = {"cat", "/app/marker.txt"};
    vmc_exec_result_t *x = NULL;
    OK(vmc_manager_exec(m, "core-dev", cat, 2, &x, &err));
    CHECK(vmc_exec_result_exit_code(x) == 0 &&
              strcmp(vmc_exec_result_stdout(x, NULL), "project shared at /app\n") == 0,
          "/app: exit %d, \"%s\"", vmc_exec_result_exit_code(x), vmc_exec_result_stdout(x, NULL));
    vmc_exec_result_free(x);

    /* Sessions on the caller's descriptors: a shell command and the
     * project's tests, their output read from pipes. */
    vmc_devenv_session_options_t *so = vmc_devenv_session_options_new();
    const char *sh_cmd[] = {"sh", "-c", "cat /app/marker.txt; echo oops >&2; exit 4"};
    OK(vmc_devenv_session_options_set_command(so, sh_cmd, 3, &err));
    OK(vmc_devenv_session_options_set_forward_agent(so, false, &err));
    int out_pipe[2], err_pipe[2];
    CHECK(pipe(out_pipe) == 0 && pipe(err_pipe) == 0, "");
    OK(vmc_devenv_session_options_set_stdio(so, -1, out_pipe[1], err_pipe[1], &err));
    close(out_pipe[1]);
    close(err_pipe[1]);
    int32_t code = -1;
    OK(vmc_devenv_shell(d, so, &code, &err));
    vmc_devenv_session_options_free(so); /* closes the library's ends */
    char *got = read_all(out_pipe[0]);
    char *got_err = read_all(err_pipe[0]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    CHECK(code == 4 && strcmp(got, "project shared at /app\n") == 0 && strstr(got_err, "oops"),
          "shell: exit %d, stdout \"%s\", stderr \"%s\"", code, got, got_err);
    free(got);
    free(got_err);
    so = vmc_devenv_session_options_new();
    OK(vmc_devenv_session_options_set_project(so, project, &err));
    const char *test_cmd[] = {"sh", "-c", "pwd; exit 3"};
    OK(vmc_devenv_session_options_set_command(so, test_cmd, 3, &err));
    CHECK(pipe(out_pipe) == 0, "");
    OK(vmc_devenv_session_options_set_stdio(so, -1, out_pipe[1], -1, &err));
    close(out_pipe[1]);
    OK(vmc_devenv_test(d, so, &code, &err));
    vmc_devenv_session_options_free(so);
    got = read_all(out_pipe[0]);
    close(out_pipe[0]);
    CHECK(code == 3 && strcmp(got, "/app\n") == 0, "test: exit %d, \"%s\"", code, got);
    free(got);

    OK(vmc_devenv_stop(d, &c, &err));
    CHECK(vmc_container_status(c) == VMC_STATUS_STOPPED, "");
    vmc_container_free(c);
    OK(vmc_devenv_is_running(d, &running, &err));
    CHECK(!running, "");
    FAILS(vmc_devenv_stop(d, NULL, &err), VMC_ERROR_NOT_RUNNING, NULL);
    OK(vmc_manager_remove(m, "core-dev", false, NULL, &err));
    vmc_devenv_boot_options_free(o);
    vmc_devenv_free(d);
    fprintf(stderr, "lifecycle: timings: devenv install %.2fs, boot %.1fs\n", t_install, t_boot);
    free(qcow2);
    free(marker);
    free(project);
    free(cfg);
    free(key);
}

/* ------------------------------------------------------------ registry -- */

/* Push, pull and export against the loopback registry at
 * $VMC_TEST_REGISTRY (docker-registry, started by run.sh). The image is a
 * small raw disk written here: the suite runs under valgrind, twice, and
 * a real guest disk would only add hashing time. */
static void test_registry(vmc_manager_t *m) {
    const char *reg = getenv("VMC_TEST_REGISTRY");
    if (reg == NULL || reg[0] == '\0') fail(__FILE__, __LINE__, "VMC_TEST_REGISTRY is not set");
    char *disk = path_in(g_home, "tiny.raw");
    FILE *f = fopen(disk, "w");
    if (f == NULL) fail(__FILE__, __LINE__, "cannot write %s", disk);
    for (int i = 0; i < 256 * 1024; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    char ref[512], cd[512], missing[512], bad[512];
    snprintf(ref, sizeof ref, "%s/faces/c-disk:v1", reg);
    snprintf(cd, sizeof cd, "%s/faces/c-containerdisk:v1", reg);
    snprintf(missing, sizeof missing, "%s/faces/c-missing:v1", reg);
    snprintf(bad, sizeof bad, "%s/../etc:v1", reg);

    /* Push with progress, on this thread. */
    struct progress_state st = {.caller = pthread_self()};
    vmc_push_options_t *po = vmc_push_options_new();
    CHECK(po != NULL, "");
    char *digest = NULL, *json = NULL;
    OK(vmc_manager_push(m, disk, ref, po, on_progress, &st, &digest, &json, &err));
    CHECK(strncmp(digest, "sha256:", 7) == 0 && strlen(digest) == 71, "%s", digest);
    CHECK(strstr(json, "\"kind\":\"vmcontainer\"") && strstr(json, "\"format\":\"raw\""), "%s", json);
    CHECK(st.calls > 0 && !st.other_thread && st.last == 256 * 1024 && st.total == 256 * 1024,
          "calls %d last %llu total %lld", st.calls, (unsigned long long)st.last, (long long)st.total);
    vmc_string_free(json);

    /* Pulled into another home: the same bytes. */
    char *other_home = path_in(g_home, "pulled");
    mkdir(other_home, 0700);
    vmc_manager_t *other = NULL;
    OK(vmc_manager_new(other_home, "qemu", &other, &err));
    vmc_pull_options_t *pl = vmc_pull_options_new();
    CHECK(pl != NULL, "");
    OK(vmc_pull_options_set_plain_http(pl, false, &err));
    char *path = NULL;
    json = NULL;
    OK(vmc_manager_pull(other, ref, pl, NULL, NULL, &path, &json, &err));
    CHECK(strncmp(path, other_home, strlen(other_home)) == 0 && file_size(path) == 256 * 1024, "%s", path);
    CHECK(strstr(json, "\"already_present\":false") && strstr(json, digest), "%s", json);
    FILE *a = fopen(disk, "r"), *b = fopen(path, "r");
    CHECK(a != NULL && b != NULL, "");
    int same = 1, ca, cb;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        if (ca != cb) same = 0;
    } while (same && ca != EOF);
    fclose(a);
    fclose(b);
    CHECK(same, "pulled file differs from the pushed one");
    vmc_string_free(json);
    vmc_string_free(path);
    json = NULL;
    OK(vmc_manager_pull(other, ref, NULL, NULL, NULL, NULL, &json, &err));
    CHECK(strstr(json, "\"already_present\":true"), "%s", json);
    vmc_string_free(json);
    json = NULL;
    OK(vmc_manager_pulled_images(other, &json, &err));
    CHECK(json[0] == '[' && strstr(json, ref) && strstr(json, digest), "%s", json);
    vmc_string_free(json);

    /* Export: needs a containerDisk, then names it. */
    char *yaml = NULL;
    FAILS(vmc_manager_export_kubevirt(m, disk, NULL, &yaml, &err), VMC_ERROR_INVALID_INPUT,
          "--containerdisk");
    CHECK(yaml == NULL, "");
    OK(vmc_push_options_set_containerdisk(po, true, &err));
    OK(vmc_manager_push(m, disk, cd, po, NULL, NULL, NULL, NULL, &err));
    OK(vmc_manager_export_kubevirt(m, disk, NULL, &yaml, &err));
    CHECK(strstr(yaml, "kind: VirtualMachine") && strstr(yaml, cd), "%s", yaml);
    vmc_string_free(yaml);
    OK(vmc_manager_export_kubevirt(m, disk, ref, &yaml, &err));
    CHECK(strstr(yaml, ref) != NULL, "%s", yaml);
    vmc_string_free(yaml);
    FAILS(vmc_manager_export_kubevirt(m, "no-such-thing", NULL, &yaml, &err), VMC_ERROR_NOT_FOUND,
          "no-such-thing");

    /* Bad input. */
    FAILS(vmc_manager_pull(other, missing, NULL, NULL, NULL, NULL, NULL, &err), VMC_ERROR_DOWNLOAD,
          "c-missing");
    FAILS(vmc_manager_push(m, disk, bad, NULL, NULL, NULL, NULL, NULL, &err), VMC_ERROR_INVALID_INPUT,
          "reference");
    FAILS(vmc_manager_push(m, NULL, ref, NULL, NULL, NULL, NULL, NULL, &err),
          VMC_ERROR_INVALID_ARGUMENT, "image");
    FAILS(vmc_push_options_set_plain_http(NULL, true, &err), VMC_ERROR_INVALID_ARGUMENT, "options");
    FAILS(vmc_manager_pulled_images(m, NULL, &err), VMC_ERROR_INVALID_ARGUMENT, "json");

    /* A cancelled token ends a pull before it starts. */
    vmc_cancel_t *tok = vmc_cancel_new();
    vmc_manager_t *view = NULL;
    OK(vmc_manager_with_cancel(other, tok, &view, &err));
    vmc_cancel_cancel(tok);
    FAILS(vmc_manager_pull(view, ref, NULL, NULL, NULL, NULL, NULL, &err), VMC_ERROR_CANCELLED, NULL);
    vmc_manager_free(view);
    vmc_cancel_free(tok);

    vmc_push_options_free(po);
    vmc_pull_options_free(pl);
    vmc_string_free(digest);
    vmc_manager_free(other);
    free(other_home);
    free(disk);
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "unit") && strcmp(argv[1], "vm") && strcmp(argv[1], "cleanup"))) {
        fprintf(stderr, "usage: %s unit|vm|cleanup GUEST_DIR HOME_DIR\n", argv[0]);
        return 2;
    }
    g_guest = argv[2];
    g_home = argv[3];
    if (strcmp(argv[1], "cleanup") == 0) {
        cleanup_all();
        return 0;
    }
    double t0 = now_s();
    test_version_and_ids();
    test_image_formats();
    test_hypervisor();
    test_templates();
    test_options();

    vmc_manager_t *m = NULL;
    OK(vmc_manager_new(g_home, "qemu", &m, &err));
    g_manager = m;
    char real[PATH_MAX];
    CHECK(realpath(g_home, real) != NULL && strcmp(vmc_manager_home(m), real) == 0, "home %s",
          vmc_manager_home(m));
    CHECK(strcmp(vmc_manager_hypervisor(m), "qemu") == 0, "");
    test_bad_arguments(m);
    test_error_paths(m);
    test_unknown_and_damaged_records(m);
    test_devenv_unit();
    test_devenv_install_errors();
    test_new_api(m);
    test_registry(m);

    if (strcmp(argv[1], "vm") == 0) {
        test_lifecycle(m);
        test_attached(m);
        test_devenv_vm(m);
        vmc_container_list_t *list = NULL;
        OK(vmc_manager_list(m, &list, &err));
        CHECK(vmc_container_list_len(list) == 0, "containers left behind");
        vmc_container_list_free(list);
    }
    g_manager = NULL;
    vmc_manager_free(m);
    printf("lifecycle: %s mode, %.1fs\n", argv[1], now_s() - t0);
    printf("lifecycle: %d passed, 0 failed\n", g_passed);
    return 0;
}
