/* Folder provider: recursive load of *.yaml / *.yml / *.json into a new store, inotify watch,
 * debounce with a timerfd, all behind one epoll fd. */
#include "serval/control/file_provider.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "serval/base/time.h"
#include "serval/control/model.h"
#include "serval/control/store.h"
#include "serval/control/yaml.h"

#define ERR_LEN 1024
#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |           \
     IN_DELETE_SELF | IN_MOVE_SELF)
#define MAX_LIST_ITEMS 100000

/* A file decoded by an earlier load: if its identity (device, inode, size, mtime, ctime) is
 * unchanged, its objects are reused without reading it again. Holds one reference per object. */
struct cache_entry {
    char *path; /* NULL = empty slot */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    struct sv_object **objs;
    size_t n;
};

struct file_cache {
    struct cache_entry *slots; /* open addressing, capacity a power of two */
    size_t cap, count;
};

struct sv_file_provider {
    char *dir;
    struct file_cache cache;
    struct sv_file_provider_opts o;
    int epfd, infd, tfd;
    bool pending;
    uint64_t first_ms, deadline_ms;
    uint64_t last_load_ms; /* when the last load finished (0 = never) */
    char error[ERR_LEN];
    struct sv_file_provider_stats stats;
};

/* State of one load. */
struct load {
    struct sv_file_provider *p;
    struct sv_store *store;
    struct file_cache next; /* the cache after this load, if it succeeds */
    struct sv_object **cur; /* objects of the file being decoded (one reference each) */
    size_t n_cur, cap_cur;
    uint32_t files, dirs, objects, reused;
    size_t bytes;
    int rc;
};

/* ---- file cache -------------------------------------------------------------------------- */

static size_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 31));
}

static struct cache_entry *cache_find(const struct file_cache *c, const char *path)
{
    if (!c->cap)
        return NULL;
    size_t mask = c->cap - 1;
    for (size_t i = path_hash(path) & mask, probes = 0; probes < c->cap;
         i = (i + 1) & mask, probes++) {
        if (!c->slots[i].path)
            return NULL;
        if (strcmp(c->slots[i].path, path) == 0)
            return &c->slots[i];
    }
    return NULL;
}

static void entry_clear(struct cache_entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        sv_object_free(e->objs[i]);
    free(e->objs);
    free(e->path);
    memset(e, 0, sizeof(*e));
}

static void cache_free(struct file_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].path)
            entry_clear(&c->slots[i]);
    }
    free(c->slots);
    memset(c, 0, sizeof(*c));
}

/* Insert <e> (taken over) into <c>, growing it. Returns 0 or -ENOMEM (then <e> is cleared). */
static int cache_put(struct file_cache *c, struct cache_entry *e)
{
    if ((c->count + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        struct cache_entry *ns = calloc(ncap, sizeof(*ns));
        if (!ns) {
            entry_clear(e);
            return -ENOMEM;
        }
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->slots[i].path)
                continue;
            size_t j = path_hash(c->slots[i].path) & (ncap - 1);
            while (ns[j].path)
                j = (j + 1) & (ncap - 1);
            ns[j] = c->slots[i];
        }
        free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    size_t j = path_hash(e->path) & (c->cap - 1);
    while (c->slots[j].path)
        j = (j + 1) & (c->cap - 1);
    c->slots[j] = *e;
    c->count++;
    return 0;
}

static bool same_identity(const struct cache_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void set_defaults(struct sv_file_provider_opts *o)
{
    if (!o->quiet_ms)
        o->quiet_ms = 50;
    if (!o->max_delay_ms)
        o->max_delay_ms = 500;
    if (!o->max_files)
        o->max_files = 10000;
    if (!o->max_dirs)
        o->max_dirs = 1000;
    if (!o->max_depth)
        o->max_depth = 16;
    if (!o->max_file_bytes)
        o->max_file_bytes = 16u << 20;
    if (!o->max_total_bytes)
        o->max_total_bytes = 256u << 20;
}

int sv_file_provider_open(const char *dir, const struct sv_file_provider_opts *opts,
                          struct sv_file_provider **out)
{
    struct stat st;
    *out = NULL;
    if (stat(dir, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    struct sv_file_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->epfd = p->infd = p->tfd = -1;
    if (opts)
        p->o = *opts;
    set_defaults(&p->o);
    int rc = -ENOMEM;
    p->dir = strdup(dir);
    if (!p->dir)
        goto fail;
    p->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->infd < 0 || p->tfd < 0 || p->epfd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = p->infd;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->infd, &ev) != 0) {
        rc = -errno;
        goto fail;
    }
    ev.data.fd = p->tfd;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &ev) != 0) {
        rc = -errno;
        goto fail;
    }
    if (inotify_add_watch(p->infd, p->dir, WATCH_MASK) < 0) {
        rc = -errno;
        goto fail;
    }
    *out = p;
    return 0;
