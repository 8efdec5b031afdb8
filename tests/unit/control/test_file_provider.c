/* Folder provider: load, broken files keep the last good store, inotify + debounce. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness.h"
#include "serval/base/time.h"
#include "serval/control/file_provider.h"
#include "serval/control/store.h"

static char tmpdir[256];

static int make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sv-fp-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", path);
}

static void write_file(const char *rel, const char *text)
{
    char path[512], tmp[540];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    snprintf(tmp, sizeof(tmp), "%s.tmp~", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        FAIL("cannot write %s", tmp);
        return;
    }
    fputs(text, f);
    fclose(f);
    if (rename(tmp, path) != 0)
        FAIL("rename %s", path);
}

static char *svc_yaml(const char *name, int port)
{
    static char buf[256];
    snprintf(buf, sizeof(buf),
             "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: shop}\n"
             "spec:\n  ports: [{port: %d}]\n",
             name, port);
    return buf;
}

/* Poll the provider until it hands out a store or reports a failed reload, or <ms> passes.
 * Returns the process() result (1 / negative) or 0 on timeout. */
static int wait_reload(struct sv_file_provider *fp, struct sv_store **out, int ms)
{
    uint64_t end = sv_now_ms() + (uint64_t)ms;
    while (sv_now_ms() < end) {
        struct pollfd pfd = {.fd = sv_file_provider_fd(fp), .events = POLLIN};
        poll(&pfd, 1, 20);
        int rc = sv_file_provider_process(fp, out);
        if (rc != 0)
            return rc;
    }
    return 0;
}

TEST(file_provider_loads_recursively)
{
    REQUIRE(make_tmpdir() == 0);
    char sub[300];
    snprintf(sub, sizeof(sub), "%s/nested/deeper", tmpdir);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", sub);
    REQUIRE(system(cmd) == 0);
    write_file("a.yaml", svc_yaml("a", 80));
    write_file("nested/b.yml", svc_yaml("b", 81));
    write_file("nested/deeper/c.json",
               "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"shop\"}}");
    write_file("nested/list.yaml", "apiVersion: v1\nkind: List\nitems:\n"
                                   "- {apiVersion: v1, kind: Service, metadata: {name: d}}\n"
                                   "- {apiVersion: v1, kind: Pod, metadata: {name: e}}\n");
    write_file("notes.txt", "not: [yaml");
    write_file(".hidden.yaml", "broken: [");

    struct sv_file_provider *fp;
    REQUIRE(sv_file_provider_open(tmpdir, NULL, &fp) == 0);
    struct sv_store *st = NULL;
    CHECK_EQ_INT(sv_file_provider_load(fp, &st), 0);
    REQUIRE(st);
    CHECK_EQ_INT(sv_store_count(st, SV_KIND_SERVICE), 3);
    CHECK_EQ_INT(sv_store_count(st, SV_KIND_NAMESPACE), 1);
    CHECK(sv_store_get(st, SV_KIND_SERVICE, "default", "d") != NULL);
    const struct sv_object *b = sv_store_get(st, SV_KIND_SERVICE, "shop", "b");
    REQUIRE(b);
    CHECK(strstr(b->source, "nested/b.yml: document 0") != NULL);
    CHECK_EQ_STR(sv_file_provider_error(fp), "");
    struct sv_file_provider_stats stats;
    sv_file_provider_stats(fp, &stats);
    CHECK_EQ_INT(stats.files, 4);
    CHECK_EQ_INT(stats.objects, 4);
    sv_store_free(st);
    sv_file_provider_close(fp);
    rm_rf(tmpdir);
}

