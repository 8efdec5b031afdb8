/* Translation: YAML fixtures -> generation + status. Routing decisions are checked by calling the
 * routing lookup on the built generation; status by the conditions the translator reports. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/builder.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

static int fixture_load_bind(struct sv_test_tx *f, const char *file, const char *bind)
{
    char err[512];
    struct sv_translate_opts o = {.bind_addr = bind};
    if (sv_test_tx_file(f, file, &o, err, sizeof(err)) != 0) {
        FAIL("%s: %s", file, err);
        return -1;
    }
    return 0;
}

static int fixture_load(struct sv_test_tx *f, const char *file)
{
    return fixture_load_bind(f, file, "0.0.0.0");
}

/* ---- routing decisions ----------------------------------------------------------------------- */

struct hdrs {
    const char *const *kv; /* "Name", "value", ..., NULL */
};

static ssize_t get_header(const void *ctx, struct sv_str name, char *out, size_t cap)
{
    const struct hdrs *h = ctx;
    size_t len = 0;
    bool found = false;
    for (size_t i = 0; h->kv && h->kv[i]; i += 2) {
        if (!sv_str_eq_nocase(sv_str_cstr(h->kv[i]), name))
            continue;
        size_t vl = strlen(h->kv[i + 1]);
        if (len + vl + 1 > cap)
            return -ENOSPC;
        if (found)
            out[len++] = ',';
        memcpy(out + len, h->kv[i + 1], vl);
        len += vl;
        found = true;
    }
    return found ? (ssize_t)len : -ENOENT;
}

struct req_case {
    int port;
    const char *host;
    const char *path;
    const char *method;
    const char *const *headers;
    const char *route;    /* "ns/name", NULL = 404 */
    int rule;             /* rule index when route != NULL */
    const char *listener; /* "ns/gw/listener" expected, NULL = don't care */
};

static const struct sv_route_action *lookup(const struct sv_test_tx *f, const struct req_case *c,
                                            struct sv_route_result *res, int *rc)
{
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    struct hdrs h = {c->headers};
    struct sv_route_request req = {
        .local = (const struct sockaddr *)&local,
        .host = sv_str_cstr(c->host),
        .path = sv_str_cstr(c->path),
        .query = SV_STR_LIT(""),
        .method = sv_str_cstr(c->method ? c->method : "GET"),
        .header = get_header,
        .header_ctx = &h,
    };
    memset(res, 0, sizeof(*res));
    *rc = sv_route_lookup(f->gen, &req, res);
    return *rc == 0 ? res->action : NULL;
}

static void check_requests(const struct sv_test_tx *f, const struct req_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct req_case *c = &cases[i];
        struct sv_route_result res;
        int rc;
        const struct sv_route_action *a = lookup(f, c, &res, &rc);
        char got[256] = "404";
        if (a)
            snprintf(got, sizeof(got), "%.*s#%u", (int)a->route_name.len, a->route_name.ptr,
                     a->rule_index);
        char want[256] = "404";
        if (c->route)
            snprintf(want, sizeof(want), "%s#%d", c->route, c->rule);
        if (strcmp(got, want) != 0)
            FAIL("request %zu (%s:%d %s %s): got %s, want %s", i, c->host, c->port,
                 c->method ? c->method : "GET", c->path, got, want);
        if (c->listener) {
            char lname[256] = "(none)";
            if (res.listener)
                snprintf(lname, sizeof(lname), "%.*s", (int)res.listener->name.len,
                         res.listener->name.ptr);
            if (strcmp(lname, c->listener) != 0)
                FAIL("request %zu (%s%s): listener %s, want %s", i, c->host, c->path, lname,
                     c->listener);
        }
    }
}

/* ---- status ------------------------------------------------------------------------------------ */

enum target { GW, LISTENER, ROUTE, TLSROUTE, CLASS };

struct cond_case {
    enum target target;
    const char *ns, *name;
    const char *sub; /* listener name; for ROUTE/TLSROUTE the parent index as text */
    const char *type, *status, *reason;
};

static const struct sv_condition_set *find_conds(const struct sv_test_tx *f,
                                                 const struct cond_case *c)
{
    switch (c->target) {
    case CLASS:
        for (size_t i = 0; i < f->st->n_classes; i++) {
            if (strcmp(f->st->classes[i].obj->meta.name, c->name) == 0)
                return &f->st->classes[i].conds;
        }
        return NULL;
    case GW:
    case LISTENER: {
        const struct sv_status_gateway *g = sv_status_gateway(f->st, c->ns, c->name);
        if (!g)
            return NULL;
        if (c->target == GW)
            return &g->conds;
        const struct sv_status_listener *l = sv_status_listener(g, c->sub);
        return l ? &l->conds : NULL;
    }
    case ROUTE:
    case TLSROUTE: {
        const struct sv_status_route *r = sv_status_route(
            f->st, c->target == TLSROUTE ? SV_KIND_TLSROUTE : SV_KIND_HTTPROUTE, c->ns, c->name);
        size_t pi = (size_t)atoi(c->sub);
        return r && pi < r->n_parents ? &r->parents[pi].conds : NULL;
    }
    }
    return NULL;
}

static void check_conditions(const struct sv_test_tx *f, const struct cond_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct cond_case *c = &cases[i];
        const struct sv_condition_set *cs = find_conds(f, c);
        if (!cs) {
            FAIL("status case %zu: %s/%s %s not reported", i, c->ns, c->name, c->sub ? c->sub : "");
            continue;
        }
        const struct sv_condition *cond = sv_condition_find(cs, c->type);
        if (!cond) {
            FAIL("status case %zu: %s/%s %s has no %s", i, c->ns, c->name, c->sub ? c->sub : "",
                 c->type);
            continue;
        }
        if (strcmp(cond->status, c->status) != 0 || strcmp(cond->reason, c->reason) != 0)
            FAIL("status case %zu: %s/%s %s %s = %s/%s (%s), want %s/%s", i, c->ns, c->name,
                 c->sub ? c->sub : "", c->type, cond->status, cond->reason, cond->message,
                 c->status, c->reason);
    }
}

static int attached(const struct sv_test_tx *f, const char *ns, const char *gw, const char *l)
{
    const struct sv_status_gateway *g = sv_status_gateway(f->st, ns, gw);
    const struct sv_status_listener *sl = g ? sv_status_listener(g, l) : NULL;
    return sl ? sl->attached_routes : -1;
}

/* ---- attach.yaml ------------------------------------------------------------------------------- */

static const char *const H_NONE[] = {NULL};

