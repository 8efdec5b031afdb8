/* Unit tests for src/http/message.c: method table, header lookup/join, token lists. */
#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/http/message.h"
#include "serval/http/parser.h"
#include "serval/http/response.h"
#include "serval/http/serialize.h"

#include <errno.h>

TEST(http_method_table)
{
    for (int m = 0; m < SV_HTTP_OTHER; m++)
        CHECK_EQ_INT(sv_http_method_from_str(sv_http_method_names[m]), m);
    CHECK_EQ_INT(sv_http_method_from_str(SV_STR_LIT("get")), SV_HTTP_OTHER);
    CHECK_EQ_INT(sv_http_method_from_str(SV_STR_LIT("PROPFIND")), SV_HTTP_OTHER);
    CHECK_EQ_INT(sv_http_method_from_str(SV_STR_LIT("")), SV_HTTP_OTHER);
    CHECK_EQ_INT(sv_http_method_from_str(SV_STR_LIT("GETX")), SV_HTTP_OTHER);
}

static void fill(struct sv_http_head *h, struct sv_http_header *st, uint32_t cap)
{
    sv_http_head_init(h, st, cap);
    static const char *const pairs[][2] = {
        {"Host", "a.example"}, {"X-A", "1"}, {"x-a", "2, 3"}, {"Accept", "*/*"}, {"X-A", ""},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(pairs) && i < cap; i++) {
        st[i].name = sv_str_cstr(pairs[i][0]);
        st[i].value = sv_str_cstr(pairs[i][1]);
        h->n_headers++;
    }
}

TEST(http_head_find_and_join)
{
    struct sv_http_header st[8];
    struct sv_http_head h;
    fill(&h, st, 8);
    CHECK_EQ_INT(sv_http_head_find(&h, SV_STR_LIT("x-A"), 0), 1);
    CHECK_EQ_INT(sv_http_head_find(&h, SV_STR_LIT("X-A"), 2), 2);
    CHECK_EQ_INT(sv_http_head_find(&h, SV_STR_LIT("X-A"), 3), 4);
    CHECK_EQ_INT(sv_http_head_find(&h, SV_STR_LIT("X-A"), 5), -1);
    CHECK_EQ_INT(sv_http_head_find(&h, SV_STR_LIT("X-B"), 0), -1);
    CHECK(sv_str_eq(sv_http_head_get(&h, SV_STR_LIT("HOST")), SV_STR_LIT("a.example")));
    CHECK(sv_http_head_get(&h, SV_STR_LIT("X-None")).ptr == NULL);

    char out[64];
    ssize_t n = sv_http_head_join(&h, SV_STR_LIT("x-a"), out, sizeof(out));
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_MEM(out, n > 0 ? n : 0, "1,2, 3,");
    n = sv_http_head_join(&h, SV_STR_LIT("accept"), out, sizeof(out));
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_MEM(out, n > 0 ? n : 0, "*/*");
    CHECK_EQ_INT(sv_http_head_join(&h, SV_STR_LIT("nope"), out, sizeof(out)), -ENOENT);
    CHECK_EQ_INT(sv_http_head_join(&h, SV_STR_LIT("x-a"), out, 6), -ENOSPC);
    CHECK_EQ_INT(sv_http_head_join(&h, SV_STR_LIT("x-a"), out, 7), 7);
}

TEST(http_list_has)
{
    CHECK(sv_http_list_has(SV_STR_LIT("close"), SV_STR_LIT("close")));
    CHECK(sv_http_list_has(SV_STR_LIT(" Keep-Alive , Upgrade"), SV_STR_LIT("upgrade")));
    CHECK(sv_http_list_has(SV_STR_LIT(",,\tclose\t,"), SV_STR_LIT("CLOSE")));
    CHECK(!sv_http_list_has(SV_STR_LIT("closed"), SV_STR_LIT("close")));
    CHECK(!sv_http_list_has(SV_STR_LIT("x-close"), SV_STR_LIT("close")));
    CHECK(!sv_http_list_has(SV_STR_LIT(""), SV_STR_LIT("close")));
    CHECK(!sv_http_list_has(SV_STR_LIT("keep-alive"), SV_STR_LIT("close")));
}

TEST(http_reason)
{
    CHECK_EQ_STR(sv_http_reason(404), "Not Found");
    CHECK_EQ_STR(sv_http_reason(431), "Request Header Fields Too Large");
    CHECK_EQ_STR(sv_http_reason(799), "Unknown");
}

TEST(http_list_next_walks_trimmed_elements)
{
    struct sv_str v = SV_STR_LIT(" gzip ,, chunked\t,x");
    const char *want[] = {"gzip", "", "chunked", "x"};
    size_t pos = 0, n = 0;
    struct sv_str e;
    while (sv_http_list_next(v, &pos, &e)) {
        REQUIRE(n < 4);
        CHECK_EQ_MEM(e.ptr, e.len, want[n]);
        n++;
    }
    CHECK_EQ_INT(n, 4);
    pos = 0;
    CHECK(!sv_http_list_next(SV_STR_LIT(""), &pos, &e));
    pos = 0;
    CHECK(sv_http_list_next(SV_STR_LIT("a,"), &pos, &e));
    CHECK_EQ_MEM(e.ptr, e.len, "a");
    CHECK(!sv_http_list_next(SV_STR_LIT("a,"), &pos, &e));
}
