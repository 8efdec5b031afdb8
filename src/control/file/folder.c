/* Folder controller: provider -> store -> translate -> publish, and the /config snapshot. */
#include "serval/control/folder.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/publish.h"
#include "serval/base/log.h"
#include "serval/base/time.h"
#include "serval/control/store.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"

struct sv_folder {
    char *dir;
    struct sv_translate_opts topts;
    char *controller, *bind, *pool;
    struct sv_file_provider *fp;
    struct sv_publisher pub;       /* domain, generation id and count, /config document */
    struct sv_store *store;        /* the last good load (published) */
    struct sv_store *status_store; /* what <status> points into (== store after a full build) */
    struct sv_status *status;
    uint64_t endpoint_updates;
    struct sv_folder_timings timings;
    bool dirty; /* /config document out of date (rendered on the next quiet call) */
};

#define ROUTING_JSON_MAX (16u << 20)

/* The published generation as the routing module describes it (binds, listeners, actions,
 * backend sets with endpoints), under "routing". Skipped when larger than ROUTING_JSON_MAX. */
static void add_routing(struct sv_folder *f, cJSON *root)
{
    const struct sv_generation *gen = sv_generation_current(f->pub.dom);
    if (!gen)
        return;
    size_t need = sv_generation_write_json(gen, NULL, 0);
    if (need >= ROUTING_JSON_MAX)
        return;
    char *buf = malloc(need + 1);
    if (!buf)
        return;
    sv_generation_write_json(gen, buf, need + 1);
    cJSON *j = cJSON_ParseWithLength(buf, need);
    free(buf);
    if (j)
        cJSON_AddItemToObject(root, "routing", j);
}

static void render(struct sv_folder *f)
{
    cJSON *root = cJSON_CreateObject();
    if (root) {
        struct sv_file_provider_stats st;
        sv_file_provider_stats(f->fp, &st);
        cJSON_AddStringToObject(root, "provider", "folder");
        cJSON_AddStringToObject(root, "dir", f->dir);
        cJSON_AddStringToObject(root, "controllerName", f->controller);
        cJSON_AddStringToObject(root, "error", sv_file_provider_error(f->fp));
        cJSON_AddNumberToObject(root, "generation", (double)f->pub.generation_id);
        cJSON_AddNumberToObject(root, "loadsOk", (double)st.loads_ok);
        cJSON_AddNumberToObject(root, "loadsFailed", (double)st.loads_failed);
        cJSON_AddNumberToObject(root, "files", st.files);
        cJSON_AddNumberToObject(root, "objects", st.objects);
        cJSON_AddNumberToObject(root, "endpointOnlyUpdates", (double)f->endpoint_updates);
        cJSON_AddNumberToObject(root, "incrementalUpdates", (double)f->pub.overlays);
        if (f->status) {
            cJSON *s = sv_status_to_json(f->status);
            if (s)
                cJSON_AddItemToObject(root, "status", s);
        }
        add_routing(f, root);
    }
    sv_publisher_set_doc(&f->pub, root); /* NULL keeps the previous document */
}

enum change { CHANGE_NONE, CHANGE_ENDPOINTS, CHANGE_FULL };

/* Compare two loads by object keys and content hashes. */
static enum change classify(struct sv_store *old, struct sv_store *cur)
{
    if (!old)
        return CHANGE_FULL;
    bool slices = false;
    for (int k = 0; k < SV_KIND__COUNT; k++) {
        size_t n_old, n_new;
        sv_store_list(old, (enum sv_kind)k, &n_old);
        const struct sv_object *const *v = sv_store_list(cur, (enum sv_kind)k, &n_new);
        if (sv_store_list_failed(old) || sv_store_list_failed(cur))
            return CHANGE_FULL;
        bool differ = n_old != n_new;
        for (size_t i = 0; i < n_new && !differ; i++) {
            const struct sv_object *o =
                sv_store_get(old, (enum sv_kind)k, v[i]->meta.ns, v[i]->meta.name);
            differ = !o || o->content_hash != v[i]->content_hash;
        }
        if (!differ)
            continue;
        if (k != SV_KIND_ENDPOINTSLICE)
            return CHANGE_FULL;
        slices = true;
    }
    return slices ? CHANGE_ENDPOINTS : CHANGE_NONE;
}

