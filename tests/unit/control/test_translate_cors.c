/* Translation of the CORS filter: valid filters compiled onto the rule's action, bad values
 * (origin syntax, unknown method, "*" with other entries, the filter twice) drop the rule with a
 * PartiallyInvalid / Accepted=False message naming the problem. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

static const struct sv_route_action *find(const struct sv_generation *g, const char *host,
                                          const char *path)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sv_route_request rq = {.local = (const struct sockaddr *)&sin,
                                  .host = sv_str_cstr(host),
                                  .path = sv_str_cstr(path),
                                  .method = SV_STR_LIT("GET")};
    struct sv_route_result res;
    return sv_route_lookup(g, &rq, &res) == 0 ? res.action : NULL;
}

TEST(translate_cors_filter)
{
    char err[512];
    char *text = sv_test_read_file("tests/data/translate/cors.yaml", NULL);
    REQUIRE(text);
    struct sv_object *objs[16];
    int n = sv_test_decode_yaml(text, objs, 16, err, sizeof(err));
    free(text);
    if (n < 0)
        FAIL("decode: %s", err);
    REQUIRE(n > 0);
    struct sv_store *store = sv_store_new();
    for (int i = 0; i < n; i++)
        sv_store_upsert(store, objs[i]);
    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    struct sv_generation *g = NULL;
    struct sv_status *st = NULL;
    int rc = sv_translate(store, &o, &g, &st, err, sizeof(err));
    if (rc != 0)
        FAIL("translate: %d %s", rc, err);
    REQUIRE(rc == 0 && g && st);

    const struct sv_route_action *a = find(g, "cors.test", "/ok/x");
    REQUIRE(a && a->ext->cors);
    CHECK_EQ_INT(a->ext->cors->n_origins, 2);
    CHECK_EQ_MEM(a->ext->cors->allow_methods.ptr, a->ext->cors->allow_methods.len, "GET, OPTIONS");
    CHECK_EQ_MEM(a->ext->cors->max_age.ptr, a->ext->cors->max_age.len, "5"); /* default */
    CHECK(a->ext->cors->allow_credentials);
    CHECK_EQ_INT(a->n_backends, 1);
    CHECK(sv_route_cors_origin_allowed(a->ext->cors, SV_STR_LIT("https://x.y.bar.com")));
    a = find(g, "cors.test", "/defaults");
    REQUIRE(a && a->ext->cors);
    CHECK(!a->ext->cors->allow_credentials && !a->ext->cors->any_method);
    CHECK_EQ_INT(a->ext->cors->allow_methods.len, 0);
    CHECK(find(g, "cors.test", "/bad-origin") == NULL);
    CHECK(find(g, "cors.test", "/bad-method") == NULL);
    CHECK(find(g, "cors.test", "/star-plus") == NULL);
    CHECK(find(g, "twice.test", "/") == NULL);

    const struct sv_status_route *r = sv_status_route(st, SV_KIND_HTTPROUTE, "app", "cors");
    REQUIRE(r && r->n_parents == 1);
    const struct sv_condition *c = sv_condition_find(&r->parents[0].conds, "Accepted");
    REQUIRE(c);
    CHECK_EQ_STR(c->status, "True");
    c = sv_condition_find(&r->parents[0].conds, "PartiallyInvalid");
    REQUIRE(c);
    CHECK_EQ_STR(c->status, "True");
    CHECK_EQ_STR(c->reason, "UnsupportedValue");
    CHECK(strstr(c->message, "Dropped Rule 1: CORS allowOrigins: \"www.foo.com\" is not a valid "
                             "origin") != NULL);
    CHECK(strstr(c->message, "Dropped Rule 2: CORS allowMethods: FETCH is not a supported "
                             "method") != NULL);
    CHECK(strstr(c->message, "Dropped Rule 3: CORS allowHeaders: \"*\" must be the only "
                             "entry") != NULL);
    if (!strstr(c->message, "Dropped Rule 1"))
        FAIL("message: %s", c->message);

    r = sv_status_route(st, SV_KIND_HTTPROUTE, "app", "cors-twice");
    REQUIRE(r && r->n_parents == 1);
    c = sv_condition_find(&r->parents[0].conds, "Accepted");
    REQUIRE(c);
    CHECK_EQ_STR(c->status, "False");
    CHECK_EQ_STR(c->reason, "IncompatibleFilters");
    CHECK(strstr(c->message, "CORS given twice") != NULL);

    sv_generation_free_unpublished(g);
    sv_status_free(st);
    sv_store_free(store);
}
