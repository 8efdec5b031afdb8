/* Bump arena: allocations live until the arena is reset or destroyed, never freed one by one.
 * Not thread-safe: one owner at a time. Blocks come from malloc, so an arena is for the control
 * thread and start-up (or a worker-owned arena sized at start and only reset, never grown:
 * create it with <fixed> set). */
#ifndef SERVAL_BASE_ARENA_H
#define SERVAL_BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include "serval/base/str.h"

struct sv_arena_block;

struct sv_arena {
    struct sv_arena_block *head;
    size_t block_size;  /* size of new blocks */
    size_t total;       /* bytes obtained from malloc */
    bool fixed;         /* true: never grows past the first block */
};

/* Initialise with a first block of <block_size> bytes. Returns 0 or -ENOMEM. */
int sv_arena_init(struct sv_arena *a, size_t block_size, bool fixed);

/* Free every block. The arena may be initialised again. */
void sv_arena_destroy(struct sv_arena *a);

/* Forget every allocation but keep the first block for reuse. */
void sv_arena_reset(struct sv_arena *a);

/* <n> bytes aligned to 16. Returns NULL when a fixed arena is full or malloc fails. */
void *sv_arena_alloc(struct sv_arena *a, size_t n);

/* Zeroed allocation. */
void *sv_arena_zalloc(struct sv_arena *a, size_t n);

/* Copy <n> bytes and NUL-terminate; returns the copy or NULL. */
char *sv_arena_strndup(struct sv_arena *a, const char *s, size_t n);

/* Copy a sv_str into the arena (NUL-terminated). Returns {NULL,0} on failure. */
struct sv_str sv_arena_str(struct sv_arena *a, struct sv_str s);

#endif