static const struct req_case attach_requests[] = {
    {8080, "store.example.com", "/api/x", NULL, H_NONE, "shop/store", 0, "infra/gw/wild"},
    {8080, "store.example.com", "/api/health", NULL, H_NONE, "shop/store", 1, "infra/gw/wild"},
    {8080, "STORE.example.com:8080", "/api", NULL, H_NONE, "shop/store", 0, "infra/gw/wild"},
    /* No rule of the more specific route: the next route on the same listener. */
    {8080, "store.example.com", "/other", NULL, H_NONE, "shop/catchall", 0, "infra/gw/wild"},
    {8080, "x.example.com", "/", NULL, H_NONE, "shop/catchall", 0, "infra/gw/wild"},
    {8080, "a.b.example.com", "/z", NULL, H_NONE, "shop/catchall", 0, "infra/gw/wild"},
    {8080, "store.other.org", "/api", NULL, H_NONE, "shop/store", 0, "infra/gw/any"},
    {8080, "foo.example.com", "/", NULL, H_NONE, "infra/foo-route", 0, "infra/gw/foo"},
    /* Listener isolation: foo.example.com belongs to "foo"; store's prefix is not there. */
    {8080, "foo.example.com", "/api", NULL, H_NONE, "infra/foo-route", 0, "infra/gw/foo"},
    {8080, "other.org", "/api", NULL, H_NONE, NULL, 0, "infra/gw/any"},
    {8080, "example.com", "/", NULL, H_NONE, NULL, 0, "infra/gw/any"},
    {8081, "anything", "/", NULL, H_NONE, "infra/on-kinds", 0, "infra/gw/kinds"},
    {8082, "anything", "/", NULL, H_NONE, NULL, 0, NULL}, /* no kind it can serve: not bound */
    {9000, "anything", "/", NULL, H_NONE, NULL, 0, NULL},
};

static const struct cond_case attach_status[] = {
    {CLASS, "", "serval", NULL, "Accepted", "True", "Accepted"},
    {GW, "infra", "gw", NULL, "Accepted", "True", "ListenersNotValid"},
    {GW, "infra", "gw", NULL, "Programmed", "True", "Programmed"},
    {LISTENER, "infra", "gw", "any", "Accepted", "True", "Accepted"},
    {LISTENER, "infra", "gw", "any", "Programmed", "True", "Programmed"},
    {LISTENER, "infra", "gw", "any", "ResolvedRefs", "True", "ResolvedRefs"},
    {LISTENER, "infra", "gw", "any", "Conflicted", "False", "NoConflicts"},
    {LISTENER, "infra", "gw", "tls", "Accepted", "False", "UnsupportedProtocol"},
    {LISTENER, "infra", "gw", "tls", "Programmed", "False", "Invalid"},
    {LISTENER, "infra", "gw", "kinds", "ResolvedRefs", "False", "InvalidRouteKinds"},
    {LISTENER, "infra", "gw", "kinds", "Programmed", "True", "Programmed"},
    {LISTENER, "infra", "gw", "nokinds", "ResolvedRefs", "False", "InvalidRouteKinds"},
    {ROUTE, "shop", "store", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "shop", "store", "0", "ResolvedRefs", "True", "ResolvedRefs"},
    {ROUTE, "shop", "catchall", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "infra", "foo-route", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "blog", "nope-section", "0", "Accepted", "False", "NoMatchingParent"},
    {ROUTE, "blog", "nope-port", "0", "Accepted", "False", "NoMatchingParent"},
    {ROUTE, "blog", "nope-ns", "0", "Accepted", "False", "NotAllowedByListeners"},
    {ROUTE, "infra", "nope-kind", "0", "Accepted", "False", "NotAllowedByListeners"},
    {ROUTE, "shop", "nope-host", "0", "Accepted", "False", "NoMatchingListenerHostname"},
    {ROUTE, "infra", "on-kinds", "0", "Accepted", "True", "Accepted"},
};

static const struct cond_case passthrough_status[] = {
    {LISTENER, "infra", "gw", "pass", "Accepted", "True", "Accepted"},
    {LISTENER, "infra", "gw", "pass", "Programmed", "True", "Programmed"},
    {LISTENER, "infra", "gw", "pass", "ResolvedRefs", "True", "ResolvedRefs"},
    {LISTENER, "infra", "gw", "pass-kinds", "ResolvedRefs", "False", "InvalidRouteKinds"},
    {LISTENER, "infra", "gw", "pass-kinds", "Programmed", "False", "Invalid"},
    {LISTENER, "infra", "gw", "terminate", "Accepted", "False", "UnsupportedProtocol"},
    {LISTENER, "infra", "gw", "terminate", "Programmed", "False", "Invalid"},
    {LISTENER, "infra", "gw", "http", "Programmed", "True", "Programmed"},
    {ROUTE, "infra", "on-pass", "0", "Accepted", "False", "NotAllowedByListeners"},
    {ROUTE, "infra", "on-pass", "0", "ResolvedRefs", "True", "ResolvedRefs"},
    {ROUTE, "infra", "on-gw", "0", "Accepted", "True", "Accepted"},
    {TLSROUTE, "infra", "tls-a", "0", "Accepted", "True", "Accepted"},
    {TLSROUTE, "infra", "tls-a", "0", "ResolvedRefs", "True", "ResolvedRefs"},
    {TLSROUTE, "infra", "tls-on-http", "0", "Accepted", "False", "NotAllowedByListeners"},
};

