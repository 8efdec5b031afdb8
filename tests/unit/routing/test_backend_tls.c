/* Upstream TLS contexts per backend set (BackendTLSPolicy): attached through the builder, read by
 * set id, shared by an endpoint-only update, released once with the route table. */
#include <errno.h>

#include "../harness.h"
#include "rt_helpers.h"
#include "serval/routing/builder.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"

static int released[4];

static void release_ctx(void *ctx)
{
    released[*(int *)ctx]++;
}

TEST(routing_backend_tls)
{
    static int ctx0 = 0, ctx1 = 1, ctx2 = 2, ctx3 = 3;
    for (int i = 0; i < 4; i++)
        released[i] = 0;
    struct sv_route_builder *b = sv_route_builder_new();
    REQUIRE(b);
    REQUIRE(sv_route_builder_add_backend_set(b, sv_str_cstr("ns/plain:80")) == 0);
    REQUIRE(sv_route_builder_add_backend_set(b, sv_str_cstr("ns/tls:443")) == 1);
    union sv_route_sockaddr sa = rt_sa("10.0.0.1", 8443);
    REQUIRE(sv_route_builder_add_endpoint(b, 1, &sa.sa, rt_salen(&sa)) == 0);
    /* no such set: refused, the caller keeps its context */
    CHECK_EQ_INT(sv_route_builder_set_backend_tls(b, 7, &ctx3, release_ctx), -EINVAL);
    CHECK_EQ_INT(released[3], 0);
    /* a replaced context is released at once */
    CHECK_EQ_INT(sv_route_builder_set_backend_tls(b, 1, &ctx2, release_ctx), 0);
    CHECK_EQ_INT(sv_route_builder_set_backend_tls(b, 1, &ctx1, release_ctx), 0);
    CHECK_EQ_INT(released[2], 1);
    char err[256] = "";
    struct sv_generation *g1 = sv_route_builder_finish(b, err, sizeof(err));
    REQUIRE(g1);
    CHECK(sv_generation_backend_tls(g1, 0) == NULL);
    CHECK(sv_generation_backend_tls(g1, 1) == &ctx1);
    CHECK(sv_generation_backend_tls(g1, 9) == NULL);

    /* endpoint-only update: same route table, same context */
    struct sv_route_endpoint ep = {.addr = rt_sa("10.0.0.2", 8443)};
    ep.addrlen = rt_salen(&ep.addr);
    struct sv_route_endpoint_update up = {1, &ep, 1};
    struct sv_generation *g2 = sv_generation_new_with_endpoints(g1, &up, 1, err, sizeof(err));
    REQUIRE(g2);
    CHECK(sv_generation_backend_tls(g2, 1) == &ctx1);
    sv_generation_free_unpublished(g1);
    CHECK_EQ_INT(released[1], 0); /* g2 still uses the table */
    sv_generation_free_unpublished(g2);
    CHECK_EQ_INT(released[1], 1);

    /* a discarded builder releases what was attached */
    b = sv_route_builder_new();
    REQUIRE(b);
    REQUIRE(sv_route_builder_add_backend_set(b, sv_str_cstr("ns/x:1")) == 0);
    CHECK_EQ_INT(sv_route_builder_set_backend_tls(b, 0, &ctx0, release_ctx), 0);
    sv_route_builder_free(b);
    CHECK_EQ_INT(released[0], 1);
    CHECK_EQ_INT(released[3], 0);
}