static void replace_store(struct sv_folder *f, struct sv_store *store)
{
    if (f->store != f->status_store)
        sv_store_free(f->store);
    f->store = store;
}

/* Translate <store> and publish. Takes ownership of <store> on success (rc >= 0): returns 1 when
 * a generation was published, 0 when the load changed nothing. */
static int publish(struct sv_folder *f, struct sv_store *store)
{
    struct sv_generation *gen = NULL;
    struct sv_status *status = NULL;
    char err[256];
    uint64_t t0 = sv_now_ns();
    enum change ch = classify(f->store, store);
    uint64_t t1 = sv_now_ns();
    f->timings.classify_ns = t1 - t0;
    f->timings.translate_ns = 0;
    f->timings.incremental = false;
    const struct sv_generation *base = sv_generation_current(f->pub.dom);
    if (ch == CHANGE_NONE) {
        replace_store(f, store);
        return 0;
    }
    if (ch == CHANGE_ENDPOINTS && base && f->status) {
        size_t changed = 0;
        if (sv_translate_endpoints(store, base, &gen, &changed, err, sizeof(err)) == 0) {
            sv_publisher_publish_endpoints(&f->pub, gen, store);
            f->timings.translate_ns = sv_now_ns() - t1;
            f->endpoint_updates++;
            replace_store(f, store); /* the status keeps pointing into status_store */
            sv_info("folder", "%s: endpoint-only update: generation %llu (%zu backend sets "
                    "changed, route table shared)", f->dir,
                    (unsigned long long)f->pub.generation_id, changed);
            return 1;
        }
        sv_warn("folder", "%s: endpoint-only update failed (%s); rebuilding", f->dir, err);
    }
    if (ch == CHANGE_FULL && f->status) {
        /* HTTPRoute edits only: serve them now from an overlay, translate in full right after
         * (sv_folder_timeout_ms says 0 while compact_pending) */
        struct sv_translate_routes_info info;
        int orc = sv_publisher_translate_routes(&f->pub, store, &f->topts, &info, err,
                                                sizeof(err));
        if (orc == 0) {
            f->timings.translate_ns = sv_now_ns() - t1;
            f->timings.incremental = true;
            replace_store(f, store); /* the status keeps pointing into status_store */
            sv_info("folder", "%s: published generation %llu: %zu HTTPRoutes changed, %zu "
                    "rebuilt on %zu host names (overlay; full translation follows)", f->dir,
                    (unsigned long long)f->pub.generation_id, info.changed, info.routes,
                    info.hosts);
            return 1;
        }
        if (orc != -EAGAIN)
            sv_warn("folder", "%s: incremental translation failed (%s); rebuilding", f->dir, err);
    }
    int rc = sv_publisher_translate(&f->pub, store, &f->topts, &status, err, sizeof(err));
    f->timings.translate_ns = sv_now_ns() - t1;
    if (rc != 0) {
        sv_error("folder", "%s: translation failed, keeping the last good generation: %s", f->dir,
                 err);
        return rc;
    }
    sv_status_free(f->status);
    if (f->status_store != f->store)
        sv_store_free(f->status_store);
    sv_store_free(f->store);
    f->status = status;
    f->store = f->status_store = store;
    sv_info("folder", "%s: published generation %llu", f->dir,
            (unsigned long long)f->pub.generation_id);
    return 1;
}

/* After an overlay: translate the current store in full (status, /config document, one
 * compact route table). Returns 1 when published, or the translation's -errno (the overlay keeps
 * serving; the next change translates in full). */
static int compact(struct sv_folder *f)
{
    struct sv_status *status = NULL;
    char err[256];
    uint64_t t0 = sv_now_ns();
    int rc = sv_publisher_translate(&f->pub, f->store, &f->topts, &status, err, sizeof(err));
    f->timings.compact_ns = sv_now_ns() - t0;
    if (rc != 0) {
        f->pub.compact_pending = false;
        sv_error("folder", "%s: full translation after an incremental one failed: %s", f->dir,
                 err);
        return rc;
    }
    sv_status_free(f->status);
    if (f->status_store != f->store)
        sv_store_free(f->status_store);
    f->status = status;
    f->status_store = f->store;
    sv_info("folder", "%s: published generation %llu (full translation)", f->dir,
            (unsigned long long)f->pub.generation_id);
    return 1;
}