fail:
    sv_file_provider_close(p);
    return rc;
}

void sv_file_provider_close(struct sv_file_provider *p)
{
    if (!p)
        return;
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->infd >= 0)
        close(p->infd);
    if (p->tfd >= 0)
        close(p->tfd);
    cache_free(&p->cache);
    free(p->dir);
    free(p);
}

int sv_file_provider_fd(const struct sv_file_provider *p)
{
    return p->epfd;
}

const char *sv_file_provider_error(const struct sv_file_provider *p)
{
    return p->error;
}

void sv_file_provider_stats(const struct sv_file_provider *p, struct sv_file_provider_stats *out)
{
    *out = p->stats;
}

/* ---- loading ----------------------------------------------------------------------------- */

static int load_fail(struct load *l, int rc, const char *fmt, ...) SV_PRINTF(3, 4);

static int load_fail(struct load *l, int rc, const char *fmt, ...)
{
    if (l->rc == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->p->error, sizeof(l->p->error), fmt, ap);
        va_end(ap);
        l->rc = rc;
    }
    return rc;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static bool wanted_file(const char *name)
{
    return has_suffix(name, ".yaml") || has_suffix(name, ".yml") || has_suffix(name, ".json");
}

static int add_object(struct load *l, const cJSON *j, const char *rel, size_t doc, long item)
{
    char src[600], err[512];
    if (item >= 0)
        snprintf(src, sizeof(src), "%s: document %zu, item %ld", rel, doc, item);
    else
        snprintf(src, sizeof(src), "%s: document %zu", rel, doc);
    struct sv_object *obj;
    int rc = sv_model_decode(j, src, &obj, err, sizeof(err));
    if (rc == -ENOMEM)
        return load_fail(l, -ENOMEM, "%s: out of memory", src);
    if (rc < 0)
        return load_fail(l, -EINVAL, "%s: %s", src, err);
    if (rc == SV_DECODE_IGNORED)
        return 0;
    const struct sv_object *prev =
        sv_store_get(l->store, obj->kind, obj->meta.ns, obj->meta.name);
    if (prev)
        sv_warn("file", "%s %s/%s defined twice (%s and %s): the later one wins",
                sv_kind_name(obj->kind), obj->meta.ns, obj->meta.name,
                prev->source ? prev->source : "?", src);
    if (l->n_cur == l->cap_cur) {
        size_t cap = l->cap_cur ? l->cap_cur * 2 : 16;
        struct sv_object **v = realloc(l->cur, cap * sizeof(*v));
        if (!v) {
            sv_object_free(obj);
            return load_fail(l, -ENOMEM, "%s: out of memory", src);
        }
        l->cur = v;
        l->cap_cur = cap;
    }
    l->cur[l->n_cur++] = obj;
    if (sv_store_upsert(l->store, sv_object_ref(obj)) < 0)
        return load_fail(l, -ENOMEM, "%s: out of memory", src);
    l->objects++;
    return 0;
}

/* One document: an object, or a List with items. */
static int add_document(struct load *l, const cJSON *j, const char *rel, size_t doc)
{
    if (cJSON_IsNull(j))
        return 0;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    if (cJSON_IsObject(j) && cJSON_IsString(kind) && has_suffix(kind->valuestring, "List") &&
        cJSON_IsArray(items)) {
        long i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            if (i >= MAX_LIST_ITEMS)
                return load_fail(l, -EINVAL, "%s: document %zu: too many items", rel, doc);
            if (add_object(l, it, rel, doc, i++) < 0)
                return -1;
        }
        return 0;
    }
    return add_object(l, j, rel, doc, -1);
}

static char *read_file(struct load *l, const char *path, const char *rel, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) /* deleted while we walked: the next event reloads */
            return NULL;
        load_fail(l, -EINVAL, "%s: cannot open: %s", rel, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size > l->p->o.max_file_bytes) {
        load_fail(l, -EINVAL, "%s: larger than %zu bytes", rel, l->p->o.max_file_bytes);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        load_fail(l, -ENOMEM, "%s: out of memory", rel);
        close(fd);
        return NULL;
    }
    /* Bounded: the file may grow while we read, we stop at the size we saw. */
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            load_fail(l, -EINVAL, "%s: read: %s", rel, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    l->bytes += len;
    if (l->bytes > l->p->o.max_total_bytes) {
        load_fail(l, -EINVAL, "%s: folder larger than %zu bytes", rel, l->p->o.max_total_bytes);
        free(buf);
        return NULL;
    }
    *len_out = len;
    return buf;
}

