/* kubeconfig / in-cluster parsing and the token file source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../harness.h"
#include "serval/control/k8s_config.h"

/* "-----BEGIN CERTIFICATE-----\nAAAA\n" in base64 */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBQUEK"

static const char KC[] =
    "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
    "clusters:\n"
    "- name: other\n  cluster: {server: 'https://10.0.0.9:6443'}\n"
    "- name: c1\n  cluster:\n    server: https://[fd00::1]:8443/\n"
    "    certificate-authority-data: " CA_B64 "\n    tls-server-name: kube.local\n"
    "contexts:\n"
    "- name: prod\n  context: {cluster: other, user: u2}\n"
    "- name: dev\n  context: {cluster: c1, user: u1, namespace: team}\n"
    "users:\n- name: u1\n  user: {token: abc.def}\n- name: u2\n  user: {token: zzz}\n";

TEST(k8s_kubeconfig_current_context)
{
    struct sv_k8s_config c;
    char err[256] = "";
    REQUIRE(sv_k8s_config_parse_kubeconfig(KC, strlen(KC), "/tmp", &c, err, sizeof(err)) == 0);
    CHECK_EQ_STR(c.host, "fd00::1");
    CHECK_EQ_STR(c.port, "8443");
    CHECK(c.host_is_ip);
    CHECK_EQ_STR(c.token, "abc.def");
    CHECK_EQ_STR(c.ns, "team");
    CHECK_EQ_STR(c.context, "dev");
    CHECK_EQ_STR(c.tls_server_name, "kube.local");
    CHECK(c.ca_pem && c.ca_len == 33 && memcmp(c.ca_pem, "-----BEGIN CERTIFICATE-----\nAAAA\n", 33) == 0);
    CHECK(!c.insecure);
    sv_k8s_config_clear(&c);
}

TEST(k8s_kubeconfig_files_and_defaults)
{
    char dir[] = "/tmp/sv-kc-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof(p), "%s/ca.pem", dir);
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    fputs("PEMDATA\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/tok", dir);
    f = fopen(p, "w");
    REQUIRE(f);
    fputs("  first-token\n", f);
    fclose(f);
    const char *text = "current-context: x\nclusters: [{name: c, cluster: {server: "
                       "'https://api.example:443', certificate-authority: ca.pem}}]\n"
                       "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                       "users: [{name: u, user: {tokenFile: tok}}]\n";
    struct sv_k8s_config c;
    char err[256] = "";
    int rc = sv_k8s_config_parse_kubeconfig(text, strlen(text), dir, &c, err, sizeof(err));
    if (rc != 0)
        FAIL("%s", err);
    REQUIRE(rc == 0);
    CHECK_EQ_STR(c.host, "api.example");
    CHECK(!c.host_is_ip);
    CHECK(c.ns == NULL);
    CHECK(c.ca_pem && strcmp((char *)c.ca_pem, "PEMDATA\n") == 0);
    CHECK_EQ_STR(c.token_file, p);

    struct sv_k8s_token t;
    REQUIRE(sv_k8s_token_init(&t, &c) == 0);
    CHECK_EQ_STR(sv_k8s_token_get(&t, 1000), "first-token");
    f = fopen(p, "w");
    REQUIRE(f);
    fputs("second-token\n", f);
    fclose(f);
    CHECK_EQ_STR(sv_k8s_token_get(&t, 2000), "first-token"); /* cached: younger than 60 s */
    CHECK_EQ_STR(sv_k8s_token_get(&t, 61000), "second-token"); /* older: re-read */
    f = fopen(p, "w");
    REQUIRE(f);
    fputs("third\n", f);
    fclose(f);
    sv_k8s_token_invalidate(&t); /* a 401 */
    CHECK_EQ_STR(sv_k8s_token_get(&t, 62000), "third");
    unlink(p);
    sv_k8s_token_invalidate(&t);
    CHECK_EQ_STR(sv_k8s_token_get(&t, 63000), "third"); /* unreadable: keep the old one */
    sv_k8s_token_clear(&t);
    sv_k8s_config_clear(&c);
    snprintf(p, sizeof(p), "%s/ca.pem", dir);
    unlink(p);
    rmdir(dir);
}

