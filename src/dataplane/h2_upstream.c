/* HTTP/2 cleartext to upstreams over nghttp2's client session (see h2_upstream.h). Worker
 * thread only. */
#include "dataplane/h2_upstream.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dataplane/dp_int.h"
#include "dataplane/h2_conv.h"
#include "dataplane/h2_pool.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"

struct h2u {
    nghttp2_session *ng;
    struct sv_h2_pool pool;
    struct sv_h2uw *hw;
    uint32_t idx;
    uint32_t up, up_gen;  /* upstream slot and its slab generation */
    uint32_t next_free;
    bool used;
    bool queued;          /* on the worker's run list */
    bool fake;            /* a logical send completion is due */
    uint32_t fake_len;
    bool kick;            /* pump the owner from sv_h2u_run */
    bool blocked;         /* conn.c found no room: kick once there is */
    bool sending;         /* a frame send is in flight */
    bool dead;            /* connection error: nothing more */
    bool broken;          /* the current stream cannot complete */
    uint32_t out_len, out_sending;
    /* request of the current stream */
    struct sv_http_parser rq;
    bool head_done, req_end;
    uint32_t h_len;
    enum sv_http_method method;
    int32_t sid;          /* current stream, -1 none */
    bool stream_open;
    uint32_t body_off, body_len;
    /* response of the current stream */
    bool final_head;      /* the final (non-1xx) head was converted */
    bool in_head;         /* collecting a head's fields */
    bool chunked, has_cl, resp_done;
    bool frame_chunk;     /* a chunk-size line was written for the DATA frame being received */
    uint16_t status;
    uint32_t conv_off, conv_len;
    char *out, *body, *conv, *hbuf;
};

struct sv_h2uw {
    struct sv_worker *w;
    struct h2u *sess;
    uint32_t n_sess;
    uint32_t free_head;
    uint32_t *q;          /* sessions with work for sv_h2u_run */
    uint32_t q_n;
    char *mem;            /* per session: nghttp2 region | out | body | conv | hbuf */
    size_t mem_bytes, stride;
    size_t out_cap, body_cap, conv_cap, hbuf_cap;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    struct sv_http_header hdrs[SV_MAX_HEADERS];
    nghttp2_nv nv[SV_MAX_HEADERS + 4];
    char *scratch;
    size_t scratch_cap;
};

static inline struct h2u *sess_of(struct sv_worker *w, const struct sv_upconn *u)
{
    return &w->h2u->sess[u->h2_sess];
}

static struct sv_upconn *up_of_sess(struct h2u *s)
{
    struct sv_worker *w = s->hw->w;
    if (s->up >= sv_slab_cap(&w->ups) || sv_slab_gen(&w->ups, s->up) != s->up_gen)
        return NULL;
    struct sv_upconn *u = sv_slab_get(&w->ups, s->up);
    return u->state && u->h2 && u->h2_sess == s->idx ? u : NULL;
}

static void sess_queue(struct h2u *s)
{
    struct sv_h2uw *hw = s->hw;
    if (s->queued)
        return;
    SV_ASSERT(hw->q_n < hw->n_sess);
    s->queued = true;
    hw->q[hw->q_n++] = s->idx;
}

/* ---- nghttp2 memory ----------------------------------------------------------------------- */

/* ---- response conversion ------------------------------------------------------------------ */

static bool conv_put(struct h2u *s, const void *p, size_t n)
{
    size_t cap = s->hw->conv_cap;
    if (s->conv_len + n > cap && s->conv_off) {
        memmove(s->conv, s->conv + s->conv_off, s->conv_len - s->conv_off);
        s->conv_len -= s->conv_off;
        s->conv_off = 0;
    }
    if (s->conv_len + n > cap) {
        s->broken = true;
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "h2c upstream: response too large to convert");
        return false;
    }
    memcpy(s->conv + s->conv_len, p, n);
    s->conv_len += (uint32_t)n;
    return true;
}

static bool conv_puts(struct h2u *s, const char *str)
{
    return conv_put(s, str, strlen(str));
}