TEST(file_provider_broken_file_reports_and_yields_no_store)
{
    REQUIRE(make_tmpdir() == 0);
    write_file("good.yaml", svc_yaml("a", 80));
    write_file("route.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\n"
                             "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                             "metadata: {name: r}\nspec:\n  rules:\n  - matches:\n"
                             "    - path: {type: [Exact]}\n");
    struct sv_file_provider *fp;
    REQUIRE(sv_file_provider_open(tmpdir, NULL, &fp) == 0);
    struct sv_store *st = (struct sv_store *)1;
    CHECK_EQ_INT(sv_file_provider_load(fp, &st), -EINVAL);
    CHECK(st == NULL);
    const char *e = sv_file_provider_error(fp);
    CHECK(strstr(e, "route.yaml: document 1: spec.rules[0].matches[0].path.type: expected string") !=
          NULL);

    write_file("route.yaml", "a: [1,\n");
    CHECK_EQ_INT(sv_file_provider_load(fp, &st), -EINVAL);
    CHECK(strstr(sv_file_provider_error(fp), "route.yaml: document 0, line") != NULL);

    write_file("route.yaml", "{\"kind\": ");
    unlink(strcat(strcpy((char[512]){0}, tmpdir), "/route.yaml"));
    write_file("route.json", "{\"kind\": ");
    CHECK_EQ_INT(sv_file_provider_load(fp, &st), -EINVAL);
    CHECK(strstr(sv_file_provider_error(fp), "route.json: document 0, line 1: JSON syntax") != NULL);
    sv_file_provider_close(fp);
    rm_rf(tmpdir);
}

TEST(file_provider_watch_add_change_delete_and_broken_keeps_last_good)
{
    REQUIRE(make_tmpdir() == 0);
    write_file("a.yaml", svc_yaml("a", 80));
    struct sv_file_provider *fp;
    REQUIRE(sv_file_provider_open(tmpdir, NULL, &fp) == 0);
    struct sv_store *st = NULL, *nst = NULL;
    REQUIRE(sv_file_provider_load(fp, &st) == 0);
    CHECK_EQ_INT(sv_file_provider_timeout_ms(fp), -1);

    /* Add. */
    write_file("b.yaml", svc_yaml("b", 81));
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    CHECK_EQ_INT(sv_store_count(nst, SV_KIND_SERVICE), 2);
    sv_store_free(st);
    st = nst;

    /* Change. */
    write_file("b.yaml", svc_yaml("b", 91));
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    const struct sv_object *b = sv_store_get(nst, SV_KIND_SERVICE, "shop", "b");
    REQUIRE(b);
    CHECK_EQ_INT(b->u.service.ports[0].port, 91);
    sv_store_free(st);
    st = nst;

    /* Broken: the reload fails, the caller keeps st. */
    write_file("b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [b]}\n");
    CHECK_EQ_INT(wait_reload(fp, &nst, 3000), -EINVAL);
    CHECK(nst == NULL);
    CHECK(strstr(sv_file_provider_error(fp), "b.yaml: document 0: metadata.name") != NULL);
    CHECK(sv_store_get(st, SV_KIND_SERVICE, "shop", "b") != NULL);

    /* Delete the broken file: good again. */
    char path[512];
    snprintf(path, sizeof(path), "%s/b.yaml", tmpdir);
    REQUIRE(unlink(path) == 0);
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    CHECK_EQ_INT(sv_store_count(nst, SV_KIND_SERVICE), 1);
    CHECK_EQ_STR(sv_file_provider_error(fp), "");
    sv_store_free(st);
    st = nst;

    /* A new subdirectory and a file inside it. */
    snprintf(path, sizeof(path), "%s/sub", tmpdir);
    REQUIRE(mkdir(path, 0755) == 0);
    write_file("sub/c.yaml", svc_yaml("c", 82));
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    /* The mkdir and the write may land in two reloads; wait for c to show up. */
    for (int i = 0; i < 5 && !sv_store_get(nst, SV_KIND_SERVICE, "shop", "c"); i++) {
        struct sv_store *more = NULL;
        if (wait_reload(fp, &more, 1000) == 1) {
            sv_store_free(nst);
            nst = more;
        }
    }
    CHECK(sv_store_get(nst, SV_KIND_SERVICE, "shop", "c") != NULL);
    sv_store_free(st);
    st = nst;

    /* A write into a second-level new directory is seen too (watch added on reload). */
    write_file("sub/d.yaml", svc_yaml("d", 83));
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    CHECK(sv_store_get(nst, SV_KIND_SERVICE, "shop", "d") != NULL);
    sv_store_free(st);
    st = nst;

    /* Files we do not read raise no reload. */
    write_file("readme.txt", "hello");
    CHECK_EQ_INT(wait_reload(fp, &nst, 200), 0);

    sv_store_free(st);
    sv_file_provider_close(fp);
    rm_rf(tmpdir);
}

