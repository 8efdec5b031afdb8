/* io_uring backend of the data plane's I/O interface (uring.h). The only file that includes
 * liburing.h. See uring.h for the contract and IO_URING.md for the reasoning behind the flags. */
#include "dataplane/uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "serval/base/assert.h"
#include "serval/base/log.h"

#define SV_IO_BGID 0

struct sv_io {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *bufs;
    size_t bufs_bytes;
    unsigned buf_count;
    unsigned buf_size;
    unsigned buf_mask;
    unsigned buf_pending;   /* recycled since the last publish */
    unsigned buf_in_use;
    uint64_t overflows;
    bool ring_ok;
};

/* Ring flags: SINGLE_ISSUER + DEFER_TASKRUN (completion work runs only inside our enter call),
 * CQSIZE, CLAMP, SUBMIT_ALL. COOP_TASKRUN is only used on kernels without DEFER_TASKRUN. */
static int ring_init(struct io_uring *ring, unsigned sq, unsigned cq)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = cq;
    int rc = io_uring_queue_init_params(sq, ring, &p);
    if (rc == -EINVAL) { /* kernel < 6.1: no DEFER_TASKRUN */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP |
                  IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(sq, ring, &p);
        if (rc == 0)
            sv_warn("uring", "kernel lacks DEFER_TASKRUN; using COOP_TASKRUN");
    }
    return rc;
}

static int read_disabled_sysctl(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (!f)
        return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static void refused_message(int err, char *msg, size_t n)
{
    int sys = read_disabled_sysctl();
    char sysbuf[32];
    if (sys < 0)
        snprintf(sysbuf, sizeof(sysbuf), "absent (kernel < 6.6)");
    else
        snprintf(sysbuf, sizeof(sysbuf), "%d", sys);
    snprintf(msg, n,
             "io_uring is refused: io_uring_setup failed with %s (%s); kernel.io_uring_disabled=%s. "
             "Fix: if the sysctl is 1 or 2, run `sysctl -w kernel.io_uring_disabled=0` (or add this "
             "user to kernel.io_uring_group when it is 1); in a container, the seccomp profile "
             "blocks io_uring_setup/io_uring_enter/io_uring_register: use the Localhost profile in "
             "deploy/seccomp/serval-io-uring.json (RuntimeDefault plus those 3 syscalls)",
             strerrorname_np(err) ? strerrorname_np(err) : "?", strerror(err), sysbuf);
}

static int setup_bufring(struct sv_io *io, unsigned count, unsigned size)
{
    io->buf_count = count;
    io->buf_size = size;
    io->buf_mask = (unsigned)io_uring_buf_ring_mask(count);
    io->br_bytes = count * sizeof(struct io_uring_buf);
    long page = sysconf(_SC_PAGESIZE);
    io->br_bytes = (io->br_bytes + (size_t)page - 1) & ~((size_t)page - 1);
    /* What liburing 2.4's io_uring_setup_buf_ring does: page-aligned anonymous memory for the
     * descriptor ring, registered with IORING_REGISTER_PBUF_RING. */
    void *br = mmap(NULL, io->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED)
        return -errno;
    io->br = br;
    io->bufs_bytes = (size_t)count * size;
    void *bufs = mmap(NULL, io->bufs_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                      -1, 0);
    if (bufs == MAP_FAILED)
        return -errno;
    io->bufs = bufs;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)(uintptr_t)br;
    reg.ring_entries = count;
    reg.bgid = SV_IO_BGID;
    int rc = io_uring_register_buf_ring(&io->ring, &reg, 0);
    if (rc < 0)
        return rc;
    io_uring_buf_ring_init(io->br);
    for (unsigned i = 0; i < count; i++)
        io_uring_buf_ring_add(io->br, io->bufs + (size_t)i * size, size, (unsigned short)i,
                              (int)io->buf_mask, (int)i);
    io_uring_buf_ring_advance(io->br, (int)count);
    return 0;
}

int sv_io_create(const struct sv_io_config *cfg, struct sv_io **out)
{
    SV_ASSERT(cfg->buf_count > 0 && (cfg->buf_count & (cfg->buf_count - 1)) == 0);
    SV_ASSERT(cfg->buf_count <= 32768);
    struct sv_io *io = calloc(1, sizeof(*io));
    if (!io)
        return -ENOMEM;
    int rc = ring_init(&io->ring, cfg->sq_entries, cfg->cq_entries);
    if (rc < 0) {
        free(io);
        return rc;
    }
    io->ring_ok = true;
    /* Registered ring fd: cheaper io_uring_enter. Failure is harmless. */
    (void)io_uring_register_ring_fd(&io->ring);
    rc = setup_bufring(io, cfg->buf_count, cfg->buf_size);
    if (rc < 0) {
        sv_io_destroy(io);
        return rc;
    }
    *out = io;
    return 0;
}

void sv_io_destroy(struct sv_io *io)
{
    if (!io)
        return;
    if (io->ring_ok)
        io_uring_queue_exit(&io->ring);
    if (io->br)
        munmap(io->br, io->br_bytes);
    if (io->bufs)
        munmap(io->bufs, io->bufs_bytes);
    free(io);
}

