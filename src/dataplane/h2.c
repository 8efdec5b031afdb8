/* HTTP/2 frontend over nghttp2 (see h2.h for the design). Worker thread only. */
#include "dataplane/h2.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dataplane/dp_int.h"
#include "dataplane/h2_conv.h"
#include "dataplane/h2_pool.h"
#include "dataplane/h2_upstream.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"

struct h2_sess {
    nghttp2_session *ng;
    struct sv_h2_pool pool;
    struct sv_h2w *hw;
    uint32_t idx;
    uint32_t conn;       /* client connection slot */
    uint32_t nstreams;   /* attached stream connections */
    uint32_t first;      /* list of stream slots, SV_NO_SLOT ends */
    uint32_t next_free;
    bool reserved;       /* taken (reserved at accept, or live) */
    bool live;           /* nghttp2 session exists */
    bool busy;           /* being flushed: freeing waits */
    bool dead;           /* its connection is closing */
    bool dirty;          /* on the dirty list */
    bool goaway;
};

struct h2_strm {
    uint32_t sess;
    uint32_t gen;         /* slab generation of the stream connection */
    int32_t sid;
    uint32_t next, prev;  /* session's stream list */
    bool queued;          /* on the worker queue (kept across reuse of the slot) */
    bool attached;        /* the stream connection exists */
    bool req_ready;       /* request head complete */
    bool hdr_end;         /* the HEADERS frame ended the stream (no body) */
    bool dispatched;
    bool req_end;         /* END_STREAM received */
    bool chunked;         /* body goes upstream chunked */
    bool has_cl;
    bool too_large;       /* request head did not fit */
    bool closed;          /* nghttp2 closed the stream */
    bool head_done;       /* response head converted and submitted */
    bool resp_done;       /* conn.c finished the exchange */
    bool eof_sent;        /* END_STREAM queued (or no body) */
    bool final_sent;      /* body-less response: nothing more may be taken */
    uint32_t stage_len, lines_off;
    uint32_t m_off, m_len, p_off, p_len, a_off, a_len;
    uint32_t body_len, body_sending; /* request body buffered; payload of the send in flight */
    enum sv_http_method method;
    char frame[24];       /* chunk-size line of the send in flight */
    struct sv_http_parser rp; /* response bytes written for the stream (HTTP/1.1) */
    uint32_t out_len, out_off;
};