TEST(file_provider_bursts_coalesce)
{
    REQUIRE(make_tmpdir() == 0);
    write_file("a.yaml", svc_yaml("a", 1));
    struct sv_file_provider_opts o = {.quiet_ms = 50, .max_delay_ms = 500};
    struct sv_file_provider *fp;
    REQUIRE(sv_file_provider_open(tmpdir, &o, &fp) == 0);
    struct sv_store *st = NULL, *nst = NULL;
    REQUIRE(sv_file_provider_load(fp, &st) == 0);
    /* 1000 rapid writes, draining events in between as a control loop would. */
    int reloads = 0;
    for (int i = 1; i <= 1000; i++) {
        write_file("a.yaml", svc_yaml("a", i));
        if (i % 50 == 0 && sv_file_provider_process(fp, &nst) == 1) {
            reloads++;
            sv_store_free(st);
            st = nst;
        }
    }
    /* Then the final state arrives. */
    for (int i = 0; i < 20; i++) {
        int rc = wait_reload(fp, &nst, 300);
        if (rc == 0)
            break;
        REQUIRE(rc == 1);
        reloads++;
        sv_store_free(st);
        st = nst;
    }
    const struct sv_object *a = sv_store_get(st, SV_KIND_SERVICE, "shop", "a");
    REQUIRE(a);
    CHECK_EQ_INT(a->u.service.ports[0].port, 1000);
    /* Max delay 500 ms bounds the coalescing: the writes take well under a few seconds, so far
     * fewer reloads than writes. */
    CHECK(reloads >= 1);
    CHECK(reloads < 50);
    struct sv_file_provider_stats stats;
    sv_file_provider_stats(fp, &stats);
    CHECK(stats.events >= 1000);
    sv_store_free(st);
    sv_file_provider_close(fp);
    rm_rf(tmpdir);
}

TEST(file_provider_open_errors)
{
    struct sv_file_provider *fp = (struct sv_file_provider *)1;
    CHECK_EQ_INT(sv_file_provider_open("/nonexistent/sv-test-dir", NULL, &fp), -ENOENT);
    CHECK(fp == NULL);
    CHECK_EQ_INT(sv_file_provider_open("/dev/null", NULL, &fp), -ENOTDIR);
}

/* Debounce edges (no timing assertions: only which state the provider is in). */
TEST(file_provider_leading_edge_then_trailing)
{
    REQUIRE(make_tmpdir() == 0);
    write_file("a.yaml", svc_yaml("a", 1));
    struct sv_file_provider_opts o = {.quiet_ms = 2000, .max_delay_ms = 600};
    struct sv_file_provider *fp;
    REQUIRE(sv_file_provider_open(tmpdir, &o, &fp) == 0);
    struct sv_store *st = NULL, *nst = NULL;
    REQUIRE(sv_file_provider_load(fp, &st) == 0);

    /* After a quiet spell, a complete write (rename) is loaded at once. */
    usleep(700 * 1000);
    write_file("a.yaml", svc_yaml("a", 2));
    struct pollfd pfd = {.fd = sv_file_provider_fd(fp), .events = POLLIN};
    REQUIRE(poll(&pfd, 1, 3000) == 1);
    CHECK_EQ_INT(sv_file_provider_process(fp, &nst), 1);
    REQUIRE(nst);
    CHECK_EQ_INT(sv_store_get(nst, SV_KIND_SERVICE, "shop", "a")->u.service.ports[0].port, 2);
    sv_store_free(st);
    st = nst;

    /* Right after a load, the next change waits for the trailing edge. */
    write_file("a.yaml", svc_yaml("a", 3));
    REQUIRE(poll(&pfd, 1, 3000) == 1);
    CHECK_EQ_INT(sv_file_provider_process(fp, &nst), 0);
    CHECK(sv_file_provider_timeout_ms(fp) > 0);
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    sv_store_free(st);
    st = nst;

    /* After a quiet spell, a write still in progress (not closed) is not loaded at once. */
    usleep(700 * 1000);
    char path[512];
    snprintf(path, sizeof(path), "%s/b.yaml", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "apiVersion: v1\n", 15) == 15);
    REQUIRE(poll(&pfd, 1, 3000) == 1);
    CHECK_EQ_INT(sv_file_provider_process(fp, &nst), 0);
    CHECK(sv_file_provider_timeout_ms(fp) > 0);
    const char *rest = "kind: Service\nmetadata: {name: b, namespace: shop}\n";
    REQUIRE(write(fd, rest, strlen(rest)) == (ssize_t)strlen(rest));
    close(fd);
    REQUIRE(wait_reload(fp, &nst, 3000) == 1);
    CHECK(sv_store_get(nst, SV_KIND_SERVICE, "shop", "b") != NULL);
    sv_store_free(st);
    sv_store_free(nst);
    sv_file_provider_close(fp);
    rm_rf(tmpdir);
}