TEST(translate_tls_passthrough_listener)
{
    struct sv_test_tx f;
    REQUIRE(fixture_load(&f, "passthrough.yaml") == 0);
    check_conditions(&f, passthrough_status, SV_ARRAY_SIZE(passthrough_status));
    CHECK_EQ_INT(attached(&f, "infra", "gw", "pass"), 1); /* tls-a */
    CHECK_EQ_INT(attached(&f, "infra", "gw", "http"), 1);
    const struct sv_status_gateway *g = sv_status_gateway(f.st, "infra", "gw");
    REQUIRE(g);
    const struct sv_status_listener *l = sv_status_listener(g, "pass");
    REQUIRE(l && l->n_supported_kinds == 1);
    CHECK_EQ_STR(l->supported_kinds[0].kind, "TLSRoute");
    CHECK_EQ_STR(l->supported_kinds[0].group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_INT(sv_status_listener(g, "pass-kinds")->n_supported_kinds, 0);
    /* the passthrough port is bound as such; the invalid TLS listeners are not bound */
    size_t nb = 0;
    const struct sv_route_bind *binds = sv_generation_binds(f.gen, &nb);
    int pass = 0, other = 0;
    for (size_t i = 0; i < nb; i++) {
        pass += binds[i].port == 8443 && binds[i].proto == SV_ROUTE_PROTO_TLS_PASSTHROUGH;
        other += binds[i].port == 8444 || binds[i].port == 8445;
    }
    CHECK_EQ_INT(pass, 1);
    CHECK_EQ_INT(other, 0);
    /* the TLSRoute serves its hostname (the SNI, path "/") on the passthrough port only */
    struct sv_route_result res;
    union sv_route_sockaddr sa = {.in = {.sin_family = AF_INET, .sin_port = htons(8443)}};
    struct sv_route_request rq = {.local = &sa.sa, .host = SV_STR_LIT("a.pass.test"),
                                  .path = SV_STR_LIT("/"), .method = SV_STR_LIT("GET")};
    REQUIRE(sv_route_lookup(f.gen, &rq, &res) == 0 && res.action);
    CHECK_EQ_MEM(res.action->route_name.ptr, res.action->route_name.len, "infra/tls-a");
    REQUIRE(res.action->n_backends == 1);
    CHECK_EQ_INT(res.action->backends[0].kind, SV_ROUTE_BACKEND_SET);
    rq.host = SV_STR_LIT("b.pass.test");
    CHECK_EQ_INT(sv_route_lookup(f.gen, &rq, &res), -ENOENT);
    sa.in.sin_port = htons(8080);
    rq.host = SV_STR_LIT("a.pass.test");
    REQUIRE(sv_route_lookup(f.gen, &rq, &res) == 0 && res.action);
    CHECK_EQ_MEM(res.action->route_name.ptr, res.action->route_name.len, "infra/on-gw");
    /* the status document keeps the kind: TLSRoutes in "tlsRoutes" (their own API path in the
     * status writer), HTTPRoutes in "httpRoutes" */
    cJSON *j = sv_status_to_json(f.st);
    REQUIRE(j);
    int tls_in_tls = 0, tls_in_http = 0, http_in_http = 0, http_in_tls = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "tlsRoutes"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        tls_in_tls += cJSON_IsString(nm) && strcmp(nm->valuestring, "tls-a") == 0;
        http_in_tls += cJSON_IsString(nm) && strcmp(nm->valuestring, "on-gw") == 0;
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                  cJSON_GetObjectItemCaseSensitive(it, "status"), "parents")) > 0);
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "httpRoutes"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        tls_in_http += cJSON_IsString(nm) && strcmp(nm->valuestring, "tls-a") == 0;
        http_in_http += cJSON_IsString(nm) && strcmp(nm->valuestring, "on-gw") == 0;
    }
    CHECK_EQ_INT(tls_in_tls, 1);
    CHECK_EQ_INT(tls_in_http, 0);
    CHECK_EQ_INT(http_in_http, 1);
    CHECK_EQ_INT(http_in_tls, 0);
    cJSON_Delete(j);
    sv_test_tx_free(&f);
}