struct sv_h2w {
    struct sv_worker *w;
    struct h2_sess *sess;
    uint32_t n_sess;
    uint32_t free_head;
    struct h2_strm *strm; /* indexed by connection slot */
    uint32_t n_strm;
    char *mem;            /* session regions (nghttp2 memory) */
    size_t mem_bytes;
    char *body_mem;       /* per stream slot: request body buffer (SV_H2_BODY_BUF) */
    size_t body_bytes;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    uint32_t *q;          /* stream slots to work on (ring) */
    uint32_t q_head, q_n;
    uint32_t *dirty;      /* sessions to flush */
    uint32_t n_dirty;
    nghttp2_nv nv[SV_MAX_HEADERS + 1];
    struct sv_http_header hdrs[SV_MAX_HEADERS];
    char *scratch;
    size_t scratch_cap;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static inline struct sv_conn *conn_of(struct sv_worker *w, uint32_t slot)
{
    return sv_slab_get(&w->conns, slot);
}

static void sess_dirty(struct sv_h2w *hw, struct h2_sess *s)
{
    if (s->dirty)
        return;
    SV_ASSERT(hw->n_dirty < hw->n_sess);
    s->dirty = true;
    hw->dirty[hw->n_dirty++] = s->idx;
}

static void strm_queue(struct sv_h2w *hw, struct h2_strm *t)
{
    if (t->queued)
        return;
    SV_ASSERT(hw->q_n < hw->n_strm);
    t->queued = true;
    hw->q[(hw->q_head + hw->q_n++) % hw->n_strm] = (uint32_t)(t - hw->strm);
    sess_dirty(hw, &hw->sess[t->sess]);
}

static inline char *body_of(struct sv_h2w *hw, const struct h2_strm *t)
{
    return hw->body_mem + (size_t)(t - hw->strm) * SV_H2_BODY_BUF;
}

static struct h2_strm *strm_of(struct sv_worker *w, const struct sv_conn *sc)
{
    struct h2_strm *t = &w->h2->strm[sc->slot];
    return t->attached ? t : NULL;
}

/* ---- nghttp2 memory ----------------------------------------------------------------------- */

/* ---- nghttp2 callbacks (record and queue only; nothing in conn.c runs from here but the
 * initialisation of a new stream connection) ------------------------------------------------- */

static ssize_t cb_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct h2_sess *s = ud;
    struct sv_conn *c = conn_of(s->hw->w, s->conn);
    if (s->dead || c->state == SV_C_CLOSING)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    ssize_t t = sv_conn_h2_write(s->hw->w, c, data, len);
    if (t < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (t == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    return t;
}

static void list_add(struct sv_h2w *hw, struct h2_sess *s, uint32_t slot)
{
    struct h2_strm *t = &hw->strm[slot];
    t->prev = SV_NO_SLOT;
    t->next = s->first;
    if (s->first != SV_NO_SLOT)
        hw->strm[s->first].prev = slot;
    s->first = slot;
    s->nstreams++;
}

static void list_del(struct sv_h2w *hw, struct h2_sess *s, uint32_t slot)
{
    struct h2_strm *t = &hw->strm[slot];
    if (t->prev != SV_NO_SLOT)
        hw->strm[t->prev].next = t->next;
    else
        s->first = t->next;
    if (t->next != SV_NO_SLOT)
        hw->strm[t->next].prev = t->prev;
    t->next = t->prev = SV_NO_SLOT;
    SV_ASSERT(s->nstreams > 0);
    s->nstreams--;
}

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_sess *s = ud;
    struct sv_h2w *hw = s->hw;
    struct sv_worker *w = hw->w;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    int32_t sid = frame->hd.stream_id;
    struct sv_conn *sc = NULL;
    if (!s->dead && !s->goaway)
        sc = sv_conn_h2_stream_open(w, conn_of(w, s->conn));
    if (!sc) {
        sv_stat_add(w, SV_DP_STAT_H2_STREAMS_REFUSED, 1);
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "HTTP/2 stream refused: %s",
                  s->goaway ? "draining" : "connection limit reached");
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct h2_strm *t = &hw->strm[sc->slot];
    bool queued = t->queued;
    memset(t, 0, offsetof(struct h2_strm, rp));
    t->queued = queued;
    t->sess = s->idx;
    t->gen = sv_slab_gen(&w->conns, sc->slot);
    t->sid = sid;
    t->attached = true;
    t->out_len = t->out_off = 0;
    struct sv_http_limits lim = {w->dp->cfg.max_header_size, SV_MAX_HEADERS};
    sv_http_parser_init(&t->rp, SV_HTTP_RESPONSE, &lim);
    list_add(hw, s, sc->slot);
    nghttp2_session_set_stream_user_data(ng, sid, t);
    sv_stat_add(w, SV_DP_STAT_H2_STREAMS, 1);
    return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ng;
    struct h2_sess *s = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        sv_stat_add(s->hw->w, SV_DP_STAT_H2_CONN_ERRORS, 1);
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "HTTP/2 connection ended: GOAWAY %s",
                  nghttp2_http2_strerror(frame->goaway.error_code));
    }
    return 0;
}