/* Keep the objects decoded from <path> in the next cache (they hold their own references). */
static void remember(struct load *l, const char *path, const struct stat *st)
{
    struct cache_entry e = {.dev = st->st_dev, .ino = st->st_ino, .size = st->st_size,
                            .mtime = st->st_mtim, .ctime = st->st_ctim};
    e.path = strdup(path);
    e.objs = l->cur;
    e.n = l->n_cur;
    l->cur = NULL;
    l->n_cur = l->cap_cur = 0;
    if (!e.path) {
        entry_clear(&e);
        load_fail(l, -ENOMEM, "out of memory");
        return;
    }
    if (cache_put(&l->next, &e) != 0)
        load_fail(l, -ENOMEM, "out of memory");
}

static void drop_cur(struct load *l)
{
    for (size_t i = 0; i < l->n_cur; i++)
        sv_object_free(l->cur[i]);
    l->n_cur = 0;
}

/* A file whose identity did not change since the last good load: reuse its objects. */
static int reuse_file(struct load *l, const struct cache_entry *e, const char *path)
{
    for (size_t i = 0; i < e->n; i++) {
        struct sv_object *o = e->objs[i];
        if (sv_store_get(l->store, o->kind, o->meta.ns, o->meta.name))
            sv_warn("file", "%s %s/%s defined twice: the later one (%s) wins",
                    sv_kind_name(o->kind), o->meta.ns, o->meta.name, o->source ? o->source : "?");
        if (sv_store_upsert(l->store, sv_object_ref(o)) < 0)
            return load_fail(l, -ENOMEM, "out of memory");
        l->objects++;
    }
    struct cache_entry copy = *e;
    copy.path = strdup(path);
    copy.objs = malloc((e->n ? e->n : 1) * sizeof(*copy.objs));
    if (!copy.path || !copy.objs) {
        free(copy.path);
        free(copy.objs);
        return load_fail(l, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < e->n; i++)
        copy.objs[i] = sv_object_ref(e->objs[i]);
    if (cache_put(&l->next, &copy) != 0)
        return load_fail(l, -ENOMEM, "out of memory");
    l->reused++;
    return 0;
}

static int load_file(struct load *l, const char *path, const char *rel, const struct stat *st)
{
    size_t len = 0;
    if (++l->files > l->p->o.max_files)
        return load_fail(l, -EINVAL, "%s: more than %u files", rel, l->p->o.max_files);
    const struct cache_entry *e = cache_find(&l->p->cache, path);
    if (e && same_identity(e, st))
        return reuse_file(l, e, path);
    drop_cur(l);
    char *buf = read_file(l, path, rel, &len);
    if (!buf)
        return l->rc;
    cJSON *docs = NULL;
    char err[512];
    if (has_suffix(rel, ".json")) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
        if (!j) {
            size_t off = end ? (size_t)(end - buf) : 0, line = 1;
            for (size_t i = 0; i < off && i < len; i++)
                line += buf[i] == '\n';
            free(buf);
            return load_fail(l, -EINVAL, "%s: document 0, line %zu: JSON syntax error", rel,
                             line);
        }
        docs = cJSON_CreateArray();
        if (!docs) {
            cJSON_Delete(j);
            free(buf);
            return load_fail(l, -ENOMEM, "%s: out of memory", rel);
        }
        cJSON_AddItemToArray(docs, j);
    } else {
        int rc = sv_yaml_parse(buf, len, &docs, err, sizeof(err));
        if (rc < 0) {
            free(buf);
            return load_fail(l, rc, "%s: %s", rel, err);
        }
    }
    free(buf);
    size_t i = 0;
    const cJSON *doc;
    cJSON_ArrayForEach(doc, docs)
    {
        if (add_document(l, doc, rel, i++) < 0)
            break;
    }
    cJSON_Delete(docs);
    if (l->rc == 0)
        remember(l, path, st);
    drop_cur(l);
    return l->rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(struct load *l, const char *path, const char *rel, uint32_t depth)
{
    if (depth > l->p->o.max_depth)
        return load_fail(l, -EINVAL, "%s: nested deeper than %u", rel, l->p->o.max_depth);
    if (++l->dirs > l->p->o.max_dirs)
        return load_fail(l, -EINVAL, "%s: more than %u directories", rel, l->p->o.max_dirs);
    /* Watch before reading, so a file created after this point raises an event. */
    if (inotify_add_watch(l->p->infd, path, WATCH_MASK) < 0 && errno != ENOENT)
        sv_warn("file", "cannot watch %s: %s", path, strerror(errno));
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT && depth > 0)
            return 0;
        return load_fail(l, -errno, "%s: cannot open directory: %s", rel[0] ? rel : path,
                         strerror(errno));
    }
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n >= (size_t)l->p->o.max_files + l->p->o.max_dirs) {
            load_fail(l, -EINVAL, "%s: too many entries", rel);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn) {
                load_fail(l, -ENOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            load_fail(l, -ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && l->rc == 0; i++) {
        char full[4096], sub[4096];
        struct stat st;
        if ((size_t)snprintf(full, sizeof(full), "%s/%s", path, names[i]) >= sizeof(full) ||
            (size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >=
                sizeof(sub)) {
            load_fail(l, -EINVAL, "%s/%s: path too long", rel, names[i]);
            break;
        }
        if (stat(full, &st) != 0)
            continue; /* vanished or a dangling link */
        if (S_ISDIR(st.st_mode))
            load_dir(l, full, sub, depth + 1);
        else if (S_ISREG(st.st_mode) && wanted_file(names[i]))
            load_file(l, full, sub, &st);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return l->rc;
}

int sv_file_provider_load(struct sv_file_provider *p, struct sv_store **out)
{
    *out = NULL;
    struct load l = {.p = p};
    p->error[0] = '\0';
    l.store = sv_store_new();
    if (!l.store)
        return -ENOMEM;
    load_dir(&l, p->dir, "", 0);
    drop_cur(&l);
    free(l.cur);
    if (l.rc != 0) {
        p->last_load_ms = sv_now_ms();
        cache_free(&l.next);
        sv_store_free(l.store);
        p->stats.loads_failed++;
        sv_error("file", "%s: reload failed, keeping the last good configuration: %s", p->dir,
                 p->error);
        return l.rc;
    }
    cache_free(&p->cache);
    p->cache = l.next;
    p->last_load_ms = sv_now_ms();
    p->stats.loads_ok++;
    p->stats.files = l.files;
    p->stats.files_reused = l.reused;
    p->stats.objects = l.objects;
    sv_info("file", "%s: loaded %u objects from %u files (%u unchanged)", p->dir, l.objects,
            l.files, l.reused);
    *out = l.store;
    return 0;
}

/* ---- events and debounce ------------------------------------------------------------------ */

static void arm_timer(struct sv_file_provider *p)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(p->deadline_ms / 1000);
    its.it_value.tv_nsec = (long)(p->deadline_ms % 1000) * 1000000L;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        sv_warn("file", "timerfd_settime: %s", strerror(errno));
}

static bool relevant(const struct inotify_event *ev)
{
    if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_ISDIR))
        return true;
    if (ev->mask & IN_IGNORED)
        return false;
    if (!ev->len)
        return false;
    /* "..data" style names: Kubernetes ConfigMap volumes swap a symlink. */
    if (ev->name[0] == '.' && ev->name[1] == '.')
        return true;
    if (ev->name[0] == '.')
        return false;
    return wanted_file(ev->name);
}

