/* The data plane's completion-style I/O interface. uring.c implements it with io_uring and is the
 * only file that includes liburing.h; an epoll backend could implement the same functions.
 *
 * One struct sv_io per worker, created and used only by that worker thread (SINGLE_ISSUER).
 * Submission functions queue one operation tagged with a 64-bit user_data (see ud.h) and return
 * 0, or -EBUSY when no submission slot is free even after flushing (the caller treats that like
 * any other failure of the operation). Completions are reaped in batches with sv_io_reap().
 *
 * File descriptors are normal descriptors, not direct (fixed) ones, and no fixed-file table is
 * registered: the proxy needs getpeername() (X-Forwarded-For, per connection) and setsockopt()
 * (TCP_NODELAY) on its sockets, which liburing 2.3 cannot do on direct descriptors (no
 * io_uring_prep_cmd_sock before 2.5), and multishot accept cannot report the peer address. What
 * direct descriptors would save is the fget/fput per operation (IO_URING.md 1.6); it was not
 * measured here. With the bench's 64-connection keep-alive load the proxy already spends
 * ~1.05x the CPU per request of the shared uring_relay floor. */
#ifndef SERVAL_DATAPLANE_URING_H
#define SERVAL_DATAPLANE_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sv_io;

struct sv_io_config {
    unsigned sq_entries;   /* submission queue size (power of two is best) */
    unsigned cq_entries;   /* completion queue size (>= 2 * sq_entries) */
    unsigned buf_count;    /* provided buffers in the worker's buffer ring (power of two) */
    unsigned buf_size;     /* bytes per provided buffer */
};

/* One completion, copied out of the CQ ring. */
struct sv_io_cqe {
    uint64_t ud;
    int32_t res;
    uint16_t bid;   /* provided buffer id when has_buf */
    bool has_buf;   /* res bytes landed in buffer bid */
    bool more;      /* multishot: more completions follow for this operation */
};

/* Probe io_uring in the calling thread: create a ring with the flags the workers use, check the
 * opcodes they need and register a buffer ring. Returns 0, or -errno with a human message in
 * <msg> (naming the errno, kernel.io_uring_disabled and the fix). Any thread; call at start. */
int sv_io_probe(char *msg, size_t msg_len);

/* Create the worker's ring and buffer ring. Must run in the worker thread that will use it.
 * Returns 0 and sets *out (owned by the caller; free with sv_io_destroy), or -errno. Allocates. */
int sv_io_create(const struct sv_io_config *cfg, struct sv_io **out);

/* Tear down the ring and buffers. Worker thread that created it. */
void sv_io_destroy(struct sv_io *io);

/* Operations. Worker thread only. */
int sv_io_accept_multishot(struct sv_io *io, int fd, uint64_t ud);
int sv_io_recv_multishot(struct sv_io *io, int fd, uint64_t ud);
int sv_io_read(struct sv_io *io, int fd, void *buf, unsigned len, uint64_t ud);
/* Send all of <len> bytes (MSG_WAITALL|MSG_NOSIGNAL); res < len only on error/peer close. */
int sv_io_send(struct sv_io *io, int fd, const void *buf, unsigned len, uint64_t ud);
/* Send every byte described by <msg> (MSG_WAITALL|MSG_NOSIGNAL). <msg> and its iovecs must stay
 * valid until the completion. */
int sv_io_sendmsg(struct sv_io *io, int fd, const struct msghdr *msg, uint64_t ud);
int sv_io_connect(struct sv_io *io, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud);
int sv_io_close(struct sv_io *io, int fd, uint64_t ud);
/* Cancel every operation on <fd>. */
int sv_io_cancel_fd(struct sv_io *io, int fd, uint64_t ud);
/* Cancel the operation tagged <target>. */
int sv_io_cancel_ud(struct sv_io *io, uint64_t target, uint64_t ud);

/* Submit queued operations; if <wait> is true and no completion is ready, block until one arrives
 * or <timeout_ns> passes. Returns 0 or -errno (-ETIME/-EINTR are not errors). */
int sv_io_submit(struct sv_io *io, bool wait, uint64_t timeout_ns);

/* Copy up to <max> completions into <out> and release them from the CQ ring with one advance.
 * Returns how many were copied. */
unsigned sv_io_reap(struct sv_io *io, struct sv_io_cqe *out, unsigned max);

/* Address and size of provided buffer <bid>. */
void *sv_io_buf(struct sv_io *io, uint16_t bid);
unsigned sv_io_buf_size(const struct sv_io *io);
unsigned sv_io_buf_count(const struct sv_io *io);

/* Give buffer <bid> back to the kernel (published with the next sv_io_submit). */
void sv_io_buf_recycle(struct sv_io *io, uint16_t bid);

/* Buffers currently lent out (received into and not yet recycled). */
unsigned sv_io_buf_in_use(const struct sv_io *io);

/* CQ overflow events seen so far (kernel kept the CQEs; a sign the CQ is too small). */
uint64_t sv_io_overflows(const struct sv_io *io);

#endif