int sv_folder_open(const struct sv_folder_opts *o, struct sv_generation_domain *dom,
                   struct sv_folder **out, char *err, size_t errlen)
{
    *out = NULL;
    struct sv_folder *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    sv_publisher_init(&f->pub, dom);
    f->dir = strdup(o->dir);
    f->controller = strdup(o->translate.controller_name ? o->translate.controller_name
                                                        : SV_DEFAULT_CONTROLLER_NAME);
    f->bind = strdup(o->translate.bind_addr ? o->translate.bind_addr : "0.0.0.0");
    f->pool = o->translate.address_pool ? strdup(o->translate.address_pool) : NULL;
    if (!f->dir || !f->controller || !f->bind || (o->translate.address_pool && !f->pool)) {
        sv_folder_close(f);
        return -ENOMEM;
    }
    f->topts.controller_name = f->controller;
    f->topts.bind_addr = f->bind;
    f->topts.address_pool = f->pool;
    int rc = sv_file_provider_open(f->dir, &o->provider, &f->fp);
    if (rc != 0) {
        snprintf(err, errlen, "--config-dir %s: %s", o->dir, strerror(-rc));
        sv_folder_close(f);
        return rc;
    }
    struct sv_store *store = NULL;
    rc = sv_file_provider_load(f->fp, &store);
    if (rc == -ENOMEM) {
        snprintf(err, errlen, "--config-dir %s: out of memory", o->dir);
        sv_folder_close(f);
        return rc;
    }
    if (rc != 0) {
        store = sv_store_new(); /* broken at start: serve nothing, show the error */
        if (!store) {
            sv_folder_close(f);
            return -ENOMEM;
        }
    }
    rc = publish(f, store);
    if (rc < 0) {
        snprintf(err, errlen, "--config-dir %s: %s", o->dir,
                 rc == -EINVAL ? "--bind is not an IP address" : strerror(-rc));
        sv_store_free(store);
        sv_folder_close(f);
        return rc;
    }
    render(f);
    *out = f;
    return 0;
}

void sv_folder_close(struct sv_folder *f)
{
    if (!f)
        return;
    sv_file_provider_close(f->fp);
    sv_status_free(f->status);
    if (f->status_store != f->store)
        sv_store_free(f->status_store);
    sv_store_free(f->store);
    free(f->dir);
    free(f->controller);
    free(f->bind);
    free(f->pool);
    sv_publisher_fini(&f->pub);
    free(f);
}

int sv_folder_fd(const struct sv_folder *f)
{
    return sv_file_provider_fd(f->fp);
}

int sv_folder_timeout_ms(const struct sv_folder *f)
{
    if (f->pub.compact_pending)
        return 0; /* the full translation after an overlay is due now */
    return sv_file_provider_timeout_ms(f->fp);
}

uint64_t sv_folder_published(const struct sv_folder *f)
{
    return f->pub.published;
}

void sv_folder_last_timings(const struct sv_folder *f, struct sv_folder_timings *out)
{
    *out = f->timings;
}

int sv_folder_process(struct sv_folder *f)
{
    struct sv_store *store = NULL;
    uint64_t t0 = sv_now_ns();
    int rc = sv_file_provider_process(f->fp, &store);
    if (rc != 0)
        f->timings.load_ns = sv_now_ns() - t0;
    if (rc == 0) {
        /* Off the publish path, in the next call without news: the full translation after an
         * overlay, then /config. */
        int published = 0;
        if (f->pub.compact_pending)
            published = compact(f) == 1;
        if (f->dirty) {
            render(f);
            f->dirty = false;
        }
        return published;
    }
    f->dirty = true;
    if (rc < 0)
        return rc; /* the error shows next to the last good status */
    rc = publish(f, store);
    if (rc < 0)
        sv_store_free(store);
    return rc;
}

char *sv_folder_config_json(struct sv_folder *f)
{
    return sv_publisher_doc(&f->pub);
}