TEST(translate_attachment_listeners_and_hostnames)
{
    struct sv_test_tx f;
    REQUIRE(fixture_load(&f, "attach.yaml") == 0);
    check_requests(&f, attach_requests, SV_ARRAY_SIZE(attach_requests));
    check_conditions(&f, attach_status, SV_ARRAY_SIZE(attach_status));

    CHECK_EQ_INT(f.st->n_classes, 1);          /* someone-else's class: no status from us */
    CHECK(sv_status_gateway(f.st, "infra", "foreign") == NULL);
    CHECK(sv_status_route(f.st, SV_KIND_HTTPROUTE, "blog", "not-ours") == NULL);
    CHECK_EQ_INT(attached(&f, "infra", "gw", "any"), 2);  /* store, foo-route */
    CHECK_EQ_INT(attached(&f, "infra", "gw", "foo"), 1);  /* foo-route */
    CHECK_EQ_INT(attached(&f, "infra", "gw", "wild"), 2); /* store, catchall */
    CHECK_EQ_INT(attached(&f, "infra", "gw", "kinds"), 1);
    CHECK_EQ_INT(attached(&f, "infra", "gw", "nokinds"), 0);
    CHECK_EQ_INT(attached(&f, "infra", "gw", "tls"), 0);

    const struct sv_status_gateway *g = sv_status_gateway(f.st, "infra", "gw");
    REQUIRE(g);
    CHECK_EQ_INT(g->n_listeners, 6);
    CHECK_EQ_INT(sv_condition_find(&g->conds, "Accepted")->observed_generation, 5);
    REQUIRE(g->n_addresses == 1);
    CHECK_EQ_STR(g->addresses[0].type, "IPAddress");
    CHECK_EQ_STR(g->addresses[0].value, "0.0.0.0");
    const struct sv_status_listener *l = sv_status_listener(g, "kinds");
    REQUIRE(l && l->n_supported_kinds == 1);
    CHECK_EQ_STR(l->supported_kinds[0].kind, "HTTPRoute");
    CHECK_EQ_STR(l->supported_kinds[0].group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_INT(sv_status_listener(g, "nokinds")->n_supported_kinds, 0);
    CHECK_EQ_INT(sv_status_listener(g, "tls")->n_supported_kinds, 0);

    const struct sv_status_route *r = sv_status_route(f.st, SV_KIND_HTTPROUTE, "shop", "store");
    REQUIRE(r && r->n_parents == 1); /* the foreign Gateway's parentRef gets no entry */
    CHECK_EQ_STR(r->parents[0].ref.group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_STR(r->parents[0].ref.kind, "Gateway");
    CHECK_EQ_STR(r->parents[0].controller_name, SV_DEFAULT_CONTROLLER_NAME);
    CHECK_EQ_INT(sv_condition_find(&r->parents[0].conds, "Accepted")->observed_generation, 3);

    /* Endpoints: ready not false, Service port -> slice port by name, several slices. */
    int64_t set = sv_generation_find_backend_set(f.gen, SV_STR_LIT("shop/api:80"));
    REQUIRE(set >= 0);
    size_t n = 0;
    const struct sv_route_endpoint *eps = sv_generation_endpoints(f.gen, (uint32_t)set, &n);
    CHECK_EQ_INT(n, 3);
    int seen_18081 = 0, seen_bad = 0;
    for (size_t i = 0; eps && i < n; i++) {
        char a[64];
        inet_ntop(AF_INET, &eps[i].addr.in.sin_addr, a, sizeof(a));
        seen_18081 += ntohs(eps[i].addr.in.sin_port) == 18081 && strcmp(a, "127.0.1.4") == 0;
        seen_bad += strcmp(a, "127.0.1.2") == 0;
    }
    CHECK_EQ_INT(seen_18081, 1);
    CHECK_EQ_INT(seen_bad, 0);
    set = sv_generation_find_backend_set(f.gen, SV_STR_LIT("shop/health:80"));
    REQUIRE(set >= 0);
    eps = sv_generation_endpoints(f.gen, (uint32_t)set, &n);
    REQUIRE(eps && n == 1);
    CHECK_EQ_INT(ntohs(eps[0].addr.in.sin_port), 9999);

    /* The JSON rendering carries the same facts. */
    cJSON *j = sv_status_to_json(f.st);
    REQUIRE(j);
    char *txt = cJSON_PrintUnformatted(j);
    CHECK(txt && strstr(txt, "\"reason\":\"NoMatchingListenerHostname\"") != NULL);
    CHECK(txt && strstr(txt, "\"attachedRoutes\":2") != NULL);
    free(txt);
    cJSON_Delete(j);
    sv_test_tx_free(&f);
}

/* ---- rules.yaml ------------------------------------------------------------------------------- */

static const char *const H_AB[] = {"x-a", "1", "X-B", "2", NULL};
static const char *const H_A[] = {"X-A", "1", NULL};

static const struct req_case rules_requests[] = {
    {8080, "app.test", "/tie", NULL, H_NONE, "app/old", 0, "app/gw/http"},
    {8080, "app.test", "/tie/more", NULL, H_NONE, "app/old", 0, NULL},
    {8080, "app.test", "/tie/exact", NULL, H_NONE, "app/young", 3, NULL},
    {8080, "app.test", "/tiex", NULL, H_NONE, NULL, 0, NULL},
    {8080, "app.test", "/m", "POST", H_NONE, "app/old", 1, NULL},
    {8080, "app.test", "/m", "GET", H_NONE, "app/young", 1, NULL},
    {8080, "app.test", "/h", NULL, H_AB, "app/old", 2, NULL},
    {8080, "app.test", "/h", NULL, H_A, "app/young", 2, NULL},
    {8080, "app.test", "/h", NULL, H_NONE, NULL, 0, NULL},
    {8080, "app.test", "/re/123", NULL, H_NONE, "app/old", 3, NULL},
    {8080, "app.test", "/re/12a", NULL, H_NONE, NULL, 0, NULL},
    {8080, "backends.test", "/split", NULL, H_NONE, "app/backends", 0, NULL},
    {8080, "backends.test", "/granted/x", NULL, H_NONE, "app/backends", 1, NULL},
    {8080, "ungranted.test", "/", NULL, H_NONE, "other/ungranted", 0, NULL},
    {8080, "filters.test", "/rewrite/a", NULL, H_NONE, "app/filters", 0, NULL},
    {8080, "filters.test", "/bad-type", NULL, H_NONE, NULL, 0, NULL},
    {8080, "filters.test", "/bad-combo", NULL, H_NONE, NULL, 0, NULL},
    /* The builder numbers the rules it accepted: rules 1 and 2 were dropped. */
    {8080, "filters.test", "/ext", NULL, H_NONE, "app/filters", 1, NULL},
    {8080, "filters.test", "/nobackend", NULL, H_NONE, "app/filters", 2, NULL},
    {8080, "all-bad.test", "/x", NULL, H_NONE, NULL, 0, NULL},
    {8080, "incompatible.test", "/", NULL, H_NONE, NULL, 0, NULL},
};

static const struct cond_case rules_status[] = {
    {ROUTE, "app", "old", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "app", "backends", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "app", "backends", "0", "ResolvedRefs", "False", "BackendNotFound"},
    {ROUTE, "other", "ungranted", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "other", "ungranted", "0", "ResolvedRefs", "False", "RefNotPermitted"},
    {ROUTE, "app", "filters", "0", "Accepted", "True", "Accepted"},
    {ROUTE, "app", "filters", "0", "PartiallyInvalid", "True", "UnsupportedValue"},
    {ROUTE, "app", "filters", "0", "ResolvedRefs", "False", "InvalidKind"},
    {ROUTE, "app", "all-bad", "0", "Accepted", "False", "UnsupportedValue"},
    {ROUTE, "app", "all-incompatible", "0", "Accepted", "False", "IncompatibleFilters"},
    {GW, "app", "gw", NULL, "Accepted", "True", "Accepted"},
};

static const struct sv_route_action *action_for(const struct sv_test_tx *f, const char *host,
                                                const char *path, struct sv_route_result *res)
{
    struct req_case c = {8080, host, path, NULL, H_NONE, NULL, 0, NULL};
    int rc;
    return lookup(f, &c, res, &rc);
}

TEST(translate_rules_precedence_filters_backends)
{
    struct sv_test_tx f;
    REQUIRE(fixture_load(&f, "rules.yaml") == 0);
    check_requests(&f, rules_requests, SV_ARRAY_SIZE(rules_requests));
    check_conditions(&f, rules_status, SV_ARRAY_SIZE(rules_status));
    CHECK_EQ_INT(attached(&f, "app", "gw", "http"), 5);

    struct sv_route_result res;
    const struct sv_route_action *a = action_for(&f, "app.test", "/re/1", &res);
    REQUIRE(a && a->ext->redirect);
    CHECK_EQ_MEM(a->ext->redirect->scheme.ptr, a->ext->redirect->scheme.len, "https");
    CHECK_EQ_INT(sv_route_redirect_status(&res), 301);
    CHECK_EQ_INT(a->n_backends, 0);

    a = action_for(&f, "backends.test", "/split", &res);
    REQUIRE(a && a->n_backends == 2);
    CHECK_EQ_INT(a->backends[0].kind, SV_ROUTE_BACKEND_SET);
    CHECK_EQ_INT(a->backends[0].weight, 3);
    CHECK_EQ_INT(a->backends[1].kind, SV_ROUTE_BACKEND_INVALID);
    CHECK_EQ_INT(a->backends[1].weight, 1);
    struct sv_str name = sv_generation_backend_set_name(f.gen, a->backends[0].set_id);
    CHECK_EQ_MEM(name.ptr, name.len, "app/web:80");
    size_t n;
    CHECK(sv_generation_endpoints(f.gen, a->backends[0].set_id, &n) && n == 2);

    a = action_for(&f, "backends.test", "/granted", &res);
    REQUIRE(a && a->n_backends == 1 && a->backends[0].kind == SV_ROUTE_BACKEND_SET);
    const struct sv_route_endpoint *ep = sv_generation_endpoints(f.gen, a->backends[0].set_id, &n);
    REQUIRE(ep && n == 1);
    CHECK_EQ_INT(ntohs(ep[0].addr.in.sin_port), 5432);

    a = action_for(&f, "backends.test", "/h2c", &res);
    REQUIRE(a && a->n_backends == 1);
    CHECK_EQ_INT(a->backends[0].app_proto, SV_ROUTE_APP_H2C);
    ep = sv_generation_endpoints(f.gen, a->backends[0].set_id, &n);
    REQUIRE(ep && n == 2);
    CHECK_EQ_INT(ntohs(ep[0].addr.in.sin_port), 9090);

    a = action_for(&f, "ungranted.test", "/", &res);
    REQUIRE(a && a->n_backends == 1);
    CHECK_EQ_INT(a->backends[0].kind, SV_ROUTE_BACKEND_INVALID);

    a = action_for(&f, "filters.test", "/rewrite/a", &res);
    REQUIRE(a);
    REQUIRE(a->ext->rewrite);
    CHECK_EQ_MEM(a->ext->rewrite->hostname.ptr, a->ext->rewrite->hostname.len, "inner.test");
    CHECK_EQ_INT(a->ext->rewrite->path.type, SV_ROUTE_PATH_MOD_PREFIX);
    char out[128];
    ssize_t len = sv_route_apply_path_mod(&a->ext->rewrite->path, &res, SV_STR_LIT("/rewrite/a"), out,
                                          sizeof(out));
    REQUIRE(len > 0);
    CHECK_EQ_MEM(out, (size_t)len, "/v2/a");
    CHECK(a->ext->request_mods != NULL);
    REQUIRE(a->ext->n_mirrors == 1);
    CHECK_EQ_INT(a->ext->mirrors[0].numerator, 25);
    CHECK_EQ_INT(a->ext->mirrors[0].denominator, 100);
    CHECK_EQ_INT(a->ext->request_timeout_ms, 2000);
    CHECK_EQ_INT(a->ext->backend_timeout_ms, 500);

    a = action_for(&f, "filters.test", "/ext", &res);
    REQUIRE(a);
    CHECK_EQ_INT(a->ext->fixed_status, 500);
    a = action_for(&f, "filters.test", "/nobackend", &res);
    REQUIRE(a);
    CHECK_EQ_INT(a->n_backends, 0);
    CHECK(sv_route_pick_backend(a, 7) == NULL); /* no backendRefs: 500 */

    const struct sv_status_route *r = sv_status_route(f.st, SV_KIND_HTTPROUTE, "app", "filters");
    REQUIRE(r && r->n_parents == 1);
    const struct sv_condition *pi = sv_condition_find(&r->parents[0].conds, "PartiallyInvalid");
    REQUIRE(pi);
    CHECK(strncmp(pi->message, "Dropped Rule", 12) == 0);
    CHECK(strstr(pi->message, "Dropped Rule 1") && strstr(pi->message, "Dropped Rule 2"));
    CHECK_EQ_INT(pi->observed_generation, 2);
    sv_test_tx_free(&f);
}

TEST(translate_host_intersection_table)
{
    /* Exercised through fixtures too; this pins the function's table (HN:98-108). */
    struct {
        const char *l, *r, *want;
    } cases[] = {
        {NULL, "a.example.com", "a.example.com"},
        {"a.example.com", "a.example.com", "a.example.com"},
        {"a.example.com", "b.example.com", NULL},
        {"*.example.com", "a.example.com", "a.example.com"},
        {"*.example.com", "a.b.example.com", "a.b.example.com"},
        {"*.example.com", "example.com", NULL},
        {"a.example.com", "*.example.com", "a.example.com"},
        {"example.com", "*.example.com", NULL},
        {"*.example.com", "*.a.example.com", "*.a.example.com"},
        {"*.a.example.com", "*.example.com", "*.a.example.com"},
        {"*.example.com", "*.example.org", NULL},
        {"*.example.com", "*.example.com", "*.example.com"},
        {"*.example.com", "xexample.com", NULL},
    };
    /* The function is internal; reach it through a tiny fixture per case would be slow, so the
     * translator exports it to tests through the store: build a Gateway + route per case. */
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        char text[1024], err[256];
        snprintf(text, sizeof(text),
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
                 "spec: {controllerName: serval.dev/gateway-controller}\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
                 "spec:\n  gatewayClassName: c\n  listeners:\n  - {name: l, port: 8080, "
                 "protocol: HTTP%s%s%s}\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
                 "spec:\n  parentRefs: [{name: g}]\n  hostnames: ['%s']\n",
                 cases[i].l ? ", hostname: '" : "", cases[i].l ? cases[i].l : "",
                 cases[i].l ? "'" : "", cases[i].r);
        struct sv_object *objs[4];
        int n = sv_test_decode_yaml(text, objs, 4, err, sizeof(err));
        if (n != 3) {
            FAIL("case %zu: decode %s", i, err);
            continue;
        }
        struct sv_store *s = sv_store_new();
        for (int k = 0; k < n; k++)
            sv_store_upsert(s, objs[k]);
        struct sv_generation *gen;
        struct sv_status *st;
        REQUIRE(sv_translate(s, NULL, &gen, &st, err, sizeof(err)) == 0);
        const struct sv_status_route *r = sv_status_route(st, SV_KIND_HTTPROUTE, "default", "r");
        const char *acc = r ? sv_condition_find(&r->parents[0].conds, "Accepted")->status : "?";
        if (strcmp(acc, cases[i].want ? "True" : "False") != 0)
            FAIL("case %zu: listener %s route %s: Accepted=%s", i, cases[i].l ? cases[i].l : "-",
                 cases[i].r, acc);
        sv_generation_free_unpublished(gen);
        sv_status_free(st);
        sv_store_free(s);
    }
}

/* Route-hostname precedence uses the route's ORIGINAL hostname (GATEWAY_API_RULES.md §3 step 2,
 * ours per upstream issue 5120): two routes whose hostnames intersect the listener's to the same
 * name are still ranked by their own hostnames (more non-wildcard characters, then more
 * characters; none = 0) before match specificity. Route "a" is always the older one and has the
 * more specific path, so under intersected-hostname ranking it would win every case. */
struct host_prec_case {
    const char *listener; /* listener hostname, NULL = none */
    const char *a_hosts;  /* YAML flow list of route a's hostnames, NULL = none */
    const char *a_path;
    const char *b_hosts;
    const char *b_path;
    const char *host, *path; /* the request */
    const char *want;        /* "a", "b" or NULL (404) */
};

static const struct host_prec_case host_prec_cases[] = {
    /* exact original beats a wildcard that intersected to the same exact listener hostname */
    {"foo.example.com", "['*.example.com']", "/api", "[foo.example.com]", "/", "foo.example.com",
     "/api/x", "b"},
    /* a wildcard original beats a route without hostnames on a wildcard listener */
    {"*.example.com", NULL, "/api", "['*.example.com']", "/", "x.example.com", "/api", "b"},
    /* a longer wildcard original beats a shorter one intersected to the listener's */
    {"*.example.com", "['*.com']", "/api", "['*.example.com']", "/", "x.example.com", "/api", "b"},
    /* exact original beats no hostname on an exact listener */
    {"foo.example.com", NULL, "/api", "[foo.example.com]", "/", "foo.example.com", "/api", "b"},
    /* the route's best matching hostname counts, not its first */
    {"foo.example.com", "['*.example.com', foo.example.com]", "/api", "[foo.example.com]", "/",
     "foo.example.com", "/api", "a"},
    /* equal original hostnames: match specificity decides (longer prefix) */
    {"foo.example.com", "['*.example.com']", "/api", "['*.example.com']", "/", "foo.example.com",
     "/api", "a"},
    /* ordering, not exclusivity: the better-hostname route has no matching rule */
    {"foo.example.com", "['*.example.com']", "/api", "[foo.example.com]", "/only",
     "foo.example.com", "/api", "a"},
    {"foo.example.com", "['*.example.com']", "/api", "[foo.example.com]", "/only",
     "foo.example.com", "/other", NULL},
    /* no listener hostname: originals are the intersections (unchanged behaviour) */
    {NULL, "['*.example.com']", "/api", "[foo.example.com]", "/", "foo.example.com", "/api", "b"},
    {NULL, "['*.example.com']", "/api", "[foo.example.com]", "/", "bar.example.com", "/api", "a"},
};

TEST(translate_route_hostname_precedence_uses_original_hostname)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(host_prec_cases); i++) {
        const struct host_prec_case *c = &host_prec_cases[i];
        char text[2048], lh[128] = "", ah[128] = "", bh[128] = "", err[256];
        if (c->listener)
            snprintf(lh, sizeof(lh), ", hostname: '%s'", c->listener);
        if (c->a_hosts)
            snprintf(ah, sizeof(ah), "  hostnames: %s\n", c->a_hosts);
        if (c->b_hosts)
            snprintf(bh, sizeof(bh), "  hostnames: %s\n", c->b_hosts);
        snprintf(text, sizeof(text),
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
                 "spec: {controllerName: serval.dev/gateway-controller}\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
                 "spec:\n  gatewayClassName: c\n  listeners:\n"
                 "  - {name: l, port: 8080, protocol: HTTP%s}\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                 "metadata: {name: a, creationTimestamp: '2026-01-01T00:00:00Z'}\n"
                 "spec:\n  parentRefs: [{name: g}]\n%s"
                 "  rules: [{matches: [{path: {type: PathPrefix, value: '%s'}}]}]\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                 "metadata: {name: b, creationTimestamp: '2026-06-01T00:00:00Z'}\n"
                 "spec:\n  parentRefs: [{name: g}]\n%s"
                 "  rules: [{matches: [{path: {type: PathPrefix, value: '%s'}}]}]\n",
                 lh, ah, c->a_path, bh, c->b_path);
        struct sv_object *objs[8];
        int n = sv_test_decode_yaml(text, objs, 8, err, sizeof(err));
        if (n != 4) {
            FAIL("case %zu: decode %d %s", i, n, err);
            for (int k = 0; k < n; k++)
                sv_object_free(objs[k]);
            continue;
        }
        struct sv_test_tx f = {.store = sv_store_new()};
        for (int k = 0; k < n; k++)
            sv_store_upsert(f.store, objs[k]);
        if (sv_translate(f.store, NULL, &f.gen, &f.st, err, sizeof(err)) != 0) {
            FAIL("case %zu: translate: %s", i, err);
            sv_store_free(f.store);
            continue;
        }
        struct req_case rq = {8080, c->host, c->path, NULL, H_NONE, NULL, 0, NULL};
        struct sv_route_result res;
        int rc;
        const struct sv_route_action *a = lookup(&f, &rq, &res, &rc);
        char got[64] = "404", want[64] = "404";
        if (a)
            snprintf(got, sizeof(got), "%.*s", (int)a->route_name.len, a->route_name.ptr);
        if (c->want)
            snprintf(want, sizeof(want), "default/%s", c->want);
        if (strcmp(got, want) != 0)
            FAIL("case %zu: listener %s, a %s %s, b %s %s; %s%s: got %s, want %s", i,
                 c->listener ? c->listener : "-", c->a_hosts ? c->a_hosts : "-", c->a_path,
                 c->b_hosts ? c->b_hosts : "-", c->b_path, c->host, c->path, got, want);
        sv_test_tx_free(&f);
    }
}