static ssize_t cb_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct h2u *s = ud;
    size_t room = s->hw->out_cap - s->out_len;
    if (room == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    size_t k = len < room ? len : room;
    memcpy(s->out + s->out_len, data, k);
    s->out_len += (uint32_t)k;
    return (ssize_t)k;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct h2u *s = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != s->sid || s->final_head)
        return 0; /* trailers (and anything not ours) are dropped */
    struct sv_str nm = sv_str_make((const char *)name, nlen);
    if (sv_str_eq(nm, SV_STR_LIT(":status"))) {
        unsigned st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (unsigned)(value[i] - '0');
        if (vlen != 3 || st < 100 || st > 999)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        s->status = (uint16_t)st;
        s->in_head = true;
        char line[96];
        int n = snprintf(line, sizeof(line), "HTTP/1.1 %u %s\r\n", st, sv_http_reason((int)st));
        return conv_put(s, line, (size_t)n) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (!s->in_head || (nlen && name[0] == ':'))
        return 0;
    if (sv_str_eq(nm, SV_STR_LIT("content-length")))
        s->has_cl = true;
    if (sv_str_eq(nm, SV_STR_LIT("connection")) || sv_str_eq(nm, SV_STR_LIT("keep-alive")) ||
        sv_str_eq(nm, SV_STR_LIT("transfer-encoding")))
        return 0;
    bool ok = conv_put(s, name, nlen) && conv_puts(s, ": ") && conv_put(s, value, vlen) &&
              conv_puts(s, "\r\n");
    return ok ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int cb_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    (void)ng;
    struct h2u *s = ud;
    s->frame_chunk = false;
    if (hd->type != NGHTTP2_DATA || hd->stream_id != s->sid || !s->chunked || hd->length == 0 ||
        (hd->flags & NGHTTP2_FLAG_PADDED))
        return 0;
    char line[24];
    int n = snprintf(line, sizeof(line), "%zx\r\n", hd->length);
    s->frame_chunk = true;
    return conv_put(s, line, (size_t)n) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)ng;
    (void)flags;
    struct h2u *s = ud;
    if (sid != s->sid || !s->final_head || len == 0)
        return 0;
    bool ok = true;
    if (s->chunked && !s->frame_chunk) { /* padded frame: a chunk per piece */
        char line[24];
        int n = snprintf(line, sizeof(line), "%zx\r\n", len);
        ok = conv_put(s, line, (size_t)n) && conv_put(s, data, len) && conv_puts(s, "\r\n");
    } else {
        ok = conv_put(s, data, len);
    }
    return ok ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* The response of the current stream is over (END_STREAM). */
static bool resp_end(struct h2u *s)
{
    if (s->resp_done)
        return true;
    s->resp_done = true;
    return !s->chunked || conv_puts(s, "0\r\n\r\n");
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ng;
    struct h2u *s = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        s->broken = s->broken || (s->stream_open && f->goaway.last_stream_id < s->sid);
        return 0;
    }
    if (f->hd.stream_id != s->sid || s->sid < 0)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    bool ok = true;
    if (f->hd.type == NGHTTP2_HEADERS && s->in_head) {
        s->in_head = false;
        if (s->status < 200) {
            ok = conv_puts(s, "\r\n"); /* 1xx: the final head follows */
        } else {
            s->final_head = true;
            bool no_body = s->status == 204 || s->status == 304 || s->method == SV_HTTP_HEAD;
            if (end && !s->has_cl && !no_body)
                ok = conv_puts(s, "Content-Length: 0\r\n");
            else if (!end && !s->has_cl && !no_body) {
                s->chunked = true;
                ok = conv_puts(s, "Transfer-Encoding: chunked\r\n");
            }
            ok = ok && conv_puts(s, "\r\n");
        }
    } else if (f->hd.type == NGHTTP2_DATA && s->frame_chunk) {
        ok = conv_puts(s, "\r\n");
        s->frame_chunk = false;
    }
    if (ok && end && s->final_head)
        ok = resp_end(s);
    if (end && !s->final_head)
        s->broken = true; /* END_STREAM without a final response */
    if (ok)
        sess_queue(s);
    return ok ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_close(nghttp2_session *ng, int32_t sid, uint32_t err, void *ud)
{
    (void)ng;
    (void)err;
    struct h2u *s = ud;
    if (sid != s->sid)
        return 0;
    s->stream_open = false;
    if (!s->resp_done)
        s->broken = true;
    sess_queue(s);
    return 0;
}

