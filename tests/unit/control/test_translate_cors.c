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
    struct sv_test_tx t;
    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    if (sv_test_tx_file(&t, "cors.yaml", &o, err, sizeof(err)) != 0)
        FAIL("%s", err);
    REQUIRE(t.gen && t.st);
    struct sv_generation *g = t.gen;
    struct sv_status *st = t.st;

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

    sv_test_tx_free(&t);
}
