/*
 * sluice/chan.h — Go channels and select.
 *
 * A channel carries elements of one fixed size, copied by value.  cap 0 is
 * unbuffered (a send waits for a receiver: rendezvous); cap > 0 buffers up
 * to cap elements in FIFO order.  elem_size 0 is allowed (a signal channel).
 *
 * Ownership: sl_chan_make returns a channel with one reference.  Every
 * party that may still use it after the creator lets go takes one with
 * sl_chan_retain; each sl_chan_release drops one; the last one frees it.
 * Releasing the last reference while a goroutine or a plain thread is
 * blocked on the channel is a bug and aborts with a message.
 *
 * Closing: after sl_chan_close, receivers drain the buffer, then every
 * receive returns SL_ECLOSED at once (Go's ok == false).  Sending on, or
 * closing, a closed channel returns SL_ECLOSED where Go panics; with
 * SLUICE_PANIC=1 in the environment (or sl_chan_set_panic(true)) it
 * aborts instead with Go's message.  sl_main reads the variable when it
 * starts and refuses a value other than 0 or 1.
 *
 * A NULL channel blocks forever (until the context, if any, is done) and
 * is never ready in select.
 *
 * All operations work from goroutines and from plain threads (they then
 * block the thread).
 */
#ifndef SLUICE_CHAN_H
#define SLUICE_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_chan sl_chan;

/* A new channel, or NULL when out of memory. */
sl_chan *sl_chan_make(size_t elem_size, size_t cap);
sl_chan *sl_chan_retain(sl_chan *ch);
void     sl_chan_release(sl_chan *ch); /* NULL is fine */

/* Blocking send: 0, or SL_ECLOSED; SL_EINVAL (nothing sent) if elem is
 * NULL and the elements have a size (NULL is fine for elem_size 0). */
int sl_chan_send(sl_chan *ch, const void *elem);
/* Blocking receive into elem (may be NULL to discard): 0, or SL_ECLOSED
 * once the channel is closed and drained. */
int sl_chan_recv(sl_chan *ch, void *elem);

/* Non-blocking forms: as above, or SL_EAGAIN if it would block. */
int sl_chan_trysend(sl_chan *ch, const void *elem);
int sl_chan_tryrecv(sl_chan *ch, void *elem);

/* Interruptible forms: additionally sl_ctx_err(ctx) if ctx is done
 * (checked first), or SL_ETIMEDOUT at deadline (SL_FOREVER: none; 0: a
 * try, SL_EAGAIN if it would block, as the forms above, a NULL channel
 * included).  ctx may be NULL. */
int sl_chan_send_ctx(sl_chan *ch, const void *elem, sl_ctx *ctx,
    int64_t deadline);
int sl_chan_recv_ctx(sl_chan *ch, void *elem, sl_ctx *ctx, int64_t deadline);

/*
 * Batch forms (an extension: Go has none).  One lock round trip moves
 * many elements, which matters when each element is small work, as in a
 * pipeline stage.  Order and semantics are those of the one-element calls
 * made in a row.
 *
 * sl_chan_recv_many waits, as sl_chan_recv_ctx does, for a first element,
 * then takes without waiting whatever more is ready, up to max, into
 * elems[0..*n) (elems NULL discards them, as sl_chan_recv does).  0 with
 * *n >= 1; SL_ECLOSED (*n == 0) once ch is closed and drained; SL_EINVAL
 * if max is 0 or n is NULL; or the errors of sl_chan_recv_ctx.
 * Nothing past elems[*n - 1] is written, except that SL_ECLOSED gives
 * elems[0] the zero value, as sl_chan_recv does.
 *
 * sl_chan_send_many sends elems[0..n) in order, waiting for room as
 * sl_chan_send_ctx does; *sent (may be NULL) tells how many went, so on
 * an error (SL_ECLOSED, or those of sl_chan_send_ctx) the caller still
 * owns elems[*sent..n).  SL_EINVAL (nothing sent) if elems is NULL, n > 0
 * and the elements have a size.
 */
int sl_chan_recv_many(sl_chan *ch, void *elems, size_t max, size_t *n,
    sl_ctx *ctx, int64_t deadline);
int sl_chan_send_many(sl_chan *ch, const void *elems, size_t n, size_t *sent,
    sl_ctx *ctx, int64_t deadline);

/* Closes ch: 0, or SL_ECLOSED if it was closed already (or ch is NULL). */
int sl_chan_close(sl_chan *ch);

size_t sl_chan_len(sl_chan *ch);
size_t sl_chan_cap(sl_chan *ch);
size_t sl_chan_elem_size(sl_chan *ch);
bool   sl_chan_closed(sl_chan *ch);

/* Go-style aborts on send to / close of a closed channel, or not; from
 * then on $SLUICE_PANIC is ignored. */
void sl_chan_set_panic(bool on);

/* ---- select ----------------------------------------------------------- */

enum sl_case_op { SL_RECV = 1, SL_SEND = 2 };

typedef struct sl_case {
	sl_chan *ch;  /* NULL: never ready */
	int      op;  /* SL_RECV or SL_SEND */
	void    *buf; /* SL_SEND: element to send; SL_RECV: where to store it
	                 (NULL discards) */
	bool     ok;  /* out: SL_RECV: true if a value was received, false if
	                 the channel was closed; SL_SEND: false if the channel
	                 was closed (nothing sent) */
} sl_case;

#define SL_CASE_RECV(c, p) ((sl_case){ .ch = (c), .op = SL_RECV, .buf = (p) })
#define SL_CASE_SEND(c, p) ((sl_case){ .ch = (c), .op = SL_SEND, .buf = (p) })

/*
 * Waits until one of the n cases can proceed, performs it, and stores its
 * index in *chosen.  When several are ready, one is chosen uniformly at
 * random.  A closed channel is ready: the case completes with ok = false.
 * Returns 0; SL_EAGAIN if nothing was ready and the deadline is 0 (Go's
 * default case); SL_ETIMEDOUT at the deadline; sl_ctx_err(ctx) when ctx is
 * done; SL_EINVAL for a bad case (an op other than SL_RECV and SL_SEND, or
 * a send with buf NULL on a channel whose elements have a size), before
 * anything happens.  ctx may be NULL; deadline SL_FOREVER
 * waits without limit.  With n == 0 and no ctx/deadline it blocks forever.
 */
int sl_select(sl_case *cases, size_t n, sl_ctx *ctx, int64_t deadline,
    int *chosen);

/* sl_select with a default case: never blocks (SL_EAGAIN if none ready). */
int sl_select_try(sl_case *cases, size_t n, int *chosen);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_CHAN_H */