static bool stage_put(struct h2_strm *t, char *st, size_t cap, const void *p, size_t n)
{
    if (n > cap - t->stage_len) {
        t->too_large = true;
        return false;
    }
    memcpy(st + t->stage_len, p, n);
    t->stage_len += (uint32_t)n;
    return true;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    size_t l = strlen(lit);
    return len == l && memcmp(name, lit, l) == 0;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    struct h2_sess *s = ud;
    struct sv_worker *w = s->hw->w;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers are dropped */
    struct h2_strm *t = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!t || t->too_large)
        return 0;
    struct sv_conn *sc = conn_of(w, (uint32_t)(t - s->hw->strm));
    char *st = NULL;
    size_t cap = 0;
    sv_conn_h2_stage(w, sc, &st, &cap);
    if (nlen > 0 && name[0] == ':') {
        uint32_t off = t->stage_len;
        if (name_is(name, nlen, ":method") || name_is(name, nlen, ":path") ||
            name_is(name, nlen, ":authority")) {
            if (!stage_put(t, st, cap, value, vlen))
                return 0;
            if (name[1] == 'm') {
                t->m_off = off;
                t->m_len = (uint32_t)vlen;
            } else if (name[1] == 'p') {
                t->p_off = off;
                t->p_len = (uint32_t)vlen;
            } else {
                t->a_off = off;
                t->a_len = (uint32_t)vlen;
            }
        }
        t->lines_off = t->stage_len;
        return 0;
    }
    if (t->lines_off == 0)
        t->lines_off = t->stage_len;
    if (name_is(name, nlen, "host") && t->a_len)
        return 0; /* :authority wins (RFC 9113 §8.3.1) */
    if (name_is(name, nlen, "content-length"))
        t->has_cl = true;
    (void)(stage_put(t, st, cap, name, nlen) && stage_put(t, st, cap, ": ", 2) &&
           stage_put(t, st, cap, value, vlen) && stage_put(t, st, cap, "\r\n", 2));
    return 0;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_sess *s = ud;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_strm *t = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!t)
        return 0;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        t->req_ready = true;
        t->hdr_end = end;
    }
    if (end)
        t->req_end = true;
    strm_queue(s->hw, t);
    return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    struct h2_sess *s = ud;
    struct sv_worker *w = s->hw->w;
    struct h2_strm *t = nghttp2_session_get_stream_user_data(ng, sid);
    (void)w;
    char *body = t ? body_of(s->hw, t) : NULL;
    size_t cap = SV_H2_BODY_BUF;
    if (!t || t->resp_done || (size_t)t->body_len + len > cap) {
        /* nobody will read it (or more than the window allowed): give the credit back */
        nghttp2_submit_window_update(ng, NGHTTP2_FLAG_NONE, 0, (int32_t)len);
        if (t && !t->closed)
            nghttp2_submit_window_update(ng, NGHTTP2_FLAG_NONE, sid, (int32_t)len);
        return 0;
    }
    memcpy(body + t->body_len, data, len);
    t->body_len += (uint32_t)len;
    strm_queue(s->hw, t);
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t sid, uint32_t err, void *ud)
{
    (void)err;
    struct h2_sess *s = ud;
    struct h2_strm *t = nghttp2_session_get_stream_user_data(ng, sid);
    if (!t)
        return 0;
    t->closed = true;
    strm_queue(s->hw, t);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    struct h2_sess *s = ud;
    struct h2_strm *t = src->ptr;
    if (!t->attached || t->sid != sid || t->sess != s->idx)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    uint32_t avail = t->out_len - t->out_off;
    if (avail == 0 && !t->resp_done)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = avail < length ? avail : length;
    if (n) {
        char *area = NULL;
        size_t cap = 0;
        sv_conn_h2_resp(s->hw->w, conn_of(s->hw->w, (uint32_t)(t - s->hw->strm)), &area, &cap);
        memcpy(buf, area + t->out_off, n);
        t->out_off += (uint32_t)n;
        if (t->out_off == t->out_len)
            t->out_off = t->out_len = 0;
    }
    if (t->out_len == 0 && t->resp_done) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        t->eof_sent = true;
    }
    strm_queue(s->hw, t); /* room again: pump the stream connection */
    return (ssize_t)n;
}

/* ---- worker set-up ------------------------------------------------------------------------ */

