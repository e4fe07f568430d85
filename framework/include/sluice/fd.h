/*
 * sluice/fd.h — goroutines waiting on file descriptors (Go's netpoller).
 *
 * A goroutine that reads a socket, a pipe or a terminal parks until the
 * descriptor is ready, and its worker runs other goroutines meanwhile.
 * The workers themselves watch the waited-on descriptors with epoll, as
 * Go's do: an idle worker sleeps in epoll_wait, so readiness wakes the
 * thread that runs the goroutine.  This is for
 * descriptors that can be non-blocking; a regular file is always "ready"
 * (its reads block in the kernel), so put file I/O through sl_blocking().
 *
 * sl_read and sl_write first try the call and wait only when it would
 * block, so the descriptor must be non-blocking (O_NONBLOCK, e.g.
 * pipe2(fds, O_NONBLOCK), SOCK_NONBLOCK); on a blocking one they block
 * the worker like plain read(2) (the stall watchdog names such a
 * goroutine).
 *
 * Each call can be bounded by a context (NULL: none) and an absolute
 * deadline (sl_now() clock; SL_FOREVER: none), and gives up with the
 * context's error or SL_ETIMEDOUT, having transferred nothing, if either
 * ends first (checked before anything is tried, as Go's deadlines are).
 * Several goroutines may wait on one descriptor, for reading and for
 * writing; readiness wakes every waiter of that direction.  Plain threads
 * may wait too (they block) while a scheduler runs.
 *
 * sl_accept and sl_connect do the same for a socket's connections, so a
 * server is a goroutine per connection, as in Go.
 *
 * Where a call says "errno", it sets errno on the thread it returns on:
 * read it right after the call.  A goroutine may resume on another
 * worker after any wait, and errno belongs to the thread.
 *
 * Close a descriptor that goroutines may be waiting on with sl_fd_close,
 * which wakes them with SL_ECLOSED first (Go's "use of closed file");
 * after a plain close(2) they would wait for their deadline.  A goroutine
 * waiting on a descriptor is not counted as blocked forever by the
 * deadlock detector: the other end may be another process.
 */
#ifndef SLUICE_FD_H
#define SLUICE_FD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sluice/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_FD_READ  1 /* readable, end of file, or an error pending */
#define SL_FD_WRITE 2 /* writable, or the reader gone, or an error */

/*
 * Waits until fd is ready for one of events (SL_FD_READ, SL_FD_WRITE or
 * both).  Returns 0 (ready, as poll(2) saw it just before the return: the
 * next call may still say EAGAIN if another waiter took the data first), SL_ETIMEDOUT, the context's error,
 * SL_ECLOSED if sl_fd_close closed fd meanwhile, SL_EBADF if fd is not
 * open, SL_EINVAL for bad events or fd, SL_ESTATE from a plain thread with
 * no scheduler running, SL_ESYSTEM if epoll refused it (errno says why).
 */
int sl_fd_wait(int fd, int events, sl_ctx *ctx, int64_t deadline);

/*
 * Reads up to len bytes into buf, waiting until some are there.  *n gets
 * the count: at least 1, or 0 at end of file (or for len 0).  Returns 0,
 * or the errors of sl_fd_wait, or SL_ESYSTEM with errno from read(2)
 * (ECONNRESET, EIO, ...); *n is 0 then.
 */
int sl_read(int fd, void *buf, size_t len, size_t *n, sl_ctx *ctx,
    int64_t deadline);

/*
 * Writes all len bytes of buf, waiting for room as often as needed.
 * *n (may be NULL) gets how many were written, len unless an error
 * stopped it: the errors of sl_fd_wait, or SL_ESYSTEM with errno from
 * write(2) (EPIPE once the reader is gone: ignore SIGPIPE to get it).
 */
int sl_write(int fd, const void *buf, size_t len, size_t *n, sl_ctx *ctx,
    int64_t deadline);

/*
 * Accepts a connection on the non-blocking listening socket lfd, waiting
 * for one; *fd gets it, non-blocking and close-on-exec, ready for
 * sl_read and sl_write.  Returns 0, the errors of sl_fd_wait, or
 * SL_ESYSTEM with errno from accept4(2) (EMFILE: out of descriptors).
 * A connection reset before it was taken is skipped, as Go does.
 */
int sl_accept(int lfd, int *fd, sl_ctx *ctx, int64_t deadline);

/*
 * Connects the non-blocking socket fd to addr, waiting for the handshake.
 * Returns 0, SL_ECONNREFUSED, the errors of sl_fd_wait (the socket is
 * then half-way: close it), or SL_ESYSTEM with errno from connect(2) or
 * the handshake (ETIMEDOUT, ENETUNREACH, ...).
 */
int sl_connect(int fd, const struct sockaddr *addr, socklen_t len,
    sl_ctx *ctx, int64_t deadline);

/*
 * Wakes every goroutine and thread waiting on fd with SL_ECLOSED, then
 * closes it.  Returns 0, SL_EBADF, or SL_ESYSTEM with errno from
 * close(2) (EIO: the descriptor is closed all the same).
 */
int sl_fd_close(int fd);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_FD_H */