TEST(translate_bad_bind_address)
{
    struct sv_store *s = sv_store_new();
    struct sv_generation *gen = (struct sv_generation *)1;
    struct sv_status *st = (struct sv_status *)1;
    char err[128];
    struct sv_translate_opts o = {.bind_addr = "not-an-ip"};
    CHECK_EQ_INT(sv_translate(s, &o, &gen, &st, err, sizeof(err)), -EINVAL);
    CHECK(gen == NULL && st == NULL);
    CHECK(strstr(err, "not-an-ip") != NULL);
    sv_store_free(s);
}

/* ---- listeners.yaml ------------------------------------------------------------------------- */

static const struct cond_case listener_status[] = {
    /* Gateways share --bind: same port and hostname are merged, not conflicted. */
    {LISTENER, "net", "b", "http", "Conflicted", "False", "NoConflicts"},
    {LISTENER, "net", "b", "http", "Programmed", "True", "Programmed"},
    /* ... but a protocol clash refuses the younger Gateway's listener. */
    {LISTENER, "net", "b", "clash", "Conflicted", "True", "ProtocolConflict"},
    {LISTENER, "net", "b", "clash", "Programmed", "False", "Invalid"},
    {LISTENER, "net", "a", "https", "Conflicted", "False", "NoConflicts"},
    {LISTENER, "net", "a", "https", "ResolvedRefs", "True", "ResolvedRefs"},
    {LISTENER, "net", "a", "https", "Programmed", "True", "Programmed"},
    {GW, "net", "b", NULL, "Accepted", "True", "ListenersNotValid"},
    /* Within one Gateway nobody wins. */
    {LISTENER, "net", "c", "plain", "Conflicted", "True", "ProtocolConflict"},
    {LISTENER, "net", "c", "tls", "Conflicted", "True", "ProtocolConflict"},
    {LISTENER, "net", "c", "dup1", "Conflicted", "True", "HostnameConflict"},
    {LISTENER, "net", "c", "dup2", "Conflicted", "True", "HostnameConflict"},
    {LISTENER, "net", "c", "fine", "Conflicted", "False", "NoConflicts"},
    {LISTENER, "net", "c", "fine", "Programmed", "True", "Programmed"},
    {GW, "net", "c", NULL, "Accepted", "True", "ListenersNotValid"},
    /* Certificates. */
    {LISTENER, "net", "certs", "missing", "ResolvedRefs", "False", "InvalidCertificateRef"},
    {LISTENER, "net", "certs", "missing", "Programmed", "False", "Invalid"},
    {LISTENER, "net", "certs", "foreign", "ResolvedRefs", "False", "RefNotPermitted"},
    {LISTENER, "net", "certs", "granted", "ResolvedRefs", "True", "ResolvedRefs"},
    {LISTENER, "net", "certs", "granted", "Programmed", "True", "Programmed"},
    {LISTENER, "net", "certs", "malformed", "ResolvedRefs", "False", "InvalidCertificateRef"},
    {LISTENER, "net", "certs", "configmap", "ResolvedRefs", "False", "InvalidCertificateRef"},
    {GW, "net", "certs", NULL, "Accepted", "True", "ListenersNotValid"},
    {GW, "net", "certs", NULL, "Programmed", "True", "Programmed"},
    /* Addresses (--bind 127.0.0.1 in this test). */
    {GW, "net", "hostname-address", NULL, "Accepted", "False", "UnsupportedAddress"},
    {GW, "net", "far-address", NULL, "Programmed", "False", "AddressNotUsable"},
    {GW, "net", "near-address", NULL, "Programmed", "True", "Programmed"},
    {ROUTE, "net", "on-b", "0", "Accepted", "True", "Accepted"},
};