int sv_h2_init_worker(struct sv_worker *w)
{
    struct sv_h2w *hw = calloc(1, sizeof(*hw));
    if (!hw)
        return -ENOMEM;
    w->h2 = hw;
    hw->w = w;
    const struct sv_dp_config *cfg = &w->dp->cfg;
    hw->n_sess = SV_MIN(SV_H2_SESSIONS, cfg->max_conns);
    hw->n_strm = cfg->max_conns;
    hw->sess = calloc(hw->n_sess, sizeof(*hw->sess));
    hw->strm = calloc(hw->n_strm, sizeof(*hw->strm));
    hw->q = calloc(hw->n_strm, sizeof(uint32_t));
    hw->dirty = calloc(hw->n_sess, sizeof(uint32_t));
    hw->scratch_cap = (size_t)cfg->max_header_size + 64;
    hw->scratch = malloc(hw->scratch_cap);
    hw->mem_bytes = (size_t)hw->n_sess * SV_H2_SESSION_MEM;
    void *m = mmap(NULL, hw->mem_bytes, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    hw->mem = m == MAP_FAILED ? NULL : m;
    hw->body_bytes = (size_t)hw->n_strm * SV_H2_BODY_BUF;
    m = mmap(NULL, hw->body_bytes, PROT_READ | PROT_WRITE,
             MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    hw->body_mem = m == MAP_FAILED ? NULL : m;
    if (!hw->sess || !hw->strm || !hw->q || !hw->dirty || !hw->scratch || !hw->mem ||
        !hw->body_mem)
        return -ENOMEM;
    hw->free_head = SV_NO_SLOT;
    for (uint32_t i = hw->n_sess; i-- > 0;) {
        hw->sess[i].idx = i;
        hw->sess[i].hw = hw;
        hw->sess[i].first = SV_NO_SLOT;
        hw->sess[i].next_free = hw->free_head;
        hw->free_head = i;
    }
    if (nghttp2_session_callbacks_new(&hw->cbs) != 0 || nghttp2_option_new(&hw->opt) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_send_callback(hw->cbs, cb_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(hw->cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(hw->cbs, cb_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(hw->cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(hw->cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(hw->cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(hw->cbs, cb_frame_send);
    /* flow control follows what the upstream took (sv_h2_body_sent) */
    nghttp2_option_set_no_auto_window_update(hw->opt, 1);
    nghttp2_option_set_no_closed_streams(hw->opt, 1);
    nghttp2_option_set_max_outbound_ack(hw->opt, 1000);   /* PING / SETTINGS ack flood */
    nghttp2_option_set_max_settings(hw->opt, 32);          /* SETTINGS entries per frame */
    nghttp2_option_set_max_continuations(hw->opt, 8);      /* CONTINUATION flood */
    nghttp2_option_set_stream_reset_rate_limit(hw->opt, 1000, 33); /* rapid reset */
    nghttp2_option_set_max_deflate_dynamic_table_size(hw->opt, 4096);
    nghttp2_option_set_max_send_header_block_length(hw->opt, cfg->max_header_size + 4096);
    return sv_h2u_init_worker(w);
}

void sv_h2_fini_worker(struct sv_worker *w)
{
    struct sv_h2w *hw = w->h2;
    sv_h2u_fini_worker(w);
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
    if (hw->body_mem)
        munmap(hw->body_mem, hw->body_bytes);
    free(hw->sess);
    free(hw->strm);
    free(hw->q);
    free(hw->dirty);
    free(hw->scratch);
    free(hw);
    w->h2 = NULL;
}

/* ---- sessions ----------------------------------------------------------------------------- */

static void sess_free(struct sv_h2w *hw, struct h2_sess *s)
{
    if (s->ng)
        nghttp2_session_del(s->ng);
    s->ng = NULL;
    sv_h2_pool_reset(&s->pool);
    s->live = s->dead = s->busy = s->goaway = s->reserved = false;
    s->first = SV_NO_SLOT;
    s->nstreams = 0;
    s->next_free = hw->free_head;
    hw->free_head = s->idx;
}

bool sv_h2_reserve(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_h2w *hw = w->h2;
    if (!hw || hw->free_head == SV_NO_SLOT || w->draining)
        return false;
    struct h2_sess *s = &hw->sess[hw->free_head];
    hw->free_head = s->next_free;
    s->reserved = true;
    c->h2 = true;
    c->h2_sess = s->idx;
    return true;
}

static bool sess_start(struct sv_worker *w, struct sv_conn *c);

bool sv_h2_start(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_h2w *hw = w->h2;
    struct h2_sess *s = &hw->sess[c->h2_sess];
    SV_ASSERT(c->h2 && s->reserved && !s->live);
    if (!sv_str_eq(sv_tls_conn_alpn(&c->tls_c), SV_STR_LIT("h2"))) {
        c->h2 = false;
        sess_free(hw, s);
        return false;
    }
    (void)sess_start(w, c);
    return true;
}

bool sv_h2_start_clear(struct sv_worker *w, struct sv_conn *c)
{
    SV_ASSERT(c->h2 && !c->tls && w->h2->sess[c->h2_sess].reserved);
    return sess_start(w, c);
}

/* Start the session reserved for <c>. Returns false (connection closed) when it cannot. */
static bool sess_start(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_h2w *hw = w->h2;
    struct h2_sess *s = &hw->sess[c->h2_sess];
    sv_h2_pool_init(&s->pool, hw->mem + (size_t)s->idx * SV_H2_SESSION_MEM, SV_H2_SESSION_MEM);
    nghttp2_mem mem;
    sv_h2_pool_mem(&s->pool, &mem);
    s->conn = c->slot;
    s->first = SV_NO_SLOT;
    s->nstreams = 0;
    /* the stream window stays at the default 65535 (a client may use it before it saw our
     * SETTINGS anyway): SV_H2_BODY_BUF holds a full window. MAX_HEADER_LIST_SIZE is advisory:
     * a longer list still arrives, and its rebuilt head gets 431 like over HTTP/1.1. */
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, SV_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, w->dp->cfg.max_header_size},
    };
    if (nghttp2_session_server_new3(&s->ng, hw->cbs, s, hw->opt, &mem) != 0 ||
        nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)(SV_H2_MAX_STREAMS * SV_H2_BODY_BUF)) != 0) {
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "HTTP/2 session could not start");
        s->live = true;
        sv_conn_h2_close(w, c);
        return false;
    }
    s->live = true;
    c->state = SV_C_H2;
    sv_stat_add(w, SV_DP_STAT_H2_CONNS, 1);
    sess_dirty(hw, s);
    return true;
}

ssize_t sv_h2_recv(struct sv_worker *w, struct sv_conn *c, const void *p, size_t n)
{
    struct h2_sess *s = &w->h2->sess[c->h2_sess];
    if (!s->live || s->dead)
        return -1;
    sess_dirty(w->h2, s);
    ssize_t rv = nghttp2_session_mem_recv(s->ng, p, n);
    if (rv < 0) {
        sv_stat_add(w, SV_DP_STAT_H2_CONN_ERRORS, 1);
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "HTTP/2 connection error: %s",
                  nghttp2_strerror((int)rv));
        return -1;
    }
    return rv;
}

void sv_h2_kick(struct sv_worker *w, struct sv_conn *c)
{
    struct h2_sess *s = &w->h2->sess[c->h2_sess];
    if (s->live && !s->dead)
        sess_dirty(w->h2, s);
}

bool sv_h2_idle(struct sv_worker *w, const struct sv_conn *c)
{
    return w->h2->sess[c->h2_sess].nstreams == 0;
}

void sv_h2_conn_closed(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_h2w *hw = w->h2;
    if (!c->h2)
        return;
    struct h2_sess *s = &hw->sess[c->h2_sess];
    c->h2 = false;
    if (!s->live) {
        sess_free(hw, s);
        return;
    }
    s->dead = true;
    for (uint32_t i = 0; i < hw->n_strm && s->first != SV_NO_SLOT; i++)
        sv_conn_h2_close(w, conn_of(w, s->first));
    SV_ASSERT(s->first == SV_NO_SLOT);
    if (!s->busy)
        sess_free(hw, s);
}

void sv_h2_drain(struct sv_worker *w, struct sv_conn *c)
{
    sv_h2_kick(w, c);
}

/* Write the session's frames into the TLS output and send; close the connection when the
 * session is over. */
static void sess_flush(struct sv_h2w *hw, struct h2_sess *s)
{
    struct sv_worker *w = hw->w;
    if (!s->live || s->dead)
        return;
    struct sv_conn *c = conn_of(w, s->conn);
    s->busy = true;
    bool kill = false;
    if (w->draining && !s->goaway) {
        s->goaway = true;
        nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
    }
    int rv = nghttp2_session_send(s->ng);
    if (rv != 0) {
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "HTTP/2 send failed: %s", nghttp2_strerror(rv));
        kill = true;
    }
    if (!kill)
        (void)sv_conn_h2_flush(w, c);
    if (!kill && !s->dead) {
        bool out_empty = sv_conn_h2_out_empty(w, c);
        bool over = !nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng);
        if (s->goaway && s->nstreams == 0 && !nghttp2_session_want_write(s->ng))
            over = true;
        if (over && out_empty)
            kill = true;
        sv_conn_h2_timer(w, c, s->nstreams == 0);
    }
    s->busy = false;
    if (s->dead)
        sess_free(hw, s);
    else if (kill && rv == 0)
        sv_conn_h2_end(w, c);
    else if (kill)
        sv_conn_h2_close(w, c);
}

/* ---- streams ------------------------------------------------------------------------------ */

static void strm_dispatch(struct sv_worker *w, struct h2_strm *t, struct sv_conn *sc)
{
    t->dispatched = true;
    char *st = NULL, *ib = NULL;
    size_t scap = 0, icap = 0;
    sv_conn_h2_stage(w, sc, &st, &scap);
    sv_conn_h2_ibuf(w, sc, &ib, &icap);
    if (t->lines_off == 0)
        t->lines_off = t->stage_len;
    struct sv_h2_req r = {
        .method = sv_str_make(st + t->m_off, t->m_len),
        .path = sv_str_make(st + t->p_off, t->p_len),
        .authority = sv_str_make(st + t->a_off, t->a_len),
        .host = SV_STR_NULL,
        .lines = sv_str_make(st + t->lines_off, t->stage_len - t->lines_off),
        .body = !t->hdr_end,
        .has_cl = t->has_cl,
    };
    ssize_t n = t->too_large ? -ENOSPC : sv_h2_request_head(&r, ib, icap);
    t->chunked = r.body && !t->has_cl;
    t->method = sv_http_method_from_str(r.method);
    sv_http_parser_set_request_method(&t->rp, t->method);
    sv_conn_h2_request(w, sc, n < 0 ? 0 : (uint32_t)n);
}

static void strm_work(struct sv_h2w *hw, uint32_t slot)
{
    struct sv_worker *w = hw->w;
    struct h2_strm *t = &hw->strm[slot];
    if (!t->attached || sv_slab_gen(&w->conns, slot) != t->gen)
        return;
    struct sv_conn *sc = conn_of(w, slot);
    struct h2_sess *s = &hw->sess[t->sess];
    if (!sc->h2s || s->dead)
        return;
    if (t->closed || (t->eof_sent && t->resp_done)) {
        if (!t->closed && !t->req_end)
            nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, t->sid, NGHTTP2_NO_ERROR);
        sv_conn_h2_close(w, sc);
        return;
    }
    if (t->req_ready && !t->dispatched) {
        strm_dispatch(w, t, sc);
        return;
    }
    if (t->dispatched && !t->resp_done)
        sv_conn_h2_pump(w, sc);
}