int sv_io_probe(char *msg, size_t msg_len)
{
    struct io_uring ring;
    int rc = ring_init(&ring, 8, 16);
    if (rc < 0) {
        refused_message(-rc, msg, msg_len);
        return rc;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    static const struct {
        int op;
        const char *name;
    } need[] = {
        {IORING_OP_ACCEPT, "ACCEPT"}, {IORING_OP_RECV, "RECV"},
        {IORING_OP_SEND, "SEND"},     {IORING_OP_CONNECT, "CONNECT"},
        {IORING_OP_CLOSE, "CLOSE"},   {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
        {IORING_OP_READ, "READ"},
    };
    rc = 0;
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (!probe || !io_uring_opcode_supported(probe, need[i].op)) {
            snprintf(msg, msg_len, "io_uring lacks opcode %s (kernel too old; need >= 6.1)",
                     need[i].name);
            rc = -EOPNOTSUPP;
            break;
        }
    }
    if (probe)
        io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    if (rc < 0)
        return rc;
    /* Full worker set-up (buffer ring registration) as a last check. */
    struct sv_io_config cfg = {.sq_entries = 8, .cq_entries = 16, .buf_count = 8, .buf_size = 64};
    struct sv_io *io;
    rc = sv_io_create(&cfg, &io);
    if (rc < 0) {
        snprintf(msg, msg_len, "io_uring provided buffer ring registration failed: %s (need >= 5.19)",
                 strerror(-rc));
        return rc;
    }
    sv_io_destroy(io);
    return 0;
}

static struct io_uring_sqe *get_sqe(struct sv_io *io)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    if (sv_unlikely(!sqe)) {
        /* SQ full: flush what is queued and try once more. */
        io_uring_submit(&io->ring);
        sqe = io_uring_get_sqe(&io->ring);
    }
    return sqe;
}

int sv_io_accept_multishot(struct sv_io *io, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_recv_multishot(struct sv_io *io, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = SV_IO_BGID;
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_read(struct sv_io *io, int fd, void *buf, unsigned len, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, 0);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_send(struct sv_io *io, int fd, const void *buf, unsigned len, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_send(sqe, fd, buf, len, MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_sendmsg(struct sv_io *io, int fd, const struct msghdr *msg, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_sendmsg(sqe, fd, msg, MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_connect(struct sv_io *io, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_connect(sqe, fd, sa, len);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_close(struct sv_io *io, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_cancel_fd(struct sv_io *io, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int sv_io_cancel_ud(struct sv_io *io, uint64_t target, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static void publish_bufs(struct sv_io *io)
{
    if (io->buf_pending) {
        io_uring_buf_ring_advance(io->br, (int)io->buf_pending);
        io->buf_pending = 0;
    }
}

int sv_io_submit(struct sv_io *io, bool wait, uint64_t timeout_ns)
{
    publish_bufs(io);
    int rc;
    if (wait && io_uring_cq_ready(&io->ring) == 0) {
        struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000ull),
                                       .tv_nsec = (long long)(timeout_ns % 1000000000ull)};
        struct io_uring_cqe *cqe;
        rc = io_uring_submit_and_wait_timeout(&io->ring, &cqe, 1, &ts, NULL);
    } else {
        /* DEFER_TASKRUN: completions are only produced inside an enter with GETEVENTS. */
        rc = io_uring_submit_and_get_events(&io->ring);
    }
    if (rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
        return 0;
    return rc < 0 ? rc : 0;
}

unsigned sv_io_reap(struct sv_io *io, struct sv_io_cqe *out, unsigned max)
{
    if (sv_unlikely(io_uring_cq_has_overflow(&io->ring)))
        io->overflows++;
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&io->ring, head, cqe)
    {
        if (n == max)
            break;
        struct sv_io_cqe *c = &out[n++];
        c->ud = cqe->user_data;
        c->res = cqe->res;
        c->more = (cqe->flags & IORING_CQE_F_MORE) != 0;
        c->has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
        c->bid = c->has_buf ? (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) : 0;
        if (c->has_buf)
            io->buf_in_use++;
    }
    if (n)
        io_uring_cq_advance(&io->ring, n);
    return n;
}

void *sv_io_buf(struct sv_io *io, uint16_t bid)
{
    SV_DASSERT(bid < io->buf_count);
    return io->bufs + (size_t)bid * io->buf_size;
}

unsigned sv_io_buf_size(const struct sv_io *io)
{
    return io->buf_size;
}

unsigned sv_io_buf_count(const struct sv_io *io)
{
    return io->buf_count;
}

void sv_io_buf_recycle(struct sv_io *io, uint16_t bid)
{
    SV_ASSERT(bid < io->buf_count);
    SV_ASSERT(io->buf_in_use > 0);
    io->buf_in_use--;
    io_uring_buf_ring_add(io->br, sv_io_buf(io, bid), io->buf_size, bid, (int)io->buf_mask,
                          (int)io->buf_pending);
    io->buf_pending++;
}

unsigned sv_io_buf_in_use(const struct sv_io *io)
{
    return io->buf_in_use;
}

uint64_t sv_io_overflows(const struct sv_io *io)
{
    return io->overflows;
}