static const struct req_case listener_requests[] = {
    /* Routes of both Gateways are served on the merged 8080 listener. */
    {8080, "any.test", "/b", NULL, H_NONE, "net/on-b", 0, "net/a/http"},
    {8080, "any.test", "/a", NULL, H_NONE, "net/on-a", 0, "net/a/http"},
    {9002, "any.test", "/a", NULL, H_NONE, NULL, 0, "net/c/fine"},
};

TEST(translate_listener_conflicts_certificates_addresses)
{
    struct sv_test_tx f;
    REQUIRE(fixture_load_bind(&f, "listeners.yaml", "127.0.0.1") == 0);
    check_conditions(&f, listener_status, SV_ARRAY_SIZE(listener_status));
    check_requests(&f, listener_requests, SV_ARRAY_SIZE(listener_requests));
    CHECK_EQ_INT(attached(&f, "net", "b", "http"), 1);
    CHECK_EQ_INT(attached(&f, "net", "a", "http"), 1);

    /* No port 9000/9001 bind: conflicted listeners are not opened. */
    size_t nb = 0;
    const struct sv_route_bind *binds = sv_generation_binds(f.gen, &nb);
    int p9000 = 0, p8443_http = 0;
    for (size_t i = 0; i < nb; i++) {
        p9000 += binds[i].port == 9000 || binds[i].port == 9001;
        p8443_http += binds[i].port == 8443 && binds[i].proto == SV_ROUTE_PROTO_HTTP;
    }
    CHECK_EQ_INT(p9000, 0);
    CHECK_EQ_INT(p8443_http, 0);

    /* Certificates handed to the TLS layer: a's https and certs/granted. */
    REQUIRE(f.st->n_certs == 2);
    int seen_secure = 0, seen_granted = 0;
    for (size_t i = 0; i < f.st->n_certs; i++) {
        const struct sv_status_tls_cert *c = &f.st->certs[i];
        seen_secure += strcmp(c->hostname, "secure.test") == 0 &&
                       memmem(c->cert_pem, c->cert_len, "MIIB", 4) != NULL;
        seen_granted += strcmp(c->hostname, "granted.test") == 0 &&
                        memmem(c->key_pem, c->key_len, "MIIEv", 5) != NULL; /* the RSA key */
    }
    CHECK_EQ_INT(seen_secure, 1);
    CHECK_EQ_INT(seen_granted, 1);

    const struct sv_status_gateway *g = sv_status_gateway(f.st, "net", "near-address");
    REQUIRE(g && g->n_addresses == 1);
    CHECK_EQ_STR(g->addresses[0].value, "127.0.0.1");
    g = sv_status_gateway(f.st, "net", "a");
    REQUIRE(g && g->n_addresses == 1);
    CHECK_EQ_STR(g->addresses[0].value, "127.0.0.1"); /* the --bind address */
    sv_test_tx_free(&f);
}