void sv_h2_run(struct sv_worker *w)
{
    struct sv_h2w *hw = w->h2;
    sv_h2u_run(w);
    if (!hw)
        return;
    for (unsigned it = 0; it < 16 && (hw->q_n || hw->n_dirty); it++) {
        uint32_t n = hw->q_n;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t slot = hw->q[hw->q_head];
            hw->q_head = (hw->q_head + 1) % hw->n_strm;
            hw->q_n--;
            hw->strm[slot].queued = false;
            strm_work(hw, slot);
        }
        uint32_t nd = hw->n_dirty;
        for (uint32_t i = 0; i < nd && hw->n_dirty; i++) {
            uint32_t idx = hw->dirty[0];
            hw->dirty[0] = hw->dirty[--hw->n_dirty];
            hw->sess[idx].dirty = false;
            sess_flush(hw, &hw->sess[idx]);
        }
    }
}

bool sv_h2_pending(const struct sv_worker *w)
{
    return (w->h2 && (w->h2->q_n || w->h2->n_dirty)) || sv_h2u_pending(w);
}

bool sv_h2_stream_can_take(struct sv_worker *w, struct sv_conn *sc)
{
    struct h2_strm *t = strm_of(w, sc);
    if (!t)
        return true; /* sv_h2_stream_out will fail and close it */
    char *area = NULL;
    size_t cap = 0;
    sv_conn_h2_resp(w, sc, &area, &cap);
    size_t need = (size_t)SV_IOV_MAX * w->dp->cfg.buf_size;
    return !t->head_done || cap - (t->out_len - t->out_off) >= need;
}

