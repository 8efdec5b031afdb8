/* Unit tests for the io_uring I/O layer over a socketpair: probe, multishot recv into provided
 * buffers, recycling, ENOBUFS when the buffer ring runs dry, send, sendmsg, cancel. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../harness.h"
#include "dataplane/uring.h"

/* Reap until <want> completions arrived (bounded number of waits). */
static unsigned reap_n(struct sv_io *io, struct sv_io_cqe *out, unsigned cap, unsigned want)
{
    unsigned got = 0;
    for (int i = 0; i < 50 && got < want; i++) {
        sv_io_submit(io, true, 20 * 1000000ull);
        got += sv_io_reap(io, out + got, cap - got);
    }
    return got;
}

TEST(uring_probe_ok)
{
    char msg[512] = "";
    int rc = sv_io_probe(msg, sizeof(msg));
    if (rc == -EPERM || rc == -ENOSYS)
        SKIP("io_uring refused on this machine");
    CHECK_EQ_INT(rc, 0);
}

TEST(uring_multishot_recv_recycle_enobufs)
{
    struct sv_io_config cfg = {.sq_entries = 16, .cq_entries = 64, .buf_count = 4, .buf_size = 64};
    struct sv_io *io;
    int rc = sv_io_create(&cfg, &io);
    if (rc == -EPERM || rc == -ENOSYS)
        SKIP("io_uring refused on this machine");
    REQUIRE(rc == 0);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    REQUIRE(sv_io_recv_multishot(io, sv[0], 42) == 0);
    REQUIRE(write(sv[1], "hello", 5) == 5);
    struct sv_io_cqe c[16];
    unsigned n = reap_n(io, c, 16, 1);
    REQUIRE(n == 1);
    CHECK_EQ_INT(c[0].ud, 42);
    CHECK_EQ_INT(c[0].res, 5);
    CHECK(c[0].has_buf && c[0].more);
    CHECK_EQ_MEM(sv_io_buf(io, c[0].bid), 5, "hello");
    CHECK_EQ_INT(sv_io_buf_in_use(io), 1);
    sv_io_buf_recycle(io, c[0].bid);
    CHECK_EQ_INT(sv_io_buf_in_use(io), 0);
    /* Use up all 4 buffers without recycling: the 5th receive ends the multishot with ENOBUFS. */
    bool enobufs = false;
    unsigned held = 0;
    for (int i = 0; i < 6 && !enobufs; i++) {
        REQUIRE(write(sv[1], "x", 1) == 1);
        n = reap_n(io, c, 16, 1);
        for (unsigned k = 0; k < n; k++) {
            if (c[k].res == -ENOBUFS) {
                enobufs = true;
                CHECK(!c[k].more);
            } else if (c[k].has_buf) {
                held++;
            }
        }
    }
    CHECK(enobufs);
    CHECK_EQ_INT(held, 4);
    CHECK_EQ_INT(sv_io_buf_in_use(io), 4);
    for (uint16_t b = 0; b < 4; b++)
        sv_io_buf_recycle(io, b);
    /* Re-armed after recycling: the pending byte(s) arrive. */
    REQUIRE(sv_io_recv_multishot(io, sv[0], 43) == 0);
    n = reap_n(io, c, 16, 1);
    REQUIRE(n >= 1);
    CHECK_EQ_INT(c[0].ud, 43);
    CHECK(c[0].res >= 1 && c[0].has_buf);
    if (c[0].has_buf)
        sv_io_buf_recycle(io, c[0].bid);
    /* Cancel the multishot: a final completion without MORE. */
    REQUIRE(sv_io_cancel_ud(io, 43, 99) == 0);
    n = reap_n(io, c, 16, 2);
    bool got_cancel = false, got_end = false;
    for (unsigned k = 0; k < n; k++) {
        if (c[k].ud == 99)
            got_cancel = true;
        if (c[k].ud == 43 && c[k].res == -ECANCELED && !c[k].more)
            got_end = true;
    }
    CHECK(got_cancel && got_end);
    close(sv[0]);
    close(sv[1]);
    sv_io_destroy(io);
}

TEST(uring_send_and_sendmsg)
{
    struct sv_io_config cfg = {.sq_entries = 16, .cq_entries = 64, .buf_count = 4, .buf_size = 64};
    struct sv_io *io;
    int rc = sv_io_create(&cfg, &io);
    if (rc == -EPERM || rc == -ENOSYS)
        SKIP("io_uring refused on this machine");
    REQUIRE(rc == 0);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    REQUIRE(sv_io_send(io, sv[0], "abc", 3, 7) == 0);
    struct iovec iov[2] = {{(void *)"de", 2}, {(void *)"fgh", 3}};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    REQUIRE(sv_io_sendmsg(io, sv[0], &msg, 8) == 0);
    struct sv_io_cqe c[8];
    unsigned n = reap_n(io, c, 8, 2);
    REQUIRE(n == 2);
    CHECK_EQ_INT(c[0].ud + c[1].ud, 15);
    CHECK_EQ_INT(c[0].res + c[1].res, 8);
    char buf[16] = "";
    ssize_t r = read(sv[1], buf, sizeof(buf));
    CHECK_EQ_INT(r, 8);
    CHECK_EQ_MEM(buf, 8, "abcdefgh");
    close(sv[0]);
    close(sv[1]);
    sv_io_destroy(io);
}
