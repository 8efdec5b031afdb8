/* Message model helpers: method table, header lookup and joining, token lists, reason phrases. */
#include "serval/http/message.h"

#include <errno.h>
#include <string.h>

const struct sv_str sv_http_method_names[SV_HTTP_METHOD_COUNT] = {
    [SV_HTTP_GET] = SV_STR_LIT("GET"),         [SV_HTTP_HEAD] = SV_STR_LIT("HEAD"),
    [SV_HTTP_POST] = SV_STR_LIT("POST"),       [SV_HTTP_PUT] = SV_STR_LIT("PUT"),
    [SV_HTTP_DELETE] = SV_STR_LIT("DELETE"),   [SV_HTTP_CONNECT] = SV_STR_LIT("CONNECT"),
    [SV_HTTP_OPTIONS] = SV_STR_LIT("OPTIONS"), [SV_HTTP_TRACE] = SV_STR_LIT("TRACE"),
    [SV_HTTP_PATCH] = SV_STR_LIT("PATCH"),     [SV_HTTP_OTHER] = SV_STR_LIT(""),
};

enum sv_http_method sv_http_method_from_str(struct sv_str s)
{
    for (int m = 0; m < SV_HTTP_OTHER; m++) {
        if (sv_str_eq(s, sv_http_method_names[m]))
            return (enum sv_http_method)m;
    }
    return SV_HTTP_OTHER;
}

void sv_http_head_init(struct sv_http_head *h, struct sv_http_header *storage, uint32_t cap)
{
    memset(h, 0, sizeof(*h));
    h->headers = storage;
    h->headers_cap = storage ? cap : 0;
}

int sv_http_head_find(const struct sv_http_head *h, struct sv_str name, uint32_t start)
{
    for (uint32_t i = start; i < h->n_headers; i++) {
        if (sv_str_eq_nocase(h->headers[i].name, name))
            return (int)i;
    }
    return -1;
}

struct sv_str sv_http_head_get(const struct sv_http_head *h, struct sv_str name)
{
    int i = sv_http_head_find(h, name, 0);
    return i < 0 ? SV_STR_NULL : h->headers[i].value;
}

ssize_t sv_http_head_join(const struct sv_http_head *h, struct sv_str name, char *out, size_t cap)
{
    size_t n = 0;
    bool found = false;
    for (int i = sv_http_head_find(h, name, 0); i >= 0;
         i = sv_http_head_find(h, name, (uint32_t)i + 1)) {
        struct sv_str v = h->headers[i].value;
        size_t need = v.len + (found ? 1 : 0);
        if (need > cap - n)
            return -ENOSPC;
        if (found)
            out[n++] = ',';
        if (v.len)
            memcpy(out + n, v.ptr, v.len);
        n += v.len;
        found = true;
    }
    return found ? (ssize_t)n : -ENOENT;
}

bool sv_http_list_next(struct sv_str value, size_t *pos, struct sv_str *elem)
{
    size_t i = *pos;
    if (i >= value.len)
        return false;
    size_t start = i;
    while (i < value.len && value.ptr[i] != ',')
        i++;
    *elem = sv_str_trim(sv_str_make(value.ptr + start, i - start));
    *pos = i + 1; /* skip the comma */
    return true;
}

bool sv_http_list_has(struct sv_str value, struct sv_str token)
{
    size_t pos = 0;
    struct sv_str elem;
    while (sv_http_list_next(value, &pos, &elem)) {
        if (elem.len && sv_str_eq_nocase(elem, token))
            return true;
    }
    return false;
}

const char *sv_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