/* De-chunk/frame body bytes p[len] of the response into the payload area. Returns bytes taken. */
static ssize_t body_in(struct h2_strm *t, char *area, size_t cap, const char *p, size_t len)
{
    if (t->final_sent)
        return (ssize_t)len;
    if (t->out_off && t->out_off == t->out_len)
        t->out_off = t->out_len = 0;
    if (t->out_off) {
        memmove(area, area + t->out_off, t->out_len - t->out_off);
        t->out_len -= t->out_off;
        t->out_off = 0;
    }
    size_t room = cap - t->out_len;
    size_t take = len < room ? len : room;
    size_t done_bytes = 0;
    for (unsigned i = 0; i < 64 && done_bytes < take; i++) {
        struct sv_str spans[16];
        uint32_t ns = 0;
        size_t used = 0;
        bool done = false;
        if (sv_http_parse_body_spans(&t->rp, p + done_bytes, take - done_bytes, &used, &done,
                                     spans, 16, &ns) < 0)
            return -1;
        for (uint32_t k = 0; k < ns; k++) {
            memmove(area + t->out_len, spans[k].ptr, spans[k].len);
            t->out_len += (uint32_t)spans[k].len;
        }
        done_bytes += used;
        if (done) {
            done_bytes = take; /* anything after the body is not ours to forward */
            break;
        }
        if (used == 0 && ns == 0)
            break;
    }
    return (ssize_t)done_bytes;
}