/* Events after which a file is complete (a writer closed it, a rename or delete happened). */
#define COMPLETE_MASK                                                                              \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |   \
     IN_Q_OVERFLOW)

/* Debounce: a change after a quiet spell (no load for max_delay_ms) whose last event completes a
 * file is loaded at once (leading edge: a single save is live without waiting); otherwise, and
 * for the rest of a burst, the load waits for quiet_ms without events, at most max_delay_ms
 * after the first one. */
static void drain_inotify(struct sv_file_provider *p)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false, complete = false;
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = read(p->infd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *q = buf; q < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)q;
            if (relevant(ev)) {
                any = true;
                complete = (ev->mask & COMPLETE_MASK) != 0 ||
                           (ev->mask & (IN_CREATE | IN_ISDIR)) == (IN_CREATE | IN_ISDIR);
                p->stats.events++;
            }
            q += sizeof(*ev) + ev->len;
        }
    }
    if (!any)
        return;
    uint64_t now = sv_now_ms();
    if (!p->pending) {
        p->pending = true;
        p->first_ms = now;
        if (complete && now >= p->last_load_ms + p->o.max_delay_ms) {
            p->deadline_ms = now; /* leading edge */
            arm_timer(p);
            return;
        }
    }
    p->deadline_ms = SV_MIN(now + p->o.quiet_ms, p->first_ms + p->o.max_delay_ms);
    arm_timer(p);
}

int sv_file_provider_timeout_ms(const struct sv_file_provider *p)
{
    if (!p->pending)
        return -1;
    uint64_t now = sv_now_ms();
    return p->deadline_ms > now ? (int)(p->deadline_ms - now) : 0;
}

int sv_file_provider_process(struct sv_file_provider *p, struct sv_store **out)
{
    uint64_t expirations;
    *out = NULL;
    drain_inotify(p);
    while (read(p->tfd, &expirations, sizeof(expirations)) > 0) {
    }
    if (!p->pending || sv_now_ms() < p->deadline_ms)
        return 0;
    p->pending = false;
    struct itimerspec off = {0};
    timerfd_settime(p->tfd, 0, &off, NULL);
    int rc = sv_file_provider_load(p, out);
    return rc == 0 ? 1 : rc;
}