/* The `make run` example folder (deploy/examples/folder) translates cleanly: every route
 * Accepted with resolved references, and the routes go where its comments say. */
TEST(translate_make_run_example_folder)
{
    static const char *const files[] = {"gateway.yaml", "backends.yaml", "routes.yaml"};
    struct sv_store *s = sv_store_new();
    REQUIRE(s);
    for (size_t i = 0; i < SV_ARRAY_SIZE(files); i++) {
        char path[256], err[512];
        snprintf(path, sizeof(path), "deploy/examples/folder/%s", files[i]);
        char *text = sv_test_read_file(path, NULL);
        if (!text) {
            FAIL("cannot read %s", path);
            continue;
        }
        struct sv_object *objs[16];
        int n = sv_test_decode_yaml(text, objs, 16, err, sizeof(err));
        free(text);
        if (n < 0)
            FAIL("%s: %s", path, err);
        for (int k = 0; k < n; k++)
            sv_store_upsert(s, objs[k]);
    }
    struct sv_test_tx f = {.store = s};
    char err[256];
    struct sv_translate_opts o = {.bind_addr = "127.0.0.1"};
    REQUIRE(sv_translate(s, &o, &f.gen, &f.st, err, sizeof(err)) == 0);
    static const struct cond_case conds[] = {
        {GW, "example", "web", NULL, "Programmed", "True", "Programmed"},
        {ROUTE, "example", "app", "0", "Accepted", "True", "Accepted"},
        {ROUTE, "example", "app", "0", "ResolvedRefs", "True", "ResolvedRefs"},
    };
    check_conditions(&f, conds, SV_ARRAY_SIZE(conds));
    static const char *const canary[] = {"X-Canary", "yes", NULL};
    const struct req_case reqs[] = {
        {8080, "localhost", "/app", NULL, H_NONE, "example/app", 1, "example/web/http"},
        {8080, "localhost", "/app/x", NULL, canary, "example/app", 0, NULL},
        {8080, "localhost", "/green", NULL, H_NONE, "example/app", 2, NULL},
        {8080, "localhost", "/", NULL, H_NONE, NULL, 0, NULL},
    };
    check_requests(&f, reqs, SV_ARRAY_SIZE(reqs));
    sv_test_tx_free(&f);
}