ssize_t sv_h2_stream_out(struct sv_worker *w, struct sv_conn *sc, const void *p, size_t len)
{
    struct sv_h2w *hw = w->h2;
    struct h2_strm *t = strm_of(w, sc);
    if (!t || t->closed)
        return -1;
    struct h2_sess *s = &hw->sess[t->sess];
    if (s->dead)
        return -1;
    char *area = NULL;
    size_t cap = 0;
    sv_conn_h2_resp(w, sc, &area, &cap);
    ssize_t taken = 0;
    if (!t->head_done) {
        size_t room = cap - t->out_len;
        size_t n = len < room ? len : room;
        if (n == 0)
            return -1;
        memcpy(area + t->out_len, p, n);
        t->out_len += (uint32_t)n;
        taken = (ssize_t)n;
        for (unsigned i = 0; i < 4; i++) {
            struct sv_http_head h;
            sv_http_head_init(&h, hw->hdrs, SV_MAX_HEADERS);
            size_t hl = 0;
            int rc = sv_http_parse_head(&t->rp, area, t->out_len, &h, &hl);
            if (rc == SV_HTTP_AGAIN)
                return taken;
            if (rc < 0)
                return -1;
            if (h.flags & SV_HTTP_F_INTERIM) {
                /* 1xx (100 Continue, 103 Early Hints): a HEADERS frame without END_STREAM; the
                 * final response follows */
                ssize_t ni = sv_h2_response_nv(&h, hw->nv, SV_MAX_HEADERS + 1, hw->scratch,
                                               hw->scratch_cap);
                if (ni < 0 || nghttp2_submit_headers(s->ng, NGHTTP2_FLAG_NONE, t->sid, NULL,
                                                     hw->nv, (size_t)ni, NULL) < 0)
                    return -1;
                memmove(area, area + hl, t->out_len - hl);
                t->out_len -= (uint32_t)hl;
                sv_http_parser_reset(&t->rp);
                sv_http_parser_set_request_method(&t->rp, t->method);
                continue;
            }
            enum sv_http_body_kind kind = sv_http_body_begin(&t->rp);
            if (kind == SV_HTTP_BODY_TUNNEL)
                return -1;
            ssize_t nn = sv_h2_response_nv(&h, hw->nv, SV_MAX_HEADERS + 1, hw->scratch,
                                           hw->scratch_cap);
            if (nn < 0)
                return -1;
            nghttp2_data_provider prd = {.source = {.ptr = t}, .read_callback = read_body};
            bool body = kind != SV_HTTP_BODY_NONE;
            if (nghttp2_submit_response(s->ng, t->sid, hw->nv, (size_t)nn, body ? &prd : NULL) != 0)
                return -1;
            t->head_done = true;
            if (!body)
                t->final_sent = t->eof_sent = true;
            uint32_t rest = t->out_len - (uint32_t)hl;
            t->out_len = t->out_off = 0;
            if (rest && body && body_in(t, area, cap, area + hl, rest) < 0)
                return -1;
            break;
        }
        if (!t->head_done)
            return -1;
    } else {
        taken = body_in(t, area, cap, p, len);
        if (taken < 0)
            return -1;
    }
    if (t->out_len > t->out_off)
        nghttp2_session_resume_data(s->ng, t->sid);
    strm_queue(hw, t);
    return taken;
}