/* ---- request body --------------------------------------------------------------------------- */

static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)src;
    struct h2u *s = ud;
    if (sid != s->sid)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    uint32_t avail = s->body_len - s->body_off;
    if (avail == 0 && !s->req_end)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = avail < length ? avail : length;
    memcpy(buf, s->body + s->body_off, n);
    s->body_off += (uint32_t)n;
    if (s->body_off == s->body_len)
        s->body_off = s->body_len = 0;
    if (s->body_len == 0 && s->req_end)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->blocked) {
        s->kick = true;
        sess_queue(s);
    }
    return (ssize_t)n;
}

static size_t body_free(const struct h2u *s)
{
    return s->hw->body_cap - (s->body_len - s->body_off);
}

static bool body_put(struct h2u *s, const char *p, size_t n)
{
    if (n > body_free(s))
        return false;
    if (s->body_len + n > s->hw->body_cap) {
        memmove(s->body, s->body + s->body_off, s->body_len - s->body_off);
        s->body_len -= s->body_off;
        s->body_off = 0;
    }
    memcpy(s->body + s->body_len, p, n);
    s->body_len += (uint32_t)n;
    return true;
}

/* Body bytes (HTTP/1.1 framing) of the current request: de-chunked into the body buffer. */
static int feed_body(struct h2u *s, const char *p, size_t n)
{
    for (unsigned i = 0; i < 4096 && n > 0 && !s->req_end; i++) {
        struct sv_str spans[16];
        uint32_t ns = 0;
        size_t used = 0;
        bool done = false;
        if (sv_http_parse_body_spans(&s->rq, p, n, &used, &done, spans, 16, &ns) < 0)
            return -EPROTO;
        for (uint32_t k = 0; k < ns; k++)
            if (s->stream_open && !body_put(s, spans[k].ptr, spans[k].len))
                return -EPROTO; /* cannot happen: sv_h2u_can_take checked the room */
        p += used;
        n -= used;
        if (done)
            s->req_end = true;
        if (used == 0 && ns == 0)
            break;
    }
    if (s->stream_open && s->sid > 0)
        (void)nghttp2_session_resume_data(s->ng, s->sid);
    return 0;
}

/* The request head is complete: submit HEADERS for a new stream. */
static int submit(struct h2u *s, struct sv_http_head *h)
{
    struct sv_h2uw *hw = s->hw;
    ssize_t k = sv_h2_request_nv(h, hw->nv, SV_MAX_HEADERS + 4, hw->scratch, hw->scratch_cap);
    if (k < 0)
        return -EPROTO;
    enum sv_http_body_kind kind = sv_http_body_begin(&s->rq);
    s->method = h->method;
    s->req_end = kind == SV_HTTP_BODY_NONE || kind == SV_HTTP_BODY_TUNNEL;
    s->body_off = s->body_len = 0;
    s->final_head = s->in_head = s->chunked = s->has_cl = s->resp_done = false;
    s->frame_chunk = s->broken = false;
    s->status = 0;
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = read_body};
    int32_t sid = nghttp2_submit_request(s->ng, NULL, hw->nv, (size_t)k,
                                         s->req_end ? NULL : &prd, s);
    if (sid < 0) {
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "h2c upstream: request not submitted: %s",
                  nghttp2_strerror(sid));
        return -EPROTO;
    }
    s->sid = sid;
    s->stream_open = true;
    return 0;
}

/* ---- worker set-up -------------------------------------------------------------------------- */

