/* YAML -> cJSON conversion: scalar resolution, multi-document streams, aliases, limits, errors. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/yaml.h"

static cJSON *parse_ok(const char *text)
{
    cJSON *out = NULL;
    char err[256];
    int rc = sv_yaml_parse(text, strlen(text), &out, err, sizeof(err));
    if (rc != 0) {
        FAIL("sv_yaml_parse failed: %d %s", rc, err);
        return NULL;
    }
    return out;
}

TEST(yaml_plain_scalars_resolve_like_yaml11)
{
    cJSON *docs = parse_ok("a: 1\n"
                           "b: -0x1F\n"
                           "c: 0o17\n"
                           "d: 1_000\n"
                           "e: 2.5\n"
                           "f: true\n"
                           "g: No\n"
                           "h: ~\n"
                           "i:\n"
                           "j: \"123\"\n"
                           "k: '~'\n"
                           "l: hello world\n"
                           "m: 1.0e+3\n"
                           "n: 010\n"
                           "o: v1\n"
                           "p: 1.2.3\n"
                           "q: !custom true\n");
    REQUIRE(docs && cJSON_GetArraySize(docs) == 1);
    cJSON *d = cJSON_GetArrayItem(docs, 0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(d, "a")) && cJSON_GetObjectItem(d, "a")->valuedouble == 1);
    CHECK_EQ_INT(cJSON_GetObjectItem(d, "b")->valuedouble, -31);
    CHECK_EQ_INT(cJSON_GetObjectItem(d, "c")->valuedouble, 15);
    CHECK_EQ_INT(cJSON_GetObjectItem(d, "d")->valuedouble, 1000);
    CHECK(cJSON_GetObjectItem(d, "e")->valuedouble == 2.5);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(d, "f")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(d, "g")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(d, "h")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(d, "i")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(d, "j")));
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "j")->valuestring, "123");
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "k")->valuestring, "~");
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "l")->valuestring, "hello world");
    CHECK(cJSON_GetObjectItem(d, "m")->valuedouble == 1000.0);
    CHECK_EQ_INT(cJSON_GetObjectItem(d, "n")->valuedouble, 8);
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "o")->valuestring, "v1");
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "p")->valuestring, "1.2.3");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(d, "q")));
    cJSON_Delete(docs);
}

TEST(yaml_multi_document_keeps_indexes)
{
    cJSON *docs = parse_ok("---\nkind: A\n---\n---\n# only a comment\n---\n- 1\n- two\n");
    REQUIRE(docs);
    REQUIRE(cJSON_GetArraySize(docs) == 4);
    CHECK_EQ_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(docs, 0), "kind")->valuestring, "A");
    CHECK(cJSON_IsNull(cJSON_GetArrayItem(docs, 1)));
    CHECK(cJSON_IsNull(cJSON_GetArrayItem(docs, 2)));
    cJSON *arr = cJSON_GetArrayItem(docs, 3);
    CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 2);
    CHECK_EQ_STR(cJSON_GetArrayItem(arr, 1)->valuestring, "two");
    cJSON_Delete(docs);

    docs = parse_ok("");
    REQUIRE(docs);
    CHECK_EQ_INT(cJSON_GetArraySize(docs), 0);
    cJSON_Delete(docs);
}

TEST(yaml_block_and_flow_styles)
{
    cJSON *docs = parse_ok("s: |\n  line1\n  line2\nf: {x: [1, 'a', {y: null}]}\nfold: >-\n  a\n  b\n");
    REQUIRE(docs);
    cJSON *d = cJSON_GetArrayItem(docs, 0);
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "s")->valuestring, "line1\nline2\n");
    CHECK_EQ_STR(cJSON_GetObjectItem(d, "fold")->valuestring, "a b");
    cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "f"), "x");
    CHECK(cJSON_IsArray(x) && cJSON_GetArraySize(x) == 3);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(x, 2), "y")));
    cJSON_Delete(docs);
}

TEST(yaml_aliases_resolve)
{
    cJSON *docs = parse_ok("base: &b {port: 80, name: web}\ncopy: *b\nlist: [*b, *b]\n");
    REQUIRE(docs);
    cJSON *d = cJSON_GetArrayItem(docs, 0);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "copy"), "port")->valuedouble, 80);
    CHECK_EQ_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "list"), 1), "name")
                     ->valuestring,
                 "web");
    cJSON_Delete(docs);
}

static int parse_err(const char *text, char *err, size_t errlen)
{
    cJSON *out = NULL;
    int rc = sv_yaml_parse(text, strlen(text), &out, err, errlen);
    CHECK(out == NULL);
    return rc;
}

TEST(yaml_errors_name_document_and_line)
{
    char err[256];
    CHECK_EQ_INT(parse_err("a: 1\n---\nb: [1, 2\nc: 3\n", err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "document 1") != NULL);
    CHECK(strstr(err, "line") != NULL);

    CHECK_EQ_INT(parse_err("a: 1\nb: 2\na: 3\n", err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "duplicate key \"a\"") != NULL);
    CHECK(strstr(err, "line 3") != NULL);

    CHECK_EQ_INT(parse_err("? [1, 2]\n: x\n", err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "mapping key must be a scalar") != NULL);

    CHECK_EQ_INT(parse_err("a: *missing\n", err, sizeof(err)), -EINVAL);
    CHECK(err[0] != '\0');

    CHECK_EQ_INT(parse_err("\tkey: value\n", err, sizeof(err)), -EINVAL);
}

TEST(yaml_depth_and_alias_bombs_are_bounded)
{
    char err[256];
    /* 200 nested flow sequences. */
    char deep[512];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        deep[n++] = '[';
    for (int i = 0; i < 200; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    CHECK_EQ_INT(parse_err(deep, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "deep") != NULL);

    /* Billion laughs: 9 levels of 10x expansion = 10^9 nodes. */
    char bomb[2048];
    n = (size_t)snprintf(bomb, sizeof(bomb), "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i <= 9; i++)
        n += (size_t)snprintf(bomb + n, sizeof(bomb) - n,
                              "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                              i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    CHECK_EQ_INT(parse_err(bomb, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "too many nodes") != NULL);
}

TEST(yaml_fuzz_like_inputs_never_crash)
{
    /* Truncations of a valid manifest at every byte: each must parse or fail cleanly. */
    static const char text[] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: 'a'\n  labels: "
                               "{x: \"y\"}\nspec:\n  ports:\n  - port: 80\n    name: &n http\n"
                               "  - {port: 81, name: *n}\n---\n[a, {b: c}]\n";
    for (size_t len = 0; len < sizeof(text) - 1; len++) {
        cJSON *out = NULL;
        char err[128];
        int rc = sv_yaml_parse(text, len, &out, err, sizeof(err));
        CHECK(rc == 0 || rc == -EINVAL);
        CHECK((rc == 0) == (out != NULL));
        cJSON_Delete(out);
    }
}