/* Endpoint-only update: new endpoints, same route table. */
TEST(translate_endpoint_only_update_shares_routes)
{
    struct sv_test_tx f;
    REQUIRE(fixture_load(&f, "rules.yaml") == 0);
    char err[256];
    /* Same store, new slice for app/web: 127.0.3.9 only, port 8080. */
    struct sv_object *o = sv_test_decode_one(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: web-a, namespace: app, labels: {kubernetes.io/service-name: web}}\n"
        "addressType: IPv4\nports: [{name: http, port: 8080}, {name: grpc, port: 9090}]\n"
        "endpoints: [{addresses: [127.0.3.9]}, {addresses: [127.0.3.10], conditions: {ready: "
        "false}}]\n",
        err, sizeof(err));
    REQUIRE(o);
    const struct sv_object *before = sv_store_get(f.store, SV_KIND_ENDPOINTSLICE, "app", "web-a");
    REQUIRE(before && before->content_hash != o->content_hash);
    CHECK_EQ_INT(sv_store_upsert(f.store, o), 1);

    struct sv_generation *g2 = NULL;
    size_t changed = 0;
    REQUIRE(sv_translate_endpoints(f.store, f.gen, &g2, &changed, err, sizeof(err)) == 0);
    REQUIRE(g2);
    CHECK(sv_generation_same_routes(f.gen, g2));
    CHECK_EQ_INT(changed, 2); /* app/web:80 and app/web:81; data/db untouched */
    int64_t set = sv_generation_find_backend_set(g2, SV_STR_LIT("app/web:80"));
    REQUIRE(set >= 0);
    size_t n = 0;
    const struct sv_route_endpoint *ep = sv_generation_endpoints(g2, (uint32_t)set, &n);
    REQUIRE(ep && n == 1);
    char a[64];
    inet_ntop(AF_INET, &ep[0].addr.in.sin_addr, a, sizeof(a));
    CHECK_EQ_STR(a, "127.0.3.9");
    CHECK_EQ_INT(ntohs(ep[0].addr.in.sin_port), 8080);
    set = sv_generation_find_backend_set(g2, SV_STR_LIT("data/db:5432"));
    REQUIRE(set >= 0);
    CHECK(sv_generation_endpoints(g2, (uint32_t)set, &n) && n == 1);

    /* The Service disappearing leaves its sets empty (503), routes unchanged. */
    CHECK_EQ_INT(sv_store_delete(f.store, SV_KIND_SERVICE, "data", "db"), 1);
    struct sv_generation *g3 = NULL;
    REQUIRE(sv_translate_endpoints(f.store, g2, &g3, &changed, err, sizeof(err)) == 0);
    CHECK_EQ_INT(changed, 1);
    sv_generation_endpoints(g3, (uint32_t)set, &n);
    CHECK_EQ_INT(n, 0);
    sv_generation_free_unpublished(g3);
    sv_generation_free_unpublished(g2);
    sv_test_tx_free(&f);
}

TEST(model_content_hash_ignores_status_and_resource_version)
{
    char err[256];
    struct sv_object *a = sv_test_decode_one(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, resourceVersion: '1'}\n"
        "spec: {ports: [{port: 80}]}\nstatus: {x: 1}\n", err, sizeof(err));
    struct sv_object *b = sv_test_decode_one(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, resourceVersion: '2'}\n"
        "spec: {ports: [{port: 80}]}\n", err, sizeof(err));
    struct sv_object *c = sv_test_decode_one(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 81}]}\n", err,
        sizeof(err));
    REQUIRE(a && b && c);
    CHECK(a->content_hash == b->content_hash);
    CHECK(a->content_hash != c->content_hash);
    sv_object_free(a);
    sv_object_free(b);
    sv_object_free(c);
}

/* Path match values the translator refuses (a dropped rule), and endpoint addresses it takes
 * (dotted-quad IPv4 exactly as inet_pton reads it, IPv6; anything else is skipped). */
TEST(translate_path_validation_and_endpoint_addresses)
{
    static const struct {
        const char *path;
        bool ok;
    } paths[] = {
        {"/a/b", true},   {"/", true},       {"/a.b/c..d", true}, {"/%2e", true},
        {"/a//b", false}, {"/a/./b", false}, {"/a/../b", false},  {"/a%2Fb", false},
        {"/a%2fb", false}, {"/a#b", false},  {"a", false},        {"/a/.", true},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(paths); i++) {
        char text[2048], err[256];
        snprintf(text, sizeof(text),
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
                 "spec: {controllerName: serval.dev/gateway-controller}\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
                 "spec:\n  gatewayClassName: c\n  listeners:\n"
                 "  - {name: l, port: 8080, protocol: HTTP}\n---\n"
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
                 "spec:\n  parentRefs: [{name: g}]\n"
                 "  rules: [{matches: [{path: {type: PathPrefix, value: '%s'}}]}]\n",
                 paths[i].path);
        struct sv_object *objs[4];
        int n = sv_test_decode_yaml(text, objs, 4, err, sizeof(err));
        REQUIRE(n == 3);
        struct sv_test_tx f = {.store = sv_store_new()};
        for (int k = 0; k < n; k++)
            sv_store_upsert(f.store, objs[k]);
        REQUIRE(sv_translate(f.store, NULL, &f.gen, &f.st, err, sizeof(err)) == 0);
        const struct sv_status_route *r = sv_status_route(f.st, SV_KIND_HTTPROUTE, "default", "r");
        const char *acc = r ? sv_condition_find(&r->parents[0].conds, "Accepted")->status : "?";
        if (strcmp(acc, paths[i].ok ? "True" : "False") != 0)
            FAIL("path %s: Accepted=%s", paths[i].path, acc);
        sv_test_tx_free(&f);
    }

    const char *text =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
        "spec: {controllerName: serval.dev/gateway-controller}\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
        "spec:\n  gatewayClassName: c\n  listeners:\n  - {name: l, port: 8080, protocol: HTTP}\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
        "spec:\n  parentRefs: [{name: g}]\n  rules: [{backendRefs: [{name: s, port: 80}]}]\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
        "spec: {ports: [{name: http, port: 80}]}\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: s-1, labels: {kubernetes.io/service-name: s}}\naddressType: IPv4\n"
        "ports: [{name: http, port: 9000}]\nendpoints:\n"
        "- addresses: ['10.0.0.1', '0.0.0.0', '255.255.255.255', '::1']\n"
        "- addresses: ['010.0.0.2', '10.0.0.256', '10.0.0', '10.0.0.3.4', '10.0.0.4 ', "
        "'1.2.3.1000', '', 'host.example', '.1.2.3', '1..2.3']\n";
    char err[256];
    struct sv_object *objs[8];
    int n = sv_test_decode_yaml(text, objs, 8, err, sizeof(err));
    REQUIRE(n == 5);
    struct sv_test_tx f = {.store = sv_store_new()};
    for (int k = 0; k < n; k++)
        sv_store_upsert(f.store, objs[k]);
    REQUIRE(sv_translate(f.store, NULL, &f.gen, &f.st, err, sizeof(err)) == 0);
    int64_t set = sv_generation_find_backend_set(f.gen, SV_STR_LIT("default/s:80"));
    REQUIRE(set >= 0);
    size_t ne = 0;
    const struct sv_route_endpoint *eps = sv_generation_endpoints(f.gen, (uint32_t)set, &ne);
    CHECK_EQ_INT(ne, 4);
    const char *want[] = {"10.0.0.1", "0.0.0.0", "255.255.255.255", "::1"};
    for (size_t i = 0; eps && i < ne && i < 4; i++) {
        char a[64] = "";
        if (eps[i].addr.sa.sa_family == AF_INET)
            inet_ntop(AF_INET, &eps[i].addr.in.sin_addr, a, sizeof(a));
        else
            inet_ntop(AF_INET6, &eps[i].addr.in6.sin6_addr, a, sizeof(a));
        CHECK_EQ_STR(a, want[i]);
        CHECK_EQ_INT(ntohs(eps[i].addr.in.sin_port), 9000);
    }
    sv_test_tx_free(&f);
}