TEST(k8s_kubeconfig_rejects_clearly)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
         "users: [{name: u, user: {exec: {command: aws}}}]\n",
         "exec"},
        {"current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
         "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n",
         "auth-provider"},
        {"clusters: []\n", "no current-context"},
        {"current-context: yy\ncontexts: [{name: x, context: {cluster: c}}]\n", "context \"yy\""},
        {"current-context: x\nclusters: [{name: c, cluster: {server: 'http://h'}}]\n"
         "contexts: [{name: x, context: {cluster: c}}]\n",
         "https"},
        {"current-context: x\nclusters: [{name: c, cluster: {server: 'https://h:99999'}}]\n"
         "contexts: [{name: x, context: {cluster: c}}]\n",
         "bad port"},
        {"current-context: x\nclusters: [{name: c, cluster: {server: 'https://h', "
         "certificate-authority: /nonexistent/ca}}]\ncontexts: [{name: x, context: {cluster: c}}]\n",
         "/nonexistent/ca"},
        {"current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
         "users: [{name: u, user: {client-certificate-data: " CA_B64 "}}]\n",
         "go together"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sv_k8s_config c;
        char err[256] = "";
        int rc = sv_k8s_config_parse_kubeconfig(cases[i].text, strlen(cases[i].text), "/", &c,
                                                err, sizeof(err));
        if (rc >= 0 || !strstr(err, cases[i].want))
            FAIL("case %zu: rc %d, err \"%s\" (want \"%s\")", i, rc, err, cases[i].want);
        CHECK(c.host == NULL);
    }
}

TEST(k8s_in_cluster_config)
{
    char dir[] = "/tmp/sv-sa-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char p[256];
    const char *files[][2] = {{"token", "tok\n"}, {"ca.crt", "CA\n"}, {"namespace", "gw-system\n"}};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i][0]);
        FILE *f = fopen(p, "w");
        REQUIRE(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    struct sv_k8s_config c;
    char err[256] = "";
    unsetenv("KUBERNETES_SERVICE_HOST");
    CHECK_EQ_INT(sv_k8s_config_in_cluster(dir, &c, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "not in a cluster") != NULL);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    unsetenv("POD_NAMESPACE");
    REQUIRE(sv_k8s_config_in_cluster(dir, &c, err, sizeof(err)) == 0);
    CHECK_EQ_STR(c.host, "10.96.0.1");
    CHECK(c.host_is_ip);
    CHECK_EQ_STR(c.ns, "gw-system");
    CHECK(c.ca_len == 3);
    snprintf(p, sizeof(p), "%s/token", dir);
    CHECK_EQ_STR(c.token_file, p);
    sv_k8s_config_clear(&c);
    setenv("POD_NAMESPACE", "from-env", 1);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::10", 1);
    REQUIRE(sv_k8s_config_in_cluster(dir, &c, err, sizeof(err)) == 0);
    CHECK_EQ_STR(c.ns, "from-env");
    CHECK_EQ_STR(c.host, "fd00::10");
    sv_k8s_config_clear(&c);
    unsetenv("POD_NAMESPACE");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i][0]);
        unlink(p);
    }
    rmdir(dir);
}

TEST(k8s_base64)
{
    uint8_t *out;
    size_t n;
    REQUIRE(sv_k8s_base64_decode("aGVs\nbG8=", 9, &out, &n) == 0);
    CHECK_EQ_MEM(out, n, "hello");
    free(out);
    CHECK_EQ_INT(sv_k8s_base64_decode("a$==", 4, &out, &n), -EINVAL);
    CHECK_EQ_INT(sv_k8s_base64_decode("ab=c", 4, &out, &n), -EINVAL);
}