/* Unchanged files are not read again; changed, new and deleted ones are. */
TEST(file_provider_reuses_unchanged_files)
{
    REQUIRE(make_tmpdir() == 0);
    write_file("a.yaml", svc_yaml("a", 1));
    write_file("b.yaml", svc_yaml("b", 2));
    write_file("c.yaml", svc_yaml("c", 3));
    struct sv_file_provider *fp;
    REQUIRE(sv_file_provider_open(tmpdir, NULL, &fp) == 0);
    struct sv_store *s1 = NULL, *s2 = NULL, *s3 = NULL;
    REQUIRE(sv_file_provider_load(fp, &s1) == 0);
    struct sv_file_provider_stats stats;
    sv_file_provider_stats(fp, &stats);
    CHECK_EQ_INT(stats.files_reused, 0);

    write_file("b.yaml", svc_yaml("b", 20));
    REQUIRE(sv_file_provider_load(fp, &s2) == 0);
    sv_file_provider_stats(fp, &stats);
    CHECK_EQ_INT(stats.files, 3);
    CHECK_EQ_INT(stats.files_reused, 2);
    /* Unchanged objects are shared; the changed one is new. */
    CHECK(sv_store_get(s1, SV_KIND_SERVICE, "shop", "a") ==
          sv_store_get(s2, SV_KIND_SERVICE, "shop", "a"));
    CHECK_EQ_INT(sv_store_get(s2, SV_KIND_SERVICE, "shop", "b")->u.service.ports[0].port, 20);
    sv_store_free(s1); /* s2 keeps its shared objects alive */
    CHECK_EQ_INT(sv_store_get(s2, SV_KIND_SERVICE, "shop", "a")->u.service.ports[0].port, 1);

    /* A broken file fails the load and does not disturb the cache. */
    write_file("c.yaml", "kind: [\n");
    struct sv_store *bad = NULL;
    CHECK(sv_file_provider_load(fp, &bad) < 0);
    write_file("c.yaml", svc_yaml("c", 30));
    char path[512];
    snprintf(path, sizeof(path), "%s/a.yaml", tmpdir);
    REQUIRE(unlink(path) == 0);
    REQUIRE(sv_file_provider_load(fp, &s3) == 0);
    sv_file_provider_stats(fp, &stats);
    CHECK_EQ_INT(stats.files, 2);
    CHECK_EQ_INT(stats.files_reused, 1); /* b */
    CHECK(sv_store_get(s3, SV_KIND_SERVICE, "shop", "a") == NULL);
    CHECK_EQ_INT(sv_store_get(s3, SV_KIND_SERVICE, "shop", "c")->u.service.ports[0].port, 30);
    sv_store_free(s2);
    sv_store_free(s3);
    sv_file_provider_close(fp);
    rm_rf(tmpdir);
}
