#include "serval/base/str.h"

bool sv_str_eq_nocase(struct sv_str a, struct sv_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        if (sv_ascii_lower(a.ptr[i]) != sv_ascii_lower(b.ptr[i]))
            return false;
    }
    return true;
}

bool sv_str_has_prefix(struct sv_str s, struct sv_str prefix)
{
    return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

struct sv_str sv_str_trim(struct sv_str s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

int sv_str_to_u64(struct sv_str s, uint64_t max, uint64_t *out)
{
    if (s.len == 0 || s.len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9')
            return -1;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}
