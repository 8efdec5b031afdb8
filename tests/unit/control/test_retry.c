/* HTTPRoute retry (spec.rules[].retry): decoding, translation into the routing action, and the
 * status of rules with bad values. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

TEST(model_retry_fields_decoded)
{
    char err[256] = "";
    struct sv_object *o = sv_test_decode_one(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
        "spec:\n  rules:\n  - retry: {codes: [500, 502], attempts: 4, backoff: 1s500ms}\n"
        "  - retry: {}\n  - {}\n",
        err, sizeof(err));
    REQUIRE(o);
    const struct sv_httproute *hr = &o->u.httproute;
    REQUIRE(hr->n_rules == 3);
    const struct sv_retry *rt = hr->rules[0].retry;
    REQUIRE(rt);
    REQUIRE(rt->n_codes == 2);
    CHECK_EQ_INT(rt->codes[0], 500);
    CHECK_EQ_INT(rt->codes[1], 502);
    CHECK(rt->has_attempts);
    CHECK_EQ_INT(rt->attempts, 4);
    CHECK_EQ_INT(rt->backoff_ms, 1500);
    rt = hr->rules[1].retry;
    REQUIRE(rt);
    CHECK_EQ_INT(rt->n_codes, 0);
    CHECK(!rt->has_attempts);
    CHECK_EQ_INT(rt->backoff_ms, -1);
    CHECK(hr->rules[2].retry == NULL);
    sv_object_free(o);
}

TEST(model_retry_errors_name_the_field)
{
    static const struct {
        const char *rule;
        const char *err;
    } cases[] = {
        {"retry: {codes: [500, x]}", "spec.rules[0].retry.codes[1]: expected an HTTP status code"},
        {"retry: {codes: [500.5]}", "spec.rules[0].retry.codes[0]: expected an HTTP status code"},
        {"retry: {codes: 500}", "spec.rules[0].retry.codes: expected array"},
        {"retry: {attempts: two}", "spec.rules[0].retry.attempts: expected integer"},
        {"retry: {backoff: 2d}", "spec.rules[0].retry.backoff: invalid duration"},
        {"retry: [1]", "spec.rules[0].retry: expected object"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        char yaml[512], err[512] = "";
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
                 "spec:\n  rules:\n  - %s\n",
                 cases[i].rule);
        struct sv_object *o = sv_test_decode_one(yaml, err, sizeof(err));
        if (o) {
            FAIL("case %zu decoded but should fail", i);
            sv_object_free(o);
            continue;
        }
        if (!strstr(err, cases[i].err))
            FAIL("case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].err);
    }
}

static int rfix_load(struct sv_test_tx *f)
{
    char err[512];
    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    if (sv_test_tx_file(f, "retry.yaml", &o, err, sizeof(err)) != 0) {
        FAIL("retry.yaml: %s", err);
        return -1;
    }
    return 0;
}

static const struct sv_route_action *raction(const struct sv_test_tx *f, const char *path)
{
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    struct sv_route_request req = {
        .local = (const struct sockaddr *)&local,
        .host = SV_STR_LIT("retry.test"),
        .path = sv_str_cstr(path),
        .query = SV_STR_LIT(""),
        .method = SV_STR_LIT("GET"),
    };
    struct sv_route_result res;
    if (sv_route_lookup(f->gen, &req, &res) < 0)
        return NULL;
    return res.action;
}

TEST(translate_retry_policy_into_action)
{
    struct sv_test_tx f;
    REQUIRE(rfix_load(&f) == 0);

    const struct sv_route_action *a = raction(&f, "/codes");
    REQUIRE(a && a->ext->retry);
    CHECK_EQ_INT(a->ext->retry->attempts, 3);
    CHECK_EQ_INT(a->ext->retry->backoff_ms, 100);
    CHECK(sv_route_retry_on_status(a->ext->retry, 500));
    CHECK(sv_route_retry_on_status(a->ext->retry, 503));
    CHECK(sv_route_retry_on_status(a->ext->retry, 429));
    CHECK(!sv_route_retry_on_status(a->ext->retry, 502));
    CHECK(!sv_route_retry_on_status(a->ext->retry, 200));
    CHECK(!sv_route_retry_on_status(a->ext->retry, 600));
    CHECK_EQ_INT(a->ext->request_timeout_ms, 2000);
    CHECK_EQ_INT(a->ext->backend_timeout_ms, 300);

    a = raction(&f, "/defaults"); /* unset attempts: 1 retry; unset backoff: 25ms */
    REQUIRE(a && a->ext->retry);
    CHECK_EQ_INT(a->ext->retry->attempts, 1);
    CHECK_EQ_INT(a->ext->retry->backoff_ms, 25);
    for (int st = 400; st <= 599; st++)
        if (sv_route_retry_on_status(a->ext->retry, st))
            FAIL("no codes configured, yet %d is retried", st);

    a = raction(&f, "/zero"); /* attempts 0: no retries at all */
    REQUIRE(a);
    CHECK(a->ext->retry == NULL);

    a = raction(&f, "/many");
    REQUIRE(a && a->ext->retry);
    CHECK_EQ_INT(a->ext->retry->attempts, SV_ROUTE_RETRY_MAX_ATTEMPTS);
    CHECK_EQ_INT(a->ext->retry->backoff_ms, 0);

    a = raction(&f, "/none");
    REQUIRE(a);
    CHECK(a->ext->retry == NULL);

    /* bad values drop their rule (the path falls back to nothing: 404) and say why */
    CHECK(raction(&f, "/bad-code") == NULL);
    CHECK(raction(&f, "/bad-attempts") == NULL);
    const struct sv_status_route *r = sv_status_route(f.st, SV_KIND_HTTPROUTE, "app", "retries");
    REQUIRE(r && r->n_parents == 1);
    const struct sv_condition *pi = sv_condition_find(&r->parents[0].conds, "PartiallyInvalid");
    REQUIRE(pi);
    CHECK(strstr(pi->message, "Dropped Rule 5: retry.codes: 200 is not an HTTP status in 400-599"));
    CHECK(strstr(pi->message, "Dropped Rule 6: retry.attempts must not be negative"));

    /* /config shows the policy */
    char buf[8192];
    size_t n = sv_generation_write_json(f.gen, buf, sizeof(buf));
    REQUIRE(n < sizeof(buf));
    CHECK(strstr(buf, "\"retry\":{\"attempts\":3,\"backoffMs\":100,\"codes\":[429,500,503]}"));

    sv_test_tx_free(&f);
}
