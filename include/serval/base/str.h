/* Borrowed byte strings {ptr,len}: never owned, never NUL-terminated unless said. Any thread. */
#ifndef SERVAL_BASE_STR_H
#define SERVAL_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sv_str {
    const char *ptr;
    size_t len;
};

#define SV_STR_LIT(s) ((struct sv_str){(s), sizeof(s) - 1})
#define SV_STR_NULL ((struct sv_str){NULL, 0})

static inline struct sv_str sv_str_make(const char *p, size_t n)
{
    return (struct sv_str){p, n};
}

static inline struct sv_str sv_str_cstr(const char *s)
{
    return (struct sv_str){s, s ? strlen(s) : 0};
}

static inline bool sv_str_eq(struct sv_str a, struct sv_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline char sv_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* ASCII case-insensitive equality. */
bool sv_str_eq_nocase(struct sv_str a, struct sv_str b);

bool sv_str_has_prefix(struct sv_str s, struct sv_str prefix);

/* Strip leading and trailing spaces and tabs. */
struct sv_str sv_str_trim(struct sv_str s);

/* Parse an unsigned decimal that must fill all of <s> and be <= max. Returns 0 or -1. */
int sv_str_to_u64(struct sv_str s, uint64_t max, uint64_t *out);

#endif
