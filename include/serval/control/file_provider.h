/* Folder provider (--config-dir DIR): every *.yaml, *.yml and *.json file under DIR (recursively,
 * skipping names that start with '.') is decoded into one object store; inotify watches the tree
 * and bursts of changes are coalesced (debounced) into one reload.
 *
 * Use from the control thread:
 *
 *     struct sv_file_provider *fp;
 *     sv_file_provider_open(dir, NULL, &fp);
 *     struct sv_store *st;
 *     if (sv_file_provider_load(fp, &st) == 0) translate_and_publish(st);   // first load
 *     loop: poll(sv_file_provider_fd(fp), POLLIN) ...
 *           if (sv_file_provider_process(fp, &st) == 1) translate_and_publish(st);
 *
 * Files whose identity (inode, size, mtime, ctime) did not change since the last good load are
 * not read again: their decoded objects are reused (shared by reference).
 * A reload that finds any broken file (unreadable, YAML/JSON syntax, a field of the wrong type)
 * produces no store: the caller keeps its last good store, the error ("file: document N: field:
 * problem") is logged and kept for GET /config (sv_file_provider_error).
 * Everything here runs on one thread (the control thread).
 */
#ifndef SERVAL_CONTROL_FILE_PROVIDER_H
#define SERVAL_CONTROL_FILE_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

struct sv_store;
struct sv_file_provider;

struct sv_file_provider_opts {
    uint32_t quiet_ms;       /* reload once no event came for this long (default 50) */
    uint32_t max_delay_ms;   /* ... or at the latest this long after the first event (500) */
    uint32_t max_files;      /* files per load (default 10000) */
    uint32_t max_dirs;       /* directories watched (default 1000) */
    uint32_t max_depth;      /* directory nesting below DIR (default 16) */
    size_t max_file_bytes;   /* per file (default 16 MiB) */
    size_t max_total_bytes;  /* per load (default 256 MiB) */
};

/* Open the provider on <dir> (copied) with <opts> (NULL = defaults; zero fields = defaults).
 * Sets up inotify and the debounce timer but loads nothing: call sv_file_provider_load next.
 * Returns 0 and *out (owned by the caller, sv_file_provider_close), or -errno (-ENOENT,
 * -ENOTDIR, -EMFILE ...). */
int sv_file_provider_open(const char *dir, const struct sv_file_provider_opts *opts,
                          struct sv_file_provider **out);

/* Close the fds and free the provider. NULL is fine. */
void sv_file_provider_close(struct sv_file_provider *p);

/* One fd (an epoll fd over inotify and the debounce timerfd) that becomes readable when
 * sv_file_provider_process has work. Owned by the provider. */
int sv_file_provider_fd(const struct sv_file_provider *p);

/* Load the whole folder now (and watch any new subdirectory). Returns 0 with a new store in
 * *out (owned by the caller), or -EINVAL when some file is broken (error kept, *out NULL), or
 * -ENOMEM / -errno of the folder itself. */
int sv_file_provider_load(struct sv_file_provider *p, struct sv_store **out);

/* Drain pending inotify and timer events without blocking; when the debounce deadline has
 * passed, reload. Returns 1 with a new store in *out (caller owns it), 0 when no new store is
 * ready, or the negative result of a failed reload (*out NULL; the caller keeps its store). */
int sv_file_provider_process(struct sv_file_provider *p, struct sv_store **out);

/* Milliseconds until a pending reload is due (0 = due now), or -1 when none is pending. For
 * callers that poll with a timeout instead of relying on the timerfd. */
int sv_file_provider_timeout_ms(const struct sv_file_provider *p);

/* The error of the last load ("" after a good load). Borrowed, valid until the next load. */
const char *sv_file_provider_error(const struct sv_file_provider *p);

struct sv_file_provider_stats {
    uint64_t loads_ok;
    uint64_t loads_failed;
    uint64_t events;     /* relevant inotify events seen */
    uint32_t files;        /* files in the last good load */
    uint32_t files_reused; /* of which unchanged since the load before: not read again */
    uint32_t objects;      /* objects in the last good load */
};

void sv_file_provider_stats(const struct sv_file_provider *p, struct sv_file_provider_stats *out);

#endif