void sv_h2_stream_end(struct sv_worker *w, struct sv_conn *sc)
{
    struct h2_strm *t = strm_of(w, sc);
    if (!t)
        return;
    t->resp_done = true;
    struct h2_sess *s = &w->h2->sess[t->sess];
    if (!t->head_done) {
        /* nothing was answered (cannot happen for a finished exchange): reset */
        t->closed = true;
        strm_queue(w->h2, t);
        return;
    }
    if (!s->dead && !t->eof_sent)
        nghttp2_session_resume_data(s->ng, t->sid);
    strm_queue(w->h2, t);
}

void sv_h2_stream_closed(struct sv_worker *w, struct sv_conn *sc)
{
    struct sv_h2w *hw = w->h2;
    struct h2_strm *t = strm_of(w, sc);
    if (!t)
        return;
    struct h2_sess *s = &hw->sess[t->sess];
    if (!s->dead && s->ng) {
        if (!t->closed) {
            if (!t->eof_sent || !t->resp_done)
                nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, t->sid,
                                          NGHTTP2_INTERNAL_ERROR);
            nghttp2_session_set_stream_user_data(s->ng, t->sid, NULL);
        }
        if (t->body_len)
            nghttp2_submit_window_update(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)t->body_len);
        sess_dirty(hw, s);
    }
    t->body_len = 0;
    list_del(hw, s, sc->slot);
    t->attached = false;
}

int64_t sv_h2_body_gather(struct sv_worker *w, struct sv_conn *sc, struct sv_sendst *st,
                          bool *done)
{
    struct h2_strm *t = strm_of(w, sc);
    st->nseg = 0;
    if (!t)
        return 0;
    char *body = body_of(w->h2, t);
    uint32_t avail = t->body_len;
    t->body_sending = avail;
    static const char crlf[] = "\r\n", crlf_last[] = "\r\n0\r\n\r\n", last[] = "0\r\n\r\n";
    unsigned k = 0;
    int64_t total = 0;
    if (t->chunked && avail) {
        int fl = snprintf(t->frame, sizeof(t->frame), "%x\r\n", (unsigned)avail);
        st->iov[k++] = (struct iovec){t->frame, (size_t)fl};
        total += fl;
    }
    if (avail) {
        st->iov[k++] = (struct iovec){body, avail};
        total += avail;
    }
    if (t->chunked && avail && t->req_end) {
        st->iov[k++] = (struct iovec){(void *)crlf_last, sizeof(crlf_last) - 1};
        total += (int64_t)sizeof(crlf_last) - 1;
    } else if (t->chunked && avail) {
        st->iov[k++] = (struct iovec){(void *)crlf, sizeof(crlf) - 1};
        total += 2;
    } else if (t->chunked && t->req_end) {
        st->iov[k++] = (struct iovec){(void *)last, sizeof(last) - 1};
        total += (int64_t)sizeof(last) - 1;
    }
    st->nseg = (uint8_t)k;
    *done = t->req_end;
    return total;
}

void sv_h2_body_sent(struct sv_worker *w, struct sv_conn *sc)
{
    struct h2_strm *t = strm_of(w, sc);
    if (!t)
        return;
    uint32_t n = t->body_sending;
    t->body_sending = 0;
    if (n == 0)
        return;
    char *body = body_of(w->h2, t);
    SV_ASSERT(n <= t->body_len);
    memmove(body, body + n, t->body_len - n);
    t->body_len -= n;
    struct h2_sess *s = &w->h2->sess[t->sess];
    if (!s->dead && s->ng) {
        /* give the window back as soon as the upstream took the bytes (waiting for half a
         * window, nghttp2's consume rule, stalls clients such as curl 7.88 at 32 KiB) */
        nghttp2_submit_window_update(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)n);
        if (!t->closed)
            nghttp2_submit_window_update(s->ng, NGHTTP2_FLAG_NONE, t->sid, (int32_t)n);
        sess_dirty(w->h2, s);
    }
}