int sv_h2u_init_worker(struct sv_worker *w)
{
    struct sv_h2uw *hw = calloc(1, sizeof(*hw));
    if (!hw)
        return -ENOMEM;
    w->h2u = hw;
    hw->w = w;
    const struct sv_dp_config *cfg = &w->dp->cfg;
    size_t head = (size_t)cfg->max_header_size + 4096;
    size_t send = (size_t)SV_IOV_MAX * cfg->buf_size + 64;
    hw->n_sess = SV_MIN(SV_H2U_SESSIONS, sv_slab_cap(&w->ups));
    hw->out_cap = 64u * 1024u + 16u * 1024u;
    hw->body_cap = 2 * SV_MAX(head, send);
    hw->conv_cap = head + 2 * (size_t)cfg->buf_size;
    hw->hbuf_cap = head;
    hw->stride = SV_H2U_SESSION_MEM + hw->out_cap + hw->body_cap + hw->conv_cap + hw->hbuf_cap;
    hw->stride = (hw->stride + 4095) & ~(size_t)4095;
    hw->mem_bytes = hw->stride * hw->n_sess;
    hw->sess = calloc(hw->n_sess, sizeof(*hw->sess));
    hw->q = calloc(hw->n_sess, sizeof(uint32_t));
    hw->scratch_cap = head;
    hw->scratch = malloc(hw->scratch_cap);
    void *m = mmap(NULL, hw->mem_bytes, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    hw->mem = m == MAP_FAILED ? NULL : m;
    if (!hw->sess || !hw->q || !hw->scratch || !hw->mem)
        return -ENOMEM;
    hw->free_head = SV_NO_SLOT;
    for (uint32_t i = hw->n_sess; i-- > 0;) {
        struct h2u *s = &hw->sess[i];
        char *base = hw->mem + (size_t)i * hw->stride + SV_H2U_SESSION_MEM;
        s->idx = i;
        s->hw = hw;
        s->out = base;
        s->body = s->out + hw->out_cap;
        s->conv = s->body + hw->body_cap;
        s->hbuf = s->conv + hw->conv_cap;
        s->next_free = hw->free_head;
        hw->free_head = i;
    }
    if (nghttp2_session_callbacks_new(&hw->cbs) != 0 || nghttp2_option_new(&hw->opt) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_send_callback(hw->cbs, cb_send);
    nghttp2_session_callbacks_set_on_header_callback(hw->cbs, cb_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(hw->cbs, cb_begin_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(hw->cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(hw->cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(hw->cbs, cb_stream_close);
    nghttp2_option_set_no_closed_streams(hw->opt, 1);
    nghttp2_option_set_max_outbound_ack(hw->opt, 1000);
    nghttp2_option_set_max_settings(hw->opt, 32);
    nghttp2_option_set_max_continuations(hw->opt, 8);
    nghttp2_option_set_max_deflate_dynamic_table_size(hw->opt, 4096);
    nghttp2_option_set_max_send_header_block_length(hw->opt, head);
    return 0;
}

void sv_h2u_fini_worker(struct sv_worker *w)
{
    struct sv_h2uw *hw = w->h2u;
    if (!hw)
        return;
    for (uint32_t i = 0; hw->sess && i < hw->n_sess; i++)
        if (hw->sess[i].ng)
            nghttp2_session_del(hw->sess[i].ng);
    if (hw->cbs)
        nghttp2_session_callbacks_del(hw->cbs);
    if (hw->opt)
        nghttp2_option_del(hw->opt);
    if (hw->mem)
        munmap(hw->mem, hw->mem_bytes);
    free(hw->sess);
    free(hw->q);
    free(hw->scratch);
    free(hw);
    w->h2u = NULL;
}

/* ---- sessions ------------------------------------------------------------------------------- */

int sv_h2u_open(struct sv_worker *w, struct sv_upconn *u)
{
    struct sv_h2uw *hw = w->h2u;
    if (!hw || hw->free_head == SV_NO_SLOT)
        return -ENOSPC;
    struct h2u *s = &hw->sess[hw->free_head];
    hw->free_head = s->next_free;
    char *region = hw->mem + (size_t)s->idx * hw->stride;
    sv_h2_pool_init(&s->pool, region, SV_H2U_SESSION_MEM);
    nghttp2_mem mem;
    sv_h2_pool_mem(&s->pool, &mem);
    s->used = true;
    s->up = u->slot;
    s->up_gen = sv_slab_gen(&w->ups, u->slot);
    s->sid = -1;
    s->out_len = s->out_sending = s->conv_off = s->conv_len = s->h_len = 0;
    s->body_off = s->body_len = 0;
    s->sending = s->dead = s->broken = s->stream_open = s->fake = s->kick = s->blocked = false;
    s->head_done = s->req_end = false;
    struct sv_http_limits lim = {w->dp->cfg.max_header_size, SV_MAX_HEADERS};
    sv_http_parser_init(&s->rq, SV_HTTP_REQUEST, &lim);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, w->dp->cfg.max_header_size},
    };
    if (nghttp2_session_client_new3(&s->ng, hw->cbs, s, hw->opt, &mem) != 0 ||
        nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0) {
        u->h2 = true;
        u->h2_sess = s->idx;
        sv_h2u_release(w, u);
        return -ENOSPC;
    }
    u->h2 = true;
    u->h2_sess = s->idx;
    return 0;
}

void sv_h2u_release(struct sv_worker *w, struct sv_upconn *u)
{
    if (!u->h2)
        return;
    struct sv_h2uw *hw = w->h2u;
    struct h2u *s = sess_of(w, u);
    u->h2 = false;
    if (s->ng)
        nghttp2_session_del(s->ng);
    s->ng = NULL;
    sv_h2_pool_reset(&s->pool);
    s->used = false;
    s->fake = s->kick = false; /* a queued entry finds it unused */
    s->next_free = hw->free_head;
    hw->free_head = s->idx;
}

bool sv_h2u_reusable(struct sv_worker *w, const struct sv_upconn *u)
{
    const struct h2u *s = sess_of(w, u);
    return s->ng && !s->dead && !s->broken && !s->stream_open && s->conv_len == s->conv_off &&
           nghttp2_session_check_request_allowed(s->ng);
}

bool sv_h2u_can_take(struct sv_worker *w, struct sv_upconn *u)
{
    struct h2u *s = sess_of(w, u);
    bool ok = !s->fake && (s->head_done || s->h_len == 0) &&
              body_free(s) >= s->hw->body_cap / 2;
    s->blocked = !ok;
    return ok;
}

int sv_h2u_send(struct sv_worker *w, struct sv_upconn *u, const struct iovec *iov, unsigned n,
                uint32_t len)
{
    struct sv_h2uw *hw = w->h2u;
    struct h2u *s = sess_of(w, u);
    if (s->dead || !s->ng)
        return -EPROTO;
    if (!s->head_done && s->h_len == 0 && !s->stream_open) /* a new request */
        sv_http_parser_reset(&s->rq);
    for (unsigned i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        if (!s->head_done) {
            size_t k = SV_MIN(left, hw->hbuf_cap - s->h_len);
            memcpy(s->hbuf + s->h_len, p, k);
            s->h_len += (uint32_t)k;
            p += k;
            left -= k;
            struct sv_http_head h;
            sv_http_head_init(&h, hw->hdrs, SV_MAX_HEADERS);
            size_t hl = 0;
            int rc = sv_http_parse_head(&s->rq, s->hbuf, s->h_len, &h, &hl);
            if (rc == SV_HTTP_AGAIN) {
                if (left)
                    return -EPROTO; /* a head larger than the area */
                continue;
            }
            if (rc < 0 || submit(s, &h) < 0)
                return -EPROTO;
            s->head_done = true;
            if (feed_body(s, s->hbuf + hl, s->h_len - hl) < 0)
                return -EPROTO;
        }
        if (left && feed_body(s, p, left) < 0)
            return -EPROTO;
    }
    if (s->head_done && s->req_end) { /* the next send starts a new request */
        s->head_done = false;
        s->h_len = 0;
    }
    s->fake = true;
    s->fake_len = len;
    sess_queue(s);
    sv_h2u_flush(w, u);
    return 0;
}

bool sv_h2u_can_recv(struct sv_worker *w, const struct sv_upconn *u)
{
    const struct h2u *s = sess_of(w, u);
    return !s->dead && s->conv_len - s->conv_off <= w->dp->cfg.buf_size;
}

int sv_h2u_recv(struct sv_worker *w, struct sv_upconn *u, const void *p, size_t n)
{
    struct h2u *s = sess_of(w, u);
    if (s->dead || !s->ng)
        return -1;
    ssize_t r = nghttp2_session_mem_recv(s->ng, p, n);
    if (r < 0 || (size_t)r != n) {
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "h2c upstream: connection error: %s",
                  r < 0 ? nghttp2_strerror((int)r) : "short read");
        s->dead = true;
        return -1;
    }
    sv_h2u_flush(w, u);
    return 0;
}

size_t sv_h2u_out(struct sv_worker *w, const struct sv_upconn *u, const char **p)
{
    const struct h2u *s = sess_of(w, u);
    *p = s->conv + s->conv_off;
    return s->conv_len - s->conv_off;
}

void sv_h2u_out_consume(struct sv_worker *w, struct sv_upconn *u, size_t n)
{
    struct h2u *s = sess_of(w, u);
    SV_ASSERT(n <= s->conv_len - s->conv_off);
    s->conv_off += (uint32_t)n;
    if (s->conv_off == s->conv_len)
        s->conv_off = s->conv_len = 0;
}

bool sv_h2u_stream_over(struct sv_worker *w, const struct sv_upconn *u)
{
    const struct h2u *s = sess_of(w, u);
    return s->dead || s->resp_done || !s->stream_open;
}

bool sv_h2u_broken(struct sv_worker *w, const struct sv_upconn *u)
{
    const struct h2u *s = sess_of(w, u);
    return s->dead || (s->broken && s->conv_len == s->conv_off);
}

void sv_h2u_flush(struct sv_worker *w, struct sv_upconn *u)
{
    struct h2u *s = sess_of(w, u);
    if (!s->ng || s->dead)
        return;
    int rv = nghttp2_session_send(s->ng);
    if (rv != 0) {
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "h2c upstream: send failed: %s",
                  nghttp2_strerror(rv));
        s->dead = true;
        return;
    }
    if (s->sending || s->out_len == 0 ||
        (u->state != SV_UP_ACTIVE && u->state != SV_UP_IDLE))
        return;
    if (sv_conn_up_frames(w, u, s->out, s->out_len) < 0) {
        s->dead = true;
        return;
    }
    s->sending = true;
    s->out_sending = s->out_len;
}

bool sv_h2u_sent(struct sv_worker *w, struct sv_upconn *u, int res)
{
    struct h2u *s = sess_of(w, u);
    SV_ASSERT(s->sending);
    s->sending = false;
    if (res < 0 || (uint32_t)res < s->out_sending) {
        s->dead = true;
        return false;
    }
    memmove(s->out, s->out + s->out_sending, s->out_len - s->out_sending);
    s->out_len -= s->out_sending;
    s->out_sending = 0;
    sv_h2u_flush(w, u);
    if (s->blocked) {
        s->kick = true;
        sess_queue(s);
    }
    return !s->dead;
}

void sv_h2u_run(struct sv_worker *w)
{
    struct sv_h2uw *hw = w->h2u;
    if (!hw)
        return;
    for (unsigned it = 0; it < 4 && hw->q_n; it++) {
        uint32_t n = hw->q_n;
        for (uint32_t i = 0; i < n && hw->q_n; i++) {
            struct h2u *s = &hw->sess[hw->q[0]];
            hw->q[0] = hw->q[--hw->q_n];
            s->queued = false;
            if (!s->used)
                continue;
            struct sv_upconn *u = up_of_sess(s);
            if (!u)
                continue;
            if (s->fake) {
                s->fake = false;
                sv_conn_up_sent(w, u, (int)s->fake_len);
                if (!s->used || up_of_sess(s) != u)
                    continue; /* freed meanwhile */
            }
            s->kick = false;
            sv_conn_up_kick(w, u);
        }
    }
}

bool sv_h2u_pending(const struct sv_worker *w)
{
    return w->h2u && w->h2u->q_n;
}
