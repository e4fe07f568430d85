/*
 * link.c — links: channel semantics between processes.  See sluice/link.h
 * for the contract and docs/link-protocol.md for the protocol.
 *
 * Goroutines of an output link:
 *   pump      takes messages from the stage's channel, numbers them, puts
 *             them in the unacked window of the peer with most room, and
 *             writes them as batches (as many as are ready: the batch is
 *             flushed as soon as the channel runs dry);
 *   dialer    one per downstream url: connects (with backoff), exchanges
 *             hellos, resends what the receiver does not have, then reads
 *             acks, credit, close replies and cancels until the connection
 *             drops, and starts over;
 *   ticker    heartbeats and dead-peer detection.
 * Goroutines of an input link:
 *   acceptor  accepts connections and starts a reader for each;
 *   reader    one per connection: hello, then batches into the stage's
 *             channel, dropping what it already has;
 *   acker     one per upstream session: sends cumulative acks as the
 *             stage finishes messages, and the close reply;
 *   ticker    as above.
 * One more goroutine per link waits for the stage context to be done and
 * tells every peer (Cancel frame).
 *
 * Locks: l->mu guards peers and the session list; s->mu guards a session.
 * Order: l->mu before s->mu; neither is held across network writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "chan/chan.h"
#include "core/lock.h"
#include "link/conn.h"
#include "link/payload.h"
#include "link/seen.h"
#include "sched/wait.h"
#include "sluice/error.h"
#include "sluice/link.h"

#define LK_BACKOFF_MIN  (10 * SL_MILLISECOND)
#define LK_BACKOFF_MAX  (1 * SL_SECOND)
#define LK_LINGER       (250 * SL_MILLISECOND)
#define LK_UNREACHED_MAX (10 * 60 * SL_SECOND) /* longest quiet spell */

typedef struct lk_session lk_session;

/* One downstream replica of an output link. */
typedef struct lk_peer {
	sl_link           *link;
	char              *url;
	nng_stream_dialer *dialer;
	sli_conn          *conn;      /* live connection, NULL if none */
	sl_mutex           smu;       /* one flush at a time, so batches go
	                                 out in sequence order */
	sl_msg            *ring;      /* unacked, at seq & mask */
	uint32_t           cap;       /* our window: at most cap unacked */
	uint64_t           mask;      /* ring size - 1: a power of two
	                                 >= cap, so no division per message */
	uint64_t           next_seq;  /* seq of the next new message */
	uint64_t           acked;     /* cumulative ack */
	uint64_t           sent;      /* highest seq written on conn */
	uint64_t           bytes;     /* payload bytes unacked */
	uint32_t           win_msgs;  /* receiver's window */
	uint64_t           win_bytes;
	bool               closed;    /* close reply received */
	size_t             peer_max_frame; /* from the receiver's hello */
	uint64_t           assigned;  /* messages given to this peer */
	int64_t            down_since; /* since when it has no connection
	                                  (the link's start if it never
	                                  had one); 0 while up */
	bool               close_sent; /* Close written on this conn */
} lk_peer;

/* One upstream sender of an input link (stage + port). */
struct lk_session {
	lk_session  *next;       /* in l->sessions (under l->mu) */
	sl_link     *link;       /* NULL once the link is gone */
	char        *stage;
	char        *port;
	uint64_t     incarnation;
	atomic_int   refs;       /* list + outstanding deliveries + acker */
	sl_mutex     dmu;        /* held by the reader delivering a batch
	                            (lk_on_batch): a reader of a resumed
	                            connection waits for the old one's */
	sl_mutex     mu;         /* guards the fields below */
	sli_conn    *conn;       /* live connection, NULL if none */
	uint64_t     received;   /* highest seq delivered to the channel */
	uint64_t     done;       /* contiguous seq finished with */
	uint64_t     ack_sent;   /* highest seq acked to the sender */
	uint8_t     *donebits;   /* finished marks, at seq & dmask */
	uint64_t     dmask;      /* their count - 1 (a power of two >= cap) */
	uint32_t     cap;
	bool         closing;    /* Close received */
	uint64_t     final_seq;
	bool         closed;     /* counted in l->nclosed (once) */
	bool         reply_due;  /* a Close came: reply once all finished */
	bool         stale;      /* replaced by a new incarnation */
	sl_chan     *kick;       /* wakes the acker */
};

/* Counters (sl_link_stats). */
enum { ST_MSGS, ST_BYTES, ST_BATCHES, ST_RESENT, ST_DUPSEQ, ST_DUPLIN,
	ST_BAD, ST_REFUSED, ST_CONNECTS, ST_HELLOS, ST_DROPS, ST_REASSIGNED,
	ST_DEDUP_FORGOT, ST_NCOUNTERS };

/* The lineage seqs seen from one source (dedup, see link/seen.h). */
typedef struct lk_linset {
	uint64_t  source;
	sli_seen  seen;
} lk_linset;

struct sl_link {
	bool              output;
	char             *stage, *port, *type, *url;
	sl_link_opts      o;
	sli_frame_limits  lim;
	uint64_t          incarnation;
	sl_ctx           *ctx;   /* the stage's context */
	sl_ctx           *lctx;  /* the link's: child of ctx, canceled by free */
	sl_chan          *ch;    /* the stage's channel of sl_msg */
	sl_chan          *kick;  /* cap 1: the pump has room again */
	sl_chan          *tick;  /* cap 1: the ticker should run now */
	sl_chan          *done;  /* closed when the stream completed */
	atomic_bool       done_closed;
	sl_mutex          mu;
	sl_waitgroup      wg;    /* the link's goroutines */
	sl_afterfunc     *af;    /* cancel watcher */
	sl_waitgroup      cwg;   /* the cancel watcher, until it is done */
	nng_tls_config   *tls;
	/* output */
	lk_peer          *peers;
	size_t            npeers;
	uint64_t          lin_next;
	size_t            pick_next; /* where lk_pick starts (round-robin) */
	bool              eos;   /* the stage closed the channel */
	/* input */
	nng_stream_listener *lst;
	lk_session       *sessions;
	int               nclosed;
	bool              ended;    /* nclosed reached upstreams: no batch
	                               may be delivered any more, and the
	                               channel closes once delivering is 0 */
	int               delivering; /* readers putting a batch into ch */
	lk_linset        *linsets;
	size_t            nlinsets;
	sli_conn        **conns; /* every live connection, for shutdown */
	bool              stopping; /* sl_link_free began: no new conns */
	atomic_int        eplk;     /* orders starting a dial or accept
	                               against closing the endpoints */
	bool              epclosed; /* under eplk: listener, dialers closed */
	size_t            nconns, capconns;
	/* counters */
	_Atomic uint64_t  st[ST_NCOUNTERS];
};

#define LK_COUNT(l, i, n) atomic_fetch_add_explicit(&(l)->st[i], (n), \
    memory_order_relaxed)

/* ---- small helpers ------------------------------------------------------ */

static void
lk_log(sl_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
lk_log(sl_link *l, const char *fmt, ...)
{
	char    msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluice: link %s (stage '%s' port '%s'): %s\n",
	    l->output ? "out" : "in", l->stage, l->port, msg);
}

static char *
lk_strdup(const char *s)
{
	return (s != NULL ? strdup(s) : NULL);
}

static void
lk_bytes_str(ProtobufCBinaryData b, char *out, size_t n)
{
	size_t k = b.len < n - 1 ? b.len : n - 1;

	if (k > 0)
		memcpy(out, b.data, k);
	out[k] = '\0';
}

static uint64_t
lk_random64(void)
{
	uint64_t x = 0;
	FILE    *f = fopen("/dev/urandom", "rb");

	if (f != NULL) {
		if (fread(&x, sizeof(x), 1, f) != 1)
			x = 0;
		fclose(f);
	}
	x ^= (uint64_t) sl_now() * 0x9e3779b97f4a7c15ULL;
	return (x != 0 ? x : 1);
}

static void
lk_hello_init(sl_link *l, sli_hello *h, int role)
{
	sluice__link__hello__init(h);
	h->version = SLI_LINK_VERSION;
	h->stage = sli_bytes(l->stage);
	h->port = sli_bytes(l->port);
	h->payload_type = sli_bytes(l->type);
	h->role = role;
	h->incarnation = l->incarnation;
	h->max_frame = (uint32_t) l->lim.max_frame;
}

static void
lk_mark_done(sl_link *l)
{
	if (!atomic_exchange(&l->done_closed, true))
		sl_chan_close(l->done);
}

/* The mask of a ring indexed by seq that must hold cap consecutive
 * seqs: its size is the power of two at or above cap. */
static uint64_t
lk_ring_mask(uint32_t cap)
{
	uint64_t n = 1;

	while (n < cap)
		n <<= 1;
	return (n - 1);
}

/* ---- messages ----------------------------------------------------------- */

int
sl_msg_init(sl_msg *m, const void *data, size_t len)
{
	int rv;

	if ((rv = sl_msg_alloc(m, len)) == 0 && len > 0)
		memcpy(m->data, data, len);
	return (rv);
}

static void lk_session_done(lk_session *s, uint64_t seq);

/* Frees m's data (or drops its reference to the shared block). */
static void
lk_msg_release(sl_msg *m)
{
	sli_payload_release(m);
}

void
sl_msg_derive(sl_msg *out, sl_msg *in)
{
	out->lin_src = in->lin_src;
	out->lin_seq = in->lin_seq;
	out->parent = in->parent;
	out->parent_seq = in->parent_seq;
	in->parent = NULL;
	lk_msg_release(in);
	in->len = 0;
}

void
sl_msg_done(sl_msg *m)
{
	if (m->parent != NULL)
		lk_session_done((lk_session *) m->parent, m->parent_seq);
	m->parent = NULL;
	lk_msg_release(m);
	m->len = 0;
}

static void lk_session_done_seqs(lk_session *s, const uint64_t *seqs,
    size_t n);

void
sl_msg_done_many(sl_msg *m, size_t n)
{
	uint64_t seqs[64];

	/* Runs of messages from one session: one lock round for each (runs
	 * longer than seqs are cut). */
	for (size_t i = 0; i < n; ) {
		lk_session *s = (lk_session *) m[i].parent;
		size_t      k = 0;

		if (s == NULL) {
			i++;
			continue;
		}
		while (i < n && k < sizeof(seqs) / sizeof(seqs[0]) &&
		    m[i].parent == (sli_delivery *) s) {
			seqs[k++] = m[i].parent_seq;
			m[i].parent = NULL;
			i++;
		}
		lk_session_done_seqs(s, seqs, k);
	}
	sli_payload_release_many(m, n);
	for (size_t i = 0; i < n; i++)
		m[i].len = 0;
}

/* ---- sessions (input) --------------------------------------------------- */

/* Drops n references to s; the last one frees it. */
static void
lk_session_unref_n(lk_session *s, int n)
{
	if (atomic_fetch_sub(&s->refs, n) != n)
		return;
	sli_conn_unref(s->conn);
	sl_chan_release(s->kick);
	free(s->donebits);
	free(s->stage);
	free(s->port);
	free(s);
}

static void
lk_session_unref(lk_session *s)
{
	lk_session_unref_n(s, 1);
}

/*
 * Lets go of a message the link took but never delivered (stopping), as
 * a stage lets go of a result it could not send: its data is freed and
 * its reference to its input session dropped, but its input is not
 * marked finished, unlike sl_msg_done: a derived message that never
 * reached downstream must not get its input acknowledged upstream, which
 * then resends it (to this stage's successor).
 */
void
sl_msg_drop(sl_msg *m)
{
	if (m->parent != NULL)
		lk_session_unref((lk_session *) m->parent);
	m->parent = NULL;
	lk_msg_release(m);
	m->len = 0;
}

/* Writes a cumulative ack of seq on c.  0 or the write error. */
static int
lk_send_ack(sli_conn *c, uint64_t seq)
{
	sli_frame f;
	sli_ack   a;

	sluice__link__frame__init(&f);
	sluice__link__ack__init(&a);
	a.seq = seq;
	f.kind_case = SLUICE__LINK__FRAME__KIND_ACK;
	f.ack = &a;
	return (sli_conn_write(c, &f));
}

/* The stage finished with messages seqs[0..n) of session s (each holding
 * a reference to s): one lock for all of them. */
static void
lk_session_done_seqs(lk_session *s, const uint64_t *seqs, size_t n)
{
	bool kick = false, any = false;

	sl_mutex_lock(&s->mu);
	if (!s->stale && s->link != NULL) {
		for (size_t i = 0; i < n; i++) {
			if (seqs[i] > s->done && seqs[i] <= s->received) {
				s->donebits[seqs[i] & s->dmask] = 1;
				any = true;
			}
		}
	}
	if (any) {
		while (s->done < s->received &&
		    s->donebits[(s->done + 1) & s->dmask]) {
			s->donebits[(s->done + 1) & s->dmask] = 0;
			s->done++;
		}
		/* Ack in chunks, or at once when the sender waits on us. */
		uint64_t unacked = s->done - s->ack_sent;
		kick = unacked >= s->cap / 4 || s->done == s->received;
	}
	sl_mutex_unlock(&s->mu);
	if (kick)
		(void) sl_chan_trysend(s->kick, NULL);
	lk_session_unref_n(s, (int) n);
}

/* The stage finished with message seq of session s. */
static void
lk_session_done(lk_session *s, uint64_t seq)
{
	lk_session_done_seqs(s, &seq, 1);
}

/* ---- lineage dedup ------------------------------------------------------ */

/* true if (source, seq) is new; remembers it.  l->mu held. */
static bool
lk_lineage_new(sl_link *l, uint64_t source, uint64_t seq)
{
	lk_linset *ls = NULL;
	int        r;

	for (size_t i = 0; i < l->nlinsets; i++)
		if (l->linsets[i].source == source)
			ls = &l->linsets[i];
	if (ls == NULL) {
		lk_linset *n = realloc(l->linsets,
		    (l->nlinsets + 1) * sizeof(*n));
		if (n == NULL)
			return (true);
		l->linsets = n;
		ls = &l->linsets[l->nlinsets++];
		ls->source = source;
		sli_seen_init(&ls->seen, (size_t) l->o.dedup_horizon);
	}
	if ((r = sli_seen_add(&ls->seen, seq)) == SLI_SEEN_FORGOTTEN)
		LK_COUNT(l, ST_DEDUP_FORGOT, 1);
	return (r != SLI_SEEN_DUP);
}

static int lk_track_conn(sl_link *l, sli_conn *c);
static void lk_forget_conn(sl_link *l, sli_conn *c);

/* References to every connection of l (free the array, unref each). */
static sli_conn **
lk_snapshot_conns(sl_link *l, size_t *np)
{
	sli_conn **cs;

	sl_mutex_lock(&l->mu);
	cs = calloc(l->nconns + 1, sizeof(*cs));
	*np = 0;
	for (size_t i = 0; cs != NULL && i < l->nconns; i++)
		cs[(*np)++] = sli_conn_ref(l->conns[i]);
	sl_mutex_unlock(&l->mu);
	return (cs);
}

/* ---- cancellation ------------------------------------------------------- */

/* Writes a Cancel frame with the stage's cause on c (direction by the
 * link's side).  0 or the write error. */
static int
lk_send_cancel(sl_link *l, sli_conn *c)
{
	const char *why = NULL;
	int         code = sl_ctx_cause(l->ctx, &why);
	char        text[512];
	sli_frame   f;
	sli_cancel  cc;

	if (code == 0)
		code = SL_ECANCELED;
	snprintf(text, sizeof(text), "%s", why ? why : sl_strerror(code));
	sluice__link__frame__init(&f);
	sluice__link__cancel__init(&cc);
	cc.code = (uint32_t) code;
	cc.text = sli_bytes(text);
	cc.direction = l->output ?
	    SLUICE__LINK__DIRECTION__DIRECTION_DOWNSTREAM :
	    SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM;
	f.kind_case = SLUICE__LINK__FRAME__KIND_CANCEL;
	f.cancel = &cc;
	return (sli_conn_write(c, &f));
}

/* Runs (as a goroutine) once the stage context is done: tells peers.
 * A connection made after this ran is told at its handshake instead
 * (lk_reader, lk_dialer), so a peer that reconnects at the wrong moment
 * still learns of the cancel. */
static void
lk_on_cancel(void *arg)
{
	sl_link   *l = arg;
	sli_conn **conns;
	size_t     n = 0;

	conns = lk_snapshot_conns(l, &n);
	for (size_t i = 0; i < n; i++) {
		(void) lk_send_cancel(l, conns[i]);
		sli_conn_unref(conns[i]);
	}
	free(conns);
	sl_waitgroup_done(&l->cwg);
	sl_waitgroup_done(&l->wg);
}

/*
 * After a canceled stage sent its Cancel frames, or a Refuse: keep
 * reading (and dropping) what c brings until the peer closes or
 * LK_LINGER passes.  Closing at once would make the peer's next write
 * fail, and NNG then ends the peer's reads too, before it has read our
 * Cancel.
 */
static void
lk_linger(sli_conn *c)
{
	/* Bytes, not frames: what follows may not even parse. */
	sli_conn_drain(c, sl_now() + LK_LINGER);
}

/* A peer canceled: cancel the stage with a cause naming it. */
static void
lk_peer_canceled(sl_link *l, sli_conn *c, const sli_cancel *cc)
{
	char text[256], msg[600];

	lk_bytes_str(cc->text, text, sizeof(text));
	snprintf(msg, sizeof(msg), "%s stage %s canceled: %s",
	    l->output ? "downstream" : "upstream", c->peer, text);
	lk_log(l, "%s", msg);
	sl_ctx_cancel_cause(l->ctx, SL_ECANCELED, msg);
}

/* ---- output: sending ---------------------------------------------------- */

/* Scratch space of a goroutine that writes batches (pump, dialer,
 * ticker): the frames, and the message views they are made from.  Kept
 * between writes, so that a flush allocates nothing once warm. */
typedef struct lk_wbuf {
	uint8_t  *buf;
	size_t    cap;
	sli_bmsg *v;
	size_t    vcap;
} lk_wbuf;

static void
lk_wbuf_free(lk_wbuf *w)
{
	free(w->buf);
	free(w->v);
}

static size_t   lk_batch_target(const sl_link *l, const lk_peer *p);
static uint64_t lk_batch_bytes(const lk_peer *p);

/* Appends batches for seqs [from, to] of p to w->buf (each framed with
 * its length), in canonical form (batch.h).  l->mu held. */
static int
lk_encode_range(sl_link *l, lk_peer *p, uint64_t from, uint64_t to,
    lk_wbuf *w, size_t *len)
{
	size_t    max = lk_batch_target(l, p), want;
	sli_bmsg *v;
	size_t    lim = l->lim.max_frame;
	uint64_t  maxbytes = lk_batch_bytes(p);

	if (from > to)
		return (0);
	if (p->peer_max_frame != 0 && p->peer_max_frame < lim)
		lim = p->peer_max_frame;
	want = (size_t) (to - from + 1) < max ? (size_t) (to - from + 1) : max;
	if (w->vcap < want) {
		if ((v = realloc(w->v, want * sizeof(*v))) == NULL)
			return (SL_ENOMEM);
		w->v = v;
		w->vcap = want;
	}
	v = w->v;
	while (from <= to) {
		size_t   n = 0, bytes = 64;
		uint64_t payload = 0;

		while (from <= to && n < want) {
			sl_msg  *m = &p->ring[from & p->mask];
			uint64_t src = m->lin_src != 0 && m->lin_seq != 0 ?
			    m->lin_src : 0;
			/* Keep frames well under both ends' limits, and
			 * several batches in the byte window.  A batch has
			 * one lineage source (or none). */
			if (n > 0 && (bytes + m->len + 64 > lim / 2 ||
			    payload + m->len > maxbytes ||
			    src != v[0].lin_src))
				break;
			payload += m->len;
			v[n].seq = from;
			v[n].lin_src = src;
			v[n].lin_seq = src != 0 ? m->lin_seq : 0;
			v[n].payload = m->data;
			v[n].len = m->len;
			bytes += m->len + 32;
			n++;
			from++;
		}
		sli_batch_plan plan;
		size_t         sz = sli_batch_size(v, n, &plan);
		if (w->cap - *len < 4 + sz) {
			size_t ncap = w->cap ? w->cap : 4096;
			while (ncap - *len < 4 + sz)
				ncap *= 2;
			uint8_t *nb = realloc(w->buf, ncap);
			if (nb == NULL)
				return (SL_ENOMEM);
			w->buf = nb;
			w->cap = ncap;
		}
		uint8_t *hdr = w->buf + *len;
		size_t   wr = sli_batch_write(v, n, &plan, hdr + 4);
		hdr[0] = (uint8_t) wr;
		hdr[1] = (uint8_t) (wr >> 8);
		hdr[2] = (uint8_t) (wr >> 16);
		hdr[3] = (uint8_t) (wr >> 24);
		*len += 4 + wr;
		LK_COUNT(l, ST_BATCHES, 1);
	}
	return (0);
}

/* Room in p's window for a message of len bytes?  l->mu held. */
static bool
lk_peer_room(const lk_peer *p, size_t len)
{
	uint64_t inflight = p->next_seq - 1 - p->acked;

	if (p->win_msgs == 0)
		return (false); /* never connected: no window yet */
	if (inflight >= p->win_msgs || inflight >= p->cap)
		return (false);
	return (inflight == 0 || p->bytes + len <= p->win_bytes);
}

/*
 * Messages per batch frame for p: a quarter of its window (capped by
 * max_batch).  A batch as large as the window would make the link
 * stop-and-wait: the receiver finishes the whole batch before it acks any
 * of it, so the sender idles while the receiver works and the other way
 * round.  With four batches in flight the stages overlap.  l->mu held.
 */
static size_t
lk_batch_target(const sl_link *l, const lk_peer *p)
{
	uint64_t w = p->win_msgs < p->cap ? p->win_msgs : p->cap;
	size_t   n = (size_t) (w / 4);

	if (n > l->lim.max_batch)
		n = l->lim.max_batch;
	return (n > 0 ? n : 1);
}

/* The same in payload bytes: a quarter of p's byte window.  A batch
 * always takes its first message, whatever its size.  l->mu held. */
static uint64_t
lk_batch_bytes(const lk_peer *p)
{
	return (p->win_bytes / 4 > 0 ? p->win_bytes / 4 : 1);
}

/* The peer to give the next message to: the one with most free window;
 * ties go round-robin (idle replicas at a low rate share the work).
 * l->mu held. */
static lk_peer *
lk_pick(sl_link *l, size_t len)
{
	lk_peer *best = NULL;
	uint64_t bestfree = 0;
	bool     anyup = false;

	for (size_t i = 0; i < l->npeers; i++)
		if (l->peers[i].conn != NULL)
			anyup = true;
	for (size_t k = 0; k < l->npeers; k++) {
		size_t   i = (l->pick_next + k) % l->npeers;
		lk_peer *p = &l->peers[i];
		if (p->closed || !lk_peer_room(p, len))
			continue;
		/* While some replica is up, a down one gets nothing new:
		 * it may never come back. */
		if (anyup && p->conn == NULL)
			continue;
		uint64_t free_ = p->win_msgs - (p->next_seq - 1 - p->acked);
		/* Prefer connected peers: a disconnected one may be gone. */
		if (p->conn != NULL)
			free_ += (uint64_t) 1 << 40;
		if (best == NULL || free_ > bestfree) {
			best = p;
			bestfree = free_;
		}
	}
	if (best != NULL)
		l->pick_next = (size_t) (best - l->peers + 1) % l->npeers;
	return (best);
}

/* Appends m to p's ring (its next seq).  l->mu held. */
static void
lk_enqueue(lk_peer *p, const sl_msg *m)
{
	uint64_t seq = p->next_seq++;

	p->ring[seq & p->mask] = *m;
	p->bytes += m->len;
	p->assigned++;
}

static void
lk_send_close(sli_conn *c, uint64_t final_seq)
{
	sli_frame f;
	sli_close cl;

	sluice__link__frame__init(&f);
	sluice__link__close__init(&cl);
	cl.final_seq = final_seq;
	f.kind_case = SLUICE__LINK__FRAME__KIND_CLOSE;
	f.close = &cl;
	(void) sli_conn_write(c, &f);
}

/* Has every peer replied to Close (or been given up)?  l->mu held. */
static bool
lk_all_closed(const sl_link *l)
{
	for (size_t i = 0; i < l->npeers; i++)
		if (!l->peers[i].closed)
			return (false);
	return (true);
}

/*
 * Could messages still be given to p?  True while another replica has
 * unacked messages: if it goes away before acking them, lk_reassign hands
 * them out, so the others' Close waits (a replica that replied to Close
 * may be gone).  Up or down does not matter: a replica that is up now
 * may drop before its last ack, as one that finished its share at once
 * could otherwise have closed first.  lk_on_ack wakes the ticker at the
 * end of the stream, whose flush sends the Close that waited.  l->mu
 * held.
 */
static bool
lk_awaiting_reassign(const sl_link *l, const lk_peer *p)
{
	if (l->o.reassign_after < 0 || l->npeers < 2)
		return (false);
	for (size_t i = 0; i < l->npeers; i++) {
		const lk_peer *r = &l->peers[i];
		if (r != p && !r->closed && r->acked < r->next_seq - 1)
			return (true);
	}
	return (false);
}

/*
 * Writes every message of p not yet written on its connection, and the
 * Close if the stream ended.  Callers: the pump after queueing, the dialer
 * after reconnecting.  p->smu keeps concurrent flushes in order.  A write
 * error closes the connection (its dialer then reconnects and resends).
 */
static void
lk_flush(sl_link *l, lk_peer *p, lk_wbuf *w)
{
	sli_conn *c = NULL;
	size_t    len = 0;
	bool      sendclose = false;
	uint64_t  fin = 0;

	sl_mutex_lock(&p->smu);
	sl_mutex_lock(&l->mu);
	if (p->conn != NULL) {
		uint64_t from = p->sent + 1, to = p->next_seq - 1;
		if (from <= to &&
		    lk_encode_range(l, p, from, to, w, &len) == 0)
			p->sent = to;
		if (l->eos && !p->closed && !p->close_sent &&
		    p->sent == p->next_seq - 1 && !lk_awaiting_reassign(l, p)) {
			sendclose = true;
			fin = p->next_seq - 1;
			p->close_sent = true;
		}
		if (len > 0 || sendclose)
			c = sli_conn_ref(p->conn);
	}
	sl_mutex_unlock(&l->mu);
	if (c != NULL) {
		/* A failed write leaves c readable (conn.c): its dialer sees
		 * the end of the stream and reconnects to resend. */
		if ((len == 0 || sli_conn_write_raw(c, w->buf, len) == 0) &&
		    sendclose)
			lk_send_close(c, fin);
		sli_conn_unref(c);
	}
	sl_mutex_unlock(&p->smu);
}

/*
 * Replicas that stayed away longer than reassign_after (an output with
 * several urls; called by the ticker): their unacked messages go, in
 * order, to the replicas that are up, as far as those have room (the
 * rest on a later tick).  The messages keep their lineage, so a replica
 * that finished some of them before it went away makes duplicates that a
 * deduplicating input drops.  Once the stream ended, a replica away that
 * long with nothing left is no longer waited for.  Then flushes the
 * replicas that are up: the new messages, and any Close that waited.
 */
static void
lk_reassign(sl_link *l, lk_wbuf *w)
{
	int64_t now = sl_now();
	bool    eos, all;

	sl_mutex_lock(&l->mu);
	eos = l->eos;
	for (size_t i = 0; i < l->npeers; i++) {
		lk_peer *p = &l->peers[i];
		uint64_t n0 = p->acked;

		if (p->conn != NULL || p->closed || p->down_since == 0 ||
		    now - p->down_since < l->o.reassign_after)
			continue;
		while (p->acked < p->next_seq - 1) {
			sl_msg  *m = &p->ring[(p->acked + 1) & p->mask];
			lk_peer *q = lk_pick(l, m->len);

			/* Only to a replica that is up: with none up,
			 * lk_pick may offer another one that is down. */
			if (q == NULL || q == p || q->conn == NULL)
				break;
			p->acked++;
			p->bytes -= m->len;
			lk_enqueue(q, m);
			memset(m, 0, sizeof(*m));
		}
		if (p->sent < p->acked)
			p->sent = p->acked;
		if (p->acked > n0) {
			LK_COUNT(l, ST_REASSIGNED, p->acked - n0);
			lk_log(l, "%s away for %" PRId64 " ms: gave %" PRIu64
			    " unacked messages to the other replicas", p->url,
			    (now - p->down_since) / SL_MILLISECOND,
			    p->acked - n0);
		}
		if (eos && p->acked == p->next_seq - 1) {
			lk_log(l, "%s away for %" PRId64 " ms at the end of the "
			    "stream: no longer waiting for it", p->url,
			    (now - p->down_since) / SL_MILLISECOND);
			p->closed = true;
		}
	}
	all = lk_all_closed(l);
	sl_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->npeers; i++)
		lk_flush(l, &l->peers[i], w);
	if (eos && all)
		lk_mark_done(l);
}

static void
lk_stamp(sl_link *l, sl_msg *m)
{
	if (m->lin_src == 0 && l->o.source_id != 0) {
		m->lin_src = l->o.source_id;
		m->lin_seq = ++l->lin_next;
	}
}

/*
 * A message the pump took from the stage's channel: stamps its lineage,
 * or drops it (false) if it is over max_payload — put into the channel
 * directly, past sl_link_send's check, no peer would take it, and
 * resending it forever helps no one.
 */
static bool
lk_admit(sl_link *l, sl_msg *m)
{
	if (m->len > l->o.max_payload) {
		lk_log(l, "dropping a message of %zu bytes: the limit is %zu "
		    "bytes (max_payload)", m->len, l->o.max_payload);
		LK_COUNT(l, ST_BAD, 1);
		sl_msg_done(m);
		return (false);
	}
	lk_stamp(l, m);
	return (true);
}

/* Messages the pump takes from the stage's channel at a time. */
#define LK_PUMP_TAKE 64

static void
lk_pump(void *arg)
{
	sl_link *l = arg;
	lk_wbuf  w = { 0 };
	sl_msg   pend[LK_PUMP_TAKE]; /* taken, not yet in a ring */
	size_t   ip = 0, np = 0;
	int      r;

	for (;;) {
		lk_peer *p;

		if (ip == np) {
			ip = np = 0;
			r = sl_chan_recv_ctx(l->ch, &pend[0], l->lctx,
			    SL_FOREVER);
			if (r == SL_ECLOSED)
				break;
			if (r != 0)
				goto out;
			np = 1;
		}
		if (!lk_admit(l, &pend[ip])) {
			ip++;
			continue;
		}
		sl_mutex_lock(&l->mu);
		if ((p = lk_pick(l, pend[ip].len)) == NULL) {
			sl_mutex_unlock(&l->mu);
			if (sl_chan_recv_ctx(l->kick, NULL, l->lctx,
			    SL_FOREVER) != 0)
				goto out;
			continue;
		}
		uint64_t from = p->next_seq, bytes = pend[ip].len;
		size_t   nmax = lk_batch_target(l, p);
		uint64_t bmax = lk_batch_bytes(p);
		lk_enqueue(p, &pend[ip++]);
		/* Batch whatever else is ready, while p has room. */
		while (lk_peer_room(p, 0) && p->next_seq - from < nmax &&
		    bytes < bmax) {
			if (ip == np) {
				ip = 0;
				np = sli_chan_tryrecv_many(l->ch, pend,
				    LK_PUMP_TAKE);
				if (np == 0)
					break;
			}
			if (!lk_admit(l, &pend[ip])) {
				ip++;
				continue;
			}
			if (!lk_peer_room(p, pend[ip].len))
				break; /* keep it for the next round */
			bytes += pend[ip].len;
			lk_enqueue(p, &pend[ip++]);
		}
		uint64_t taken = p->next_seq - from;
		sl_mutex_unlock(&l->mu);
		LK_COUNT(l, ST_MSGS, taken);
		LK_COUNT(l, ST_BYTES, bytes);
		lk_flush(l, p, &w);
	}

	/* End of stream: Close goes to each peer after its last message. */
	sl_mutex_lock(&l->mu);
	l->eos = true;
	bool all = lk_all_closed(l);
	sl_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->npeers; i++)
		lk_flush(l, &l->peers[i], &w);
	if (all)
		lk_mark_done(l);
out:
	/* Stopping: what the pump took but gave to no peer was not sent,
	 * as what is left in the channel (lk_free_mem). */
	while (ip < np)
		sl_msg_drop(&pend[ip++]);
	lk_wbuf_free(&w);
	sl_waitgroup_done(&l->wg);
}

/* ---- output: acks and the dialer ---------------------------------------- */

/* Cumulative ack of seq from p's receiver.  0 or SL_EPROTO. */
static int
lk_on_ack(sl_link *l, lk_peer *p, uint64_t seq)
{
	lk_session **ss = NULL;
	uint64_t    *qs = NULL;
	size_t       np = 0;

	sl_mutex_lock(&l->mu);
	if (seq > p->next_seq - 1) {
		sl_mutex_unlock(&l->mu);
		lk_log(l, "ack of seq %" PRIu64 " from %s, beyond the last sent "
		    "(%" PRIu64 ")", seq, p->url, p->next_seq - 1);
		return (SL_EPROTO);
	}
	uint64_t nacked = seq > p->acked ? seq - p->acked : 0;
	bool     tried = false;
	while (p->acked < seq) {
		sl_msg *m = &p->ring[++p->acked & p->mask];
		p->bytes -= m->len;
		if (m->parent != NULL && !tried) {
			/* Only a stage with inputs (1:1) has parents. */
			tried = true;
			ss = malloc((size_t) nacked * sizeof(*ss));
			qs = malloc((size_t) nacked * sizeof(*qs));
			if (ss == NULL || qs == NULL) {
				free(ss);
				free(qs);
				ss = NULL;
				qs = NULL;
			}
		}
		if (m->parent != NULL && ss != NULL) {
			ss[np] = (lk_session *) m->parent;
			qs[np++] = m->parent_seq;
		} else if (m->parent != NULL) {
			lk_session_done((lk_session *) m->parent,
			    m->parent_seq);
		}
		lk_msg_release(m);
		memset(m, 0, sizeof(*m));
	}
	if (p->sent < p->acked)
		p->sent = p->acked;
	bool eos = l->eos;
	sl_mutex_unlock(&l->mu);
	/* Upstream acks only now that downstream has them (1:1 stages):
	 * one call per run of the same session. */
	for (size_t i = 0, j; i < np; i = j) {
		for (j = i + 1; j < np && ss[j] == ss[i]; j++)
			;
		lk_session_done_seqs(ss[i], qs + i, j - i);
	}
	free(ss);
	free(qs);
	(void) sl_chan_trysend(l->kick, NULL);
	/* A replica's Close may have waited for these acks (lk_flush): the
	 * ticker's flush sends it now rather than a heartbeat later. */
	if (eos && l->npeers > 1)
		(void) sl_chan_trysend(l->tick, NULL);
	return (0);
}

static void
lk_send_refuse(sli_conn *c, int code, const char *text)
{
	sli_frame  f;
	sli_refuse rf;

	sluice__link__frame__init(&f);
	sluice__link__refuse__init(&rf);
	rf.code = (uint32_t) code;
	rf.text = sli_bytes(text);
	f.kind_case = SLUICE__LINK__FRAME__KIND_REFUSE;
	f.refuse = &rf;
	(void) sli_conn_write(c, &f);
}

/*
 * A peer's stream broke a rule in a way that sending it again cannot
 * mend: says so (log line, bad_frames, and a Refuse frame with code and
 * the text, so that a sluice sender fails with it rather than redial and
 * send the same again for ever).  The caller drops the connection,
 * lingering first (lk_linger) so the peer can read the Refuse.
 */
static void
lk_refuse(sl_link *l, sli_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
lk_refuse(sl_link *l, sli_conn *c, int code, const char *fmt, ...)
{
	char    text[SLI_FRAME_ERRSZ];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	lk_log(l, "dropping %s: %s", c->peer, text);
	LK_COUNT(l, ST_BAD, 1);
	lk_send_refuse(c, code, text);
}

/* Checks a hello from c; refuses it (frame + log) on mismatch.  On
 * success names the peer in c->peer.  0, or the mismatch error. */
static int
lk_check_hello(sl_link *l, sli_conn *c, const sli_hello *peer, int role)
{
	sli_hello ours;
	char      err[SLI_FRAME_ERRSZ];
	char      st[72], pt[72];
	int       r;

	lk_hello_init(l, &ours, role);
	lk_bytes_str(peer->stage, st, sizeof(st));
	lk_bytes_str(peer->port, pt, sizeof(pt));
	snprintf(c->peer, sizeof(c->peer), "'%s' (port '%s')", st, pt);
	if ((r = sli_hello_match(&ours, peer, err, sizeof(err))) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", err);
		lk_log(l, "refusing %s: %s", c->peer, err);
		LK_COUNT(l, ST_REFUSED, 1);
		lk_send_refuse(c, r, err);
	}
	return (r);
}

/*
 * How long the hello exchange may take, reads and writes: twice the peer
 * timeout.  On tls+tcp:// NNG runs the TLS handshake inside the first
 * read and write, and an RSA handshake under valgrind or on a loaded
 * machine takes seconds; once the hellos are through, writes go back to
 * peer_timeout (lk_established).
 */
#define LK_HANDSHAKE(l) (2 * (l)->o.peer_timeout)

static void
lk_established(sl_link *l, sli_conn *c)
{
	atomic_store(&c->write_timeout_ms,
	    (int) (l->o.peer_timeout / SL_MILLISECOND));
	atomic_store(&c->hello, true);
	LK_COUNT(l, ST_HELLOS, 1);
}

/* Reads the first frame that is not a heartbeat: the peer's ticker may
 * beat on a connection whose handshake it has not finished reading. */
static int
lk_read_handshake(sl_link *l, sli_conn *c, sli_frame **fp)
{
	int64_t end = sl_now() + LK_HANDSHAKE(l);
	int     r;

	for (;;) {
		int64_t left = end - sl_now();
		if (left <= 0)
			return (SL_ETIMEDOUT);
		r = sli_conn_read(c, fp, (int) ((left + SL_MILLISECOND - 1) /
		    SL_MILLISECOND));
		if (r != 0 || *fp == NULL ||
		    (*fp)->kind_case != SLUICE__LINK__FRAME__KIND_HEARTBEAT)
			return (r);
		sli_frame_free(*fp);
		*fp = NULL;
	}
}

/* The stage cannot work with this peer (type or version): give up. */
static void
lk_fatal_refusal(sl_link *l, int code, const char *text)
{
	sl_ctx_cancel_cause(l->ctx, code, text);
}

/* A Refuse from the receiver p, at the hello or after it: the receiver
 * found something in our stream that sending it again cannot mend (a
 * mismatch, a message over its limits, a protocol error), so redialing
 * would loop for ever.  The stage fails, saying why (log, count, cause);
 * returns the refusal's code, SL_EPROTO if it is not a known error. */
static int
lk_on_refuse(sl_link *l, lk_peer *p, const sli_refuse *rf)
{
	char t[SLI_FRAME_ERRSZ], text[SLI_FRAME_ERRSZ + 256];
	int  r = (int) rf->code;

	lk_bytes_str(rf->text, t, sizeof(t));
	snprintf(text, sizeof(text), "refused by %s: %s", p->url, t);
	lk_log(l, "%s", text);
	LK_COUNT(l, ST_REFUSED, 1);
	if (r <= 0 || r >= SL_ERR_COUNT)
		r = SL_EPROTO;
	lk_fatal_refusal(l, r, text);
	return (r);
}

/* Hello exchange on a new outgoing connection.  0: established; the code
 * of a refusal, which canceled the stage (fatal: SL_ETYPE, SL_EVERSION,
 * SL_EPROTO, SL_ECLOSED...); other: retry. */
static int
lk_out_handshake(sl_link *l, lk_peer *p, sli_conn *c)
{
	sli_frame  f, *in = NULL;
	sli_hello  h;
	int        r;
	char       text[600];

	lk_hello_init(l, &h, SLUICE__LINK__ROLE__ROLE_SENDER);
	sl_mutex_lock(&l->mu);
	h.last_seq = p->acked;
	sl_mutex_unlock(&l->mu);
	sluice__link__frame__init(&f);
	f.kind_case = SLUICE__LINK__FRAME__KIND_HELLO;
	f.hello = &h;
	if ((r = sli_conn_write(c, &f)) != 0)
		return (r);
	r = lk_read_handshake(l, c, &in);
	if (r == SL_EVERSION) {
		snprintf(text, sizeof(text), "link to %s refused: %s", p->url,
		    c->err);
		lk_log(l, "%s", text);
		LK_COUNT(l, ST_REFUSED, 1);
		lk_fatal_refusal(l, SL_EVERSION, text);
		return (SL_EVERSION);
	}
	if (r != 0) {
		if (r != SL_ECONNSHUT && r != SL_ETIMEDOUT) {
			lk_log(l, "bad frame from %s: %s", p->url, c->err);
			LK_COUNT(l, ST_BAD, 1);
		}
		return (SL_ECONNSHUT);
	}
	if (in == NULL) {
		lk_log(l, "expected hello from %s, got batch", p->url);
		LK_COUNT(l, ST_BAD, 1);
		return (SL_ECONNSHUT);
	}
	if (in->kind_case == SLUICE__LINK__FRAME__KIND_REFUSE) {
		r = lk_on_refuse(l, p, in->refuse);
		sli_frame_free(in);
		return (r);
	}
	if (in->kind_case != SLUICE__LINK__FRAME__KIND_HELLO) {
		lk_log(l, "expected hello from %s, got %s", p->url,
		    sli_frame_kind_name(in));
		LK_COUNT(l, ST_BAD, 1);
		sli_frame_free(in);
		return (SL_ECONNSHUT);
	}
	if ((r = lk_check_hello(l, c, in->hello,
	    SLUICE__LINK__ROLE__ROLE_SENDER)) != 0) {
		snprintf(text, sizeof(text), "link to %s refused: %s", p->url,
		    c->err);
		lk_fatal_refusal(l, r, text);
		sli_frame_free(in);
		return (r);
	}
	sl_mutex_lock(&l->mu);
	p->win_msgs = in->hello->credit_messages;
	p->win_bytes = in->hello->credit_bytes;
	p->peer_max_frame = in->hello->max_frame;
	uint64_t have = in->hello->last_seq;
	if (have > p->next_seq - 1)
		have = p->next_seq - 1; /* it cannot have more than we sent */
	if (have < p->acked)
		have = p->acked;
	if (p->sent > have)
		LK_COUNT(l, ST_RESENT, p->sent - have);
	p->sent = have;
	p->conn = sli_conn_ref(c);
	p->down_since = 0;
	p->close_sent = false;
	lk_established(l, c);
	sl_mutex_unlock(&l->mu);
	sli_frame_free(in);
	return (0);
}

static void
lk_on_close_reply(sl_link *l, lk_peer *p, uint64_t final_seq)
{
	bool all;

	(void) lk_on_ack(l, p, final_seq);
	sl_mutex_lock(&l->mu);
	if (l->eos && final_seq == p->next_seq - 1)
		p->closed = true;
	all = lk_all_closed(l);
	sl_mutex_unlock(&l->mu);
	if (all)
		lk_mark_done(l);
}

/* Frames from a receiver until the connection ends: 0, or the code of a
 * refusal (the stage was canceled with it: do not redial). */
static int
lk_out_read_loop(sl_link *l, lk_peer *p, sli_conn *c)
{
	for (;;) {
		sli_frame *f;
		int        r = sli_conn_read(c, &f, NNG_DURATION_INFINITE);

		if (r != 0) {
			if (r != SL_ECONNSHUT && r != SL_ETIMEDOUT) {
				lk_log(l, "bad frame from %s: %s", c->peer,
				    c->err);
				LK_COUNT(l, ST_BAD, 1);
			}
			return (0);
		}
		if (f == NULL) {
			lk_log(l, "unexpected batch frame from %s", c->peer);
			LK_COUNT(l, ST_BAD, 1);
			return (0);
		}
		switch (f->kind_case) {
		case SLUICE__LINK__FRAME__KIND_ACK:
			r = lk_on_ack(l, p, f->ack->seq);
			if (r == 0 && f->ack->credit != NULL) {
				sl_mutex_lock(&l->mu);
				p->win_msgs += f->ack->credit->messages;
				p->win_bytes += f->ack->credit->bytes;
				sl_mutex_unlock(&l->mu);
			}
			break;
		case SLUICE__LINK__FRAME__KIND_CREDIT:
			sl_mutex_lock(&l->mu);
			p->win_msgs += f->credit->messages;
			p->win_bytes += f->credit->bytes;
			sl_mutex_unlock(&l->mu);
			(void) sl_chan_trysend(l->kick, NULL);
			break;
		case SLUICE__LINK__FRAME__KIND_CLOSE:
			lk_on_close_reply(l, p, f->close->final_seq);
			break;
		case SLUICE__LINK__FRAME__KIND_CANCEL:
			lk_peer_canceled(l, c, f->cancel);
			break;
		case SLUICE__LINK__FRAME__KIND_HEARTBEAT:
			break;
		case SLUICE__LINK__FRAME__KIND_REFUSE:
			r = lk_on_refuse(l, p, f->refuse);
			sli_frame_free(f);
			return (r);
		default:
			lk_log(l, "unexpected %s frame from %s",
			    sli_frame_kind_name(f), c->peer);
			LK_COUNT(l, ST_BAD, 1);
			r = SL_EPROTO;
		}
		sli_frame_free(f);
		if (r != 0)
			return (0);
	}
}

/* Starts a dial on d or an accept on lst with a (armed), unless
 * sl_link_free closed the endpoints: like connections (conn.c), an
 * endpoint may never complete an operation started after its close. */
static bool
lk_start_ep(sl_link *l, nng_stream_dialer *d, nng_stream_listener *lst,
    sli_aio *a)
{
	bool closed;

	sli_lock(&l->eplk);
	closed = l->epclosed;
	if (!closed && d != NULL)
		nng_stream_dialer_dial(d, a->aio);
	else if (!closed)
		nng_stream_listener_accept(lst, a->aio);
	sli_unlock(&l->eplk);
	if (closed)
		sli_aio_abandon(a);
	return (!closed);
}

/*
 * A downstream nobody answers at is dialed again and again (it may be
 * starting, or its name not yet in DNS), but not in silence: a dialer
 * that has failed for peer_timeout says so, with the last error, and
 * again each time the outage has doubled (at most every 10 minutes);
 * once it connects after that it says when.
 */
typedef struct lk_unreached {
	int64_t  since;   /* first failure of this outage, or 0 */
	int64_t  next;    /* when to report it next */
	uint64_t tries;
	bool     told;    /* a report went out */
} lk_unreached;

static void
lk_unreached_fail(sl_link *l, lk_peer *p, lk_unreached *u, int err)
{
	int64_t now = sl_now(), gap;

	u->tries++;
	if (u->since == 0) {
		u->since = now;
		u->next = now + l->o.peer_timeout;
	}
	if (now < u->next)
		return;
	lk_log(l, "cannot reach '%s' for %.1f s (%" PRIu64 " tries, last: "
	    "%s); still trying", p->url, (double) (now - u->since) / 1e9,
	    u->tries, nng_strerror(err));
	u->told = true;
	gap = now - u->since;
	u->next = now + (gap < LK_UNREACHED_MAX ? gap : LK_UNREACHED_MAX);
}

static void
lk_unreached_ok(sl_link *l, lk_peer *p, lk_unreached *u)
{
	if (u->told)
		lk_log(l, "reached '%s' after %.1f s", p->url,
		    (double) (sl_now() - u->since) / 1e9);
	memset(u, 0, sizeof(*u));
}

static void
lk_dialer(void *arg)
{
	lk_peer     *p = arg;
	sl_link     *l = p->link;
	sli_aio      a = { 0 };
	lk_wbuf      w = { 0 };
	int64_t      backoff = LK_BACKOFF_MIN;
	lk_unreached u = { 0 };
	int          err;

	if (sli_aio_init(&a) != 0)
		goto out;
	while (sl_ctx_err(l->lctx) == 0) {
		sli_aio_begin(&a);
		if (!lk_start_ep(l, p->dialer, NULL, &a))
			break;
		if ((err = sli_aio_end(&a, "link dial")) != 0) {
			if (err != NNG_ECLOSED && err != NNG_ECANCELED)
				lk_unreached_fail(l, p, &u, err);
			if (sl_sleep_ctx(l->lctx, backoff) != 0)
				break;
			backoff = backoff * 2 > LK_BACKOFF_MAX ?
			    LK_BACKOFF_MAX : backoff * 2;
			continue;
		}
		sli_conn *c = sli_conn_new(nng_aio_get_output(a.aio, 0),
		    &l->lim);
		if (c == NULL)
			continue;
		atomic_store(&c->write_timeout_ms,
		    (int) (LK_HANDSHAKE(l) / SL_MILLISECOND));
		if (lk_track_conn(l, c) != 0) {
			sli_conn_unref(c);
			continue;
		}
		LK_COUNT(l, ST_CONNECTS, 1);
		lk_unreached_ok(l, p, &u);
		int r = lk_out_handshake(l, p, c);
		if (r == 0 && sl_ctx_err(l->ctx) != 0) {
			/* Canceled already: this downstream must hear it. */
			(void) lk_send_cancel(l, c);
			sl_mutex_lock(&l->mu);
			if (p->conn == c) {
				p->conn = NULL;
				p->down_since = sl_now();
				sli_conn_unref(c);
			}
			sl_mutex_unlock(&l->mu);
			r = SL_ECANCELED;
		}
		if (r == 0) {
			backoff = LK_BACKOFF_MIN;
			(void) sl_chan_trysend(l->kick, NULL);
			lk_flush(l, p, &w);
			int refused = lk_out_read_loop(l, p, c);
			sl_mutex_lock(&l->mu);
			if (p->conn == c) {
				p->conn = NULL;
				p->down_since = sl_now();
				sli_conn_unref(c);
			}
			bool done = p->closed;
			sl_mutex_unlock(&l->mu);
			sli_conn_close(c);
			lk_forget_conn(l, c);
			sli_conn_unref(c);
			if (done || refused != 0)
				break;
			LK_COUNT(l, ST_DROPS, 1);
			continue;
		}
		sli_conn_close(c);
		lk_forget_conn(l, c);
		sli_conn_unref(c);
		if (sl_ctx_err(l->ctx) != 0)
			break; /* refused: the stage was canceled */
		if (sl_sleep_ctx(l->lctx, backoff) != 0)
			break;
		backoff = backoff * 2 > LK_BACKOFF_MAX ? LK_BACKOFF_MAX :
		    backoff * 2;
	}
out:
	sli_aio_fini(&a);
	lk_wbuf_free(&w);
	sl_waitgroup_done(&l->wg);
}

/* ---- input -------------------------------------------------------------- */

static void lk_acker(void *arg);

/* Finds or makes the session of the sender that said hello h on c, and
 * makes c its connection.  l->mu held.  NULL if out of memory, or (with
 * *late set) if the input's stream ended and this sender is not one
 * that closed it, asking again for its close reply. */
static lk_session *
lk_session_for(sl_link *l, sli_conn *c, const sli_hello *h, bool *resumed,
    bool *late)
{
	char        st[256], pt[256];
	lk_session *s, **pp;

	lk_bytes_str(h->stage, st, sizeof(st));
	lk_bytes_str(h->port, pt, sizeof(pt));
	*resumed = false;
	*late = false;
	for (pp = &l->sessions; (s = *pp) != NULL; pp = &s->next) {
		if (strcmp(s->stage, st) != 0 || strcmp(s->port, pt) != 0)
			continue;
		if (l->ended && (s->incarnation != h->incarnation ||
		    !s->closed)) {
			*late = true;
			return (NULL);
		}
		if (s->incarnation == h->incarnation) {
			sli_conn *old;
			sl_mutex_lock(&s->mu);
			old = s->conn;
			s->conn = sli_conn_ref(c);
			s->ack_sent = 0; /* re-ack on the new connection */
			sl_mutex_unlock(&s->mu);
			if (old != NULL) {
				sli_conn_close(old);
				sli_conn_unref(old);
			}
			*resumed = true;
			return (s);
		}
		/* A new incarnation (the sender restarted): its messages
		 * start from seq 1 again; forget the old one.  The stream
		 * has not ended (above): if the old one had closed, its
		 * successor must close again.  The acker counts a close
		 * under l->mu, and never one of a stale session. */
		sl_mutex_lock(&s->mu);
		s->stale = true;
		if (s->conn != NULL)
			sli_conn_close(s->conn);
		if (s->closed)
			l->nclosed--;
		sl_mutex_unlock(&s->mu);
		(void) sl_chan_trysend(s->kick, NULL);
		*pp = s->next;
		lk_session_unref(s);
		break;
	}
	if (l->ended) {
		*late = true;
		return (NULL);
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NULL);
	s->link = l;
	s->stage = strdup(st);
	s->port = strdup(pt);
	s->incarnation = h->incarnation;
	s->cap = l->o.window_msgs;
	s->dmask = lk_ring_mask(s->cap);
	s->donebits = calloc(s->dmask + 1, 1);
	s->kick = sl_chan_make(0, 1);
	if (s->stage == NULL || s->port == NULL || s->donebits == NULL ||
	    s->kick == NULL) {
		atomic_init(&s->refs, 1);
		lk_session_unref(s); /* frees what was made */
		return (NULL);
	}
	atomic_init(&s->refs, 2); /* the list, the acker */
	s->conn = sli_conn_ref(c);
	s->next = l->sessions;
	l->sessions = s;
	sl_waitgroup_add(&l->wg, 1);
	if (sl_go(lk_acker, s) != 0) {
		sl_waitgroup_done(&l->wg);
		atomic_fetch_sub(&s->refs, 1);
	}
	return (s);
}

/* A reader's scratch: the messages of one batch, before delivery. */
typedef struct lk_rbuf {
	sl_msg *m;
	size_t  cap;
} lk_rbuf;

/*
 * Delivers the messages of one batch from s's sender into the stage's
 * channel.  The payloads are copied first, into one block the messages
 * share, so that running out of memory costs a dropped connection and
 * never a claimed message; then one lock skips what we already have (a
 * resend), checks order and window, and claims the rest; then lineage
 * duplicates are finished and the others go into the channel, as many per
 * lock round as fit (a full channel is backpressure).  inrbuf: the
 * payloads bms views lie in c's read buffer (the fast path), so a large
 * batch may stay there; otherwise they lie in memory the caller frees
 * after this returns, and are always copied.  0, SL_EPROTO, SL_ENOMEM or
 * SL_ECANCELED.  Called by lk_on_batch.
 */
static int
lk_deliver(sl_link *l, lk_session *s, sli_conn *c, const sli_bmsg *bms,
    size_t n, bool inrbuf, lk_rbuf *rb)
{
	size_t   first = 0, i;
	uint64_t want = 0, bytes = 0, delivered = 0, fin = 0;
	bool     bad = false, past = false;

	if (n == 0)
		return (0);
	if (rb->cap < n) {
		sl_msg *nm = realloc(rb->m, n * sizeof(*nm));
		if (nm == NULL)
			return (SL_ENOMEM);
		rb->m = nm;
		rb->cap = n;
	}
	/* A large batch stays where it was read: its messages point into
	 * the connection's read buffer, each with a reference to it.  A
	 * small one is copied out to a block of its own, so that a few
	 * messages kept long cannot pin many mostly empty read buffers
	 * (a kept message holds at most 8 times its batch's bytes).  So is
	 * one that is not in the read buffer at all: the full decoder
	 * copied its payloads into the frame, which is freed next. */
	size_t       total = 0;
	sli_payload *blk = sli_conn_rblock(c);
	for (i = 0; i < n; i++)
		total += bms[i].len;
	if (inrbuf && total >= sli_conn_rsize(c) / 8) {
		atomic_fetch_add_explicit(&blk->refs, (int) n,
		    memory_order_relaxed);
		for (i = 0; i < n; i++) {
			sl_msg *m = &rb->m[i];
			memset(m, 0, sizeof(*m));
			m->block = blk;
			m->len = bms[i].len;
			m->data = (void *) (uintptr_t) bms[i].payload;
		}
	} else {
		uint8_t *q;
		if ((blk = sli_payload_new(total, (int) n)) == NULL)
			return (SL_ENOMEM);
		q = sli_payload_bytes(blk);
		for (i = 0; i < n; i++) {
			sl_msg *m = &rb->m[i];
			memset(m, 0, sizeof(*m));
			m->block = blk;
			m->len = bms[i].len;
			if (m->len > 0) {
				memcpy(q, bms[i].payload, m->len);
				m->data = q;
				q += m->len;
			}
		}
	}

	sl_mutex_lock(&s->mu);
	while (first < n && bms[first].seq <= s->received)
		first++;
	if (first < n) {
		/* Seqs within a batch are consecutive (frame.h). */
		if (s->closing && bms[n - 1].seq > s->final_seq) {
			fin = s->final_seq;
			past = true;
		} else if (bms[first].seq != s->received + 1 ||
		    bms[n - 1].seq - s->done > s->cap) {
			want = s->received + 1;
			bad = true;
		} else {
			s->received = bms[n - 1].seq;
		}
	}
	sl_mutex_unlock(&s->mu);
	for (i = 0; i < first; i++)
		lk_msg_release(&rb->m[i]);
	LK_COUNT(l, ST_DUPSEQ, first);
	if (past) {
		for (i = first; i < n; i++)
			lk_msg_release(&rb->m[i]);
		lk_refuse(l, c, SL_EPROTO, "message seq %" PRIu64 " after "
		    "the end of its stream (Close with final seq %" PRIu64
		    ")", bms[n - 1].seq, fin);
		return (SL_EPROTO);
	}
	if (bad) {
		for (i = first; i < n; i++)
			lk_msg_release(&rb->m[i]);
		lk_log(l, "protocol error from %s: message seq %" PRIu64
		    " (expected %" PRIu64 ") or window exceeded", c->peer,
		    bms[first].seq, want);
		LK_COUNT(l, ST_BAD, 1);
		return (SL_EPROTO);
	}
	atomic_fetch_add(&s->refs, (int) (n - first));
	/* Lineage and parent on each; duplicates by lineage are finished
	 * at once (l->mu before s->mu is the lock order), the rest packed
	 * to the front for delivery. */
	size_t nd = 0;
	if (l->o.dedup_lineage)
		sl_mutex_lock(&l->mu);
	for (i = first; i < n; i++) {
		sl_msg *m = &rb->m[i];

		m->lin_src = bms[i].lin_src;
		m->lin_seq = bms[i].lin_seq;
		m->parent = (sli_delivery *) s;
		m->parent_seq = bms[i].seq;
		if (l->o.dedup_lineage && m->lin_src != 0 &&
		    !lk_lineage_new(l, m->lin_src, m->lin_seq)) {
			LK_COUNT(l, ST_DUPLIN, 1);
			lk_msg_release(m);
			lk_session_done(s, bms[i].seq);
			continue;
		}
		bytes += m->len;
		rb->m[first + nd++] = *m;
	}
	if (l->o.dedup_lineage)
		sl_mutex_unlock(&l->mu);
	/* Into the channel, as many at once as fit; a full channel is
	 * backpressure (one blocking send, then on). */
	for (i = first; i < first + nd; ) {
		i += sli_chan_trysend_many(l->ch, &rb->m[i], first + nd - i);
		if (i == first + nd)
			break;
		if (sl_chan_send_ctx(l->ch, &rb->m[i], l->lctx,
		    SL_FOREVER) != 0) {
			/* Canceled: the link is going away. */
			delivered = i - first;
			for (; i < first + nd; i++) {
				lk_msg_release(&rb->m[i]);
				lk_session_unref(s);
			}
			LK_COUNT(l, ST_MSGS, delivered);
			return (SL_ECANCELED);
		}
		i++;
	}
	LK_COUNT(l, ST_MSGS, nd);
	LK_COUNT(l, ST_BYTES, bytes);
	LK_COUNT(l, ST_BATCHES, 1);
	return (0);
}

/* Every upstream closed and no batch is on its way in: the input's
 * channel closes (once: the caller saw l->ended set and delivering at 0,
 * which happens once). */
static void
lk_input_ended(sl_link *l)
{
	sl_chan_close(l->ch);
	lk_mark_done(l);
}

/*
 * A batch of s's sender (lk_deliver), unless the input's stream has
 * ended: then the channel is closed, or closes as soon as the batches
 * on their way in are in; a batch after that has nowhere to go (a sender
 * beyond the upstreams expected), and is refused.  0 or lk_deliver's
 * error.
 */
static int
lk_on_batch(sl_link *l, lk_session *s, sli_conn *c, const sli_bmsg *bms,
    size_t n, bool inrbuf, lk_rbuf *rb)
{
	bool     ended, end, closing;
	uint64_t fin;
	int      r;

	sl_mutex_lock(&l->mu);
	if (!(ended = l->ended))
		l->delivering++;
	sl_mutex_unlock(&l->mu);
	if (ended) {
		sl_mutex_lock(&s->mu);
		closing = s->closing;
		fin = s->final_seq;
		sl_mutex_unlock(&s->mu);
		if (closing)
			lk_refuse(l, c, SL_EPROTO, "message seq %" PRIu64
			    " after the end of its stream (Close with final "
			    "seq %" PRIu64 ")", n > 0 ? bms[n - 1].seq : 0,
			    fin);
		else
			lk_refuse(l, c, SL_ECLOSED, "message seq %" PRIu64
			    " after the input's stream ended (all of its %d "
			    "upstreams closed): more senders than the "
			    "upstreams expected?", n > 0 ? bms[0].seq : 0,
			    l->o.upstreams);
		return (SL_EPROTO);
	}
	/* The reader of a connection this one replaced may still be
	 * putting an older batch into the channel (blocked there, a full
	 * channel is backpressure): after it, or seqs would overtake. */
	sl_mutex_lock(&s->dmu);
	r = lk_deliver(l, s, c, bms, n, inrbuf, rb);
	sl_mutex_unlock(&s->dmu);
	sl_mutex_lock(&l->mu);
	end = --l->delivering == 0 && l->ended;
	sl_mutex_unlock(&l->mu);
	if (end)
		lk_input_ended(l);
	return (r);
}

/* A Close from s's sender: its stream ends at final_seq, to be replied
 * to once everything up to there is finished (lk_acker).  0, or
 * SL_EPROTO if it contradicts what came before (refused). */
static int
lk_on_close(sl_link *l, lk_session *s, sli_conn *c, uint64_t final_seq)
{
	uint64_t got, fin;
	bool     bad, again;

	sl_mutex_lock(&s->mu);
	got = s->received;
	fin = s->final_seq;
	again = s->closing && final_seq != s->final_seq;
	bad = final_seq < s->received || again;
	if (!bad) {
		s->closing = true;
		s->reply_due = true;
		s->final_seq = final_seq;
	}
	sl_mutex_unlock(&s->mu);
	if (again) {
		lk_refuse(l, c, SL_EPROTO, "Close with final seq %" PRIu64
		    " after one with final seq %" PRIu64, final_seq, fin);
		return (SL_EPROTO);
	}
	if (bad) {
		lk_refuse(l, c, SL_EPROTO, "Close with final seq %" PRIu64
		    " after message seq %" PRIu64 " came", final_seq, got);
		return (SL_EPROTO);
	}
	(void) sl_chan_trysend(s->kick, NULL);
	return (0);
}

/* A batch that came through the full decoder (not in canonical form). */
static int
lk_on_batch_frame(sl_link *l, lk_session *s, sli_conn *c, const sli_batch *b,
    lk_rbuf *rb)
{
	size_t    n = b->n_payloads;
	sli_bmsg *v = calloc(n ? n : 1, sizeof(*v));
	uint64_t  lseq = 0;
	int       r;

	if (v == NULL)
		return (SL_ENOMEM);
	/* sli_frame_decode checked the rules: n deltas with a source. */
	for (size_t i = 0; i < n; i++) {
		v[i].seq = b->first_seq + i;
		if (b->lineage_source != 0) {
			lseq += (uint64_t) b->lineage_seq_delta[i];
			v[i].lin_src = b->lineage_source;
			v[i].lin_seq = lseq;
		}
		v[i].payload = b->payloads[i].data;
		v[i].len = b->payloads[i].len;
	}
	r = lk_on_batch(l, s, c, v, n, false, rb);
	free(v);
	return (r);
}

/* Sends acks and the close reply of one upstream session. */
static void
lk_acker(void *arg)
{
	lk_session *s = arg;
	sl_link    *l = s->link;

	while (sl_chan_recv_ctx(s->kick, NULL, l->lctx, SL_FOREVER) == 0) {
		sli_conn *c = NULL;
		uint64_t  ack = 0, fin = 0;
		bool      reply = false, stale;

		sl_mutex_lock(&s->mu);
		stale = s->stale;
		if (!stale && s->conn != NULL) {
			c = sli_conn_ref(s->conn);
			if (s->done > s->ack_sent || (s->ack_sent == 0 &&
			    s->done > 0)) {
				ack = s->done;
				s->ack_sent = s->done;
			}
			if (s->reply_due && s->done == s->final_seq &&
			    s->received == s->final_seq) {
				/* Replied on every Close: a reply lost with
				 * a connection is asked for again. */
				reply = true;
				fin = s->final_seq;
				s->reply_due = false;
			}
		}
		sl_mutex_unlock(&s->mu);
		if (stale)
			break;
		if (c != NULL) {
			if (ack != 0)
				(void) lk_send_ack(c, ack);
			if (reply)
				lk_send_close(c, fin);
			sli_conn_unref(c);
		}
		if (reply) {
			/* The first reply counts this sender as closed,
			 * unless a new incarnation replaced it meanwhile
			 * (lk_session_for: that one must close instead).
			 * The last one ends the input: its channel closes
			 * once no batch is on its way in (lk_on_batch). */
			bool end = false;
			sl_mutex_lock(&l->mu);
			sl_mutex_lock(&s->mu);
			if (!s->closed && !s->stale) {
				s->closed = true;
				if (++l->nclosed >= l->o.upstreams &&
				    !l->ended) {
					l->ended = true;
					end = l->delivering == 0;
				}
			}
			sl_mutex_unlock(&s->mu);
			sl_mutex_unlock(&l->mu);
			if (end)
				lk_input_ended(l);
		}
	}
	lk_session_unref(s);
	sl_waitgroup_done(&l->wg);
}

typedef struct lk_rd_arg {
	sl_link  *l;
	sli_conn *c;
} lk_rd_arg;

/* Every connection of a link is in l->conns, so that sl_link_free can
 * close each one, whoever is blocked on it. */
static int
lk_track_conn(sl_link *l, sli_conn *c)
{
	sl_mutex_lock(&l->mu);
	if (l->stopping) {
		/* Made after free closed the others: nobody would. */
		sl_mutex_unlock(&l->mu);
		sli_conn_close(c);
		return (SL_ECANCELED);
	}
	if (l->nconns == l->capconns) {
		size_t     ncap = l->capconns ? l->capconns * 2 : 8;
		sli_conn **n = realloc(l->conns, ncap * sizeof(*n));
		if (n == NULL) {
			sl_mutex_unlock(&l->mu);
			return (SL_ENOMEM);
		}
		l->conns = n;
		l->capconns = ncap;
	}
	l->conns[l->nconns++] = sli_conn_ref(c);
	sl_mutex_unlock(&l->mu);
	return (0);
}

static void
lk_forget_conn(sl_link *l, sli_conn *c)
{
	sl_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->nconns; i++) {
		if (l->conns[i] == c) {
			l->conns[i] = l->conns[--l->nconns];
			sli_conn_unref(c);
			break;
		}
	}
	sl_mutex_unlock(&l->mu);
}

/* One accepted connection: hello, then frames until it ends. */
static void
lk_reader(void *arg)
{
	lk_rd_arg  *ra = arg;
	sl_link    *l = ra->l;
	sli_conn   *c = ra->c;
	lk_session *s = NULL;
	sli_frame  *f = NULL;
	lk_rbuf     rb = { 0 };
	bool        resumed, late, refused = false;
	int         r;

	free(ra);
	r = lk_read_handshake(l, c, &f);
	if (r == SL_EVERSION) {
		/* The codec refuses other versions before we see the hello:
		 * tell the peer, it cannot fix this by retrying. */
		lk_log(l, "refusing a new connection: %s", c->err);
		LK_COUNT(l, ST_REFUSED, 1);
		lk_send_refuse(c, SL_EVERSION, c->err);
		lk_fatal_refusal(l, SL_EVERSION, c->err);
		goto out;
	}
	if (r != 0) {
		if (r == SL_ETIMEDOUT)
			lk_log(l, "no hello from a new connection within "
			    "%" PRId64 " ms: dropping it",
			    LK_HANDSHAKE(l) / SL_MILLISECOND);
		else if (r != SL_ECONNSHUT)
			lk_log(l, "bad frame from a new connection: %s",
			    c->err);
		if (r != SL_ECONNSHUT)
			LK_COUNT(l, ST_BAD, 1);
		goto out;
	}
	if (f == NULL || f->kind_case != SLUICE__LINK__FRAME__KIND_HELLO) {
		lk_log(l, "expected hello from a new connection, got %s",
		    f != NULL ? sli_frame_kind_name(f) : "batch");
		LK_COUNT(l, ST_BAD, 1);
		goto out;
	}
	if ((r = lk_check_hello(l, c, f->hello,
	    SLUICE__LINK__ROLE__ROLE_RECEIVER)) != 0) {
		/* A wrongly typed upstream is a configuration error: fail
		 * loudly on both ends rather than wait for it forever. */
		char text[SLI_FRAME_ERRSZ + 256];
		snprintf(text, sizeof(text), "refused upstream %s: %s",
		    c->peer, c->err);
		lk_fatal_refusal(l, r, text);
		goto out;
	}

	sl_mutex_lock(&l->mu);
	s = lk_session_for(l, c, f->hello, &resumed, &late);
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	sl_mutex_unlock(&l->mu);
	if (late) {
		/* Its messages would have nowhere to go: say so, rather
		 * than let it redial for ever. */
		char text[SLI_FRAME_ERRSZ];
		snprintf(text, sizeof(text), "the stream into this input "
		    "already ended (all of its %d upstreams closed): a "
		    "sender beyond the upstreams expected, or one restarted "
		    "after the end", l->o.upstreams);
		lk_log(l, "refusing %s: %s", c->peer, text);
		LK_COUNT(l, ST_REFUSED, 1);
		lk_send_refuse(c, SL_ECLOSED, text);
		refused = true;
	}
	if (s == NULL)
		goto out;
	LK_COUNT(l, ST_CONNECTS, 1);

	sli_frame fo;
	sli_hello h;
	lk_hello_init(l, &h, SLUICE__LINK__ROLE__ROLE_RECEIVER);
	h.credit_messages = l->o.window_msgs;
	h.credit_bytes = l->o.window_bytes;
	sl_mutex_lock(&s->mu);
	h.last_seq = s->received;
	if (!resumed && f->hello->last_seq > 0 && s->received == 0) {
		/* We are new, the sender is not: it starts after what it
		 * had acked, which we take as received and finished. */
		s->received = s->done = s->ack_sent = f->hello->last_seq;
		h.last_seq = s->received;
	} else if (resumed && f->hello->last_seq > s->received) {
		/* The sender gave what we had not acked to other replicas
		 * while we were away (lk_reassign): skip to its ack.  What
		 * we still hold of the old range is finished unacked. */
		memset(s->donebits, 0, s->dmask + 1);
		s->received = s->done = s->ack_sent = f->hello->last_seq;
		h.last_seq = s->received;
	}
	sl_mutex_unlock(&s->mu);
	sli_frame_free(f);
	f = NULL;
	sluice__link__frame__init(&fo);
	fo.kind_case = SLUICE__LINK__FRAME__KIND_HELLO;
	fo.hello = &h;
	if (sli_conn_write(c, &fo) != 0)
		goto out;
	lk_established(l, c);
	if (sl_ctx_err(l->ctx) != 0) {
		/* Canceled already: this upstream must hear it too. */
		(void) lk_send_cancel(l, c);
		goto out;
	}
	(void) sl_chan_trysend(s->kick, NULL); /* re-ack on resume */

	for (;;) {
		r = sli_conn_read(c, &f, NNG_DURATION_INFINITE);
		if (r == SL_ETOOBIG) {
			/* The sender's limits are above ours (they are not
			 * in the hello): it would send the same again after
			 * every reconnect. */
			lk_refuse(l, c, SL_ETOOBIG, "a message over this "
			    "input's limits (max_payload %zu bytes, frames of "
			    "at most %zu bytes): %s", l->lim.max_payload,
			    l->lim.max_frame, c->err);
			break;
		}
		if (r != 0) {
			if (r != SL_ECONNSHUT && r != SL_ETIMEDOUT) {
				lk_log(l, "bad frame from %s: %s", c->peer,
				    c->err);
				LK_COUNT(l, ST_BAD, 1);
			}
			break;
		}
		if (f == NULL) {
			/* The fast path: a canonical batch, viewed. */
			if ((r = lk_on_batch(l, s, c, c->bv, c->bvn, true,
			    &rb)) != 0)
				break;
			continue;
		}
		switch (f->kind_case) {
		case SLUICE__LINK__FRAME__KIND_BATCH:
			r = lk_on_batch_frame(l, s, c, f->batch, &rb);
			break;
		case SLUICE__LINK__FRAME__KIND_CLOSE:
			r = lk_on_close(l, s, c, f->close->final_seq);
			break;
		case SLUICE__LINK__FRAME__KIND_CANCEL:
			lk_peer_canceled(l, c, f->cancel);
			break;
		case SLUICE__LINK__FRAME__KIND_HEARTBEAT:
			break;
		default:
			lk_log(l, "unexpected %s frame from %s",
			    sli_frame_kind_name(f), c->peer);
			LK_COUNT(l, ST_BAD, 1);
			r = SL_EPROTO;
		}
		sli_frame_free(f);
		f = NULL;
		if (r != 0)
			break;
	}
	/* A protocol error, refused (lk_refuse) or not: let the sender
	 * read any Refuse before the connection closes. */
	refused = r == SL_EPROTO || r == SL_ETOOBIG;
	LK_COUNT(l, ST_DROPS, 1);
out:
	free(rb.m);
	sli_frame_free(f);
	/* If the stage was canceled, its Cancel frame must still leave on
	 * this connection: let the cancel watcher write it first, then give
	 * the peer time to read it. */
	if (sl_ctx_err(l->ctx) != 0) {
		sl_waitgroup_wait(&l->cwg);
		lk_linger(c);
	} else if (refused) {
		lk_linger(c);
	}
	if (s != NULL) {
		sl_mutex_lock(&s->mu);
		if (s->conn == c) {
			s->conn = NULL;
			sli_conn_unref(c);
		}
		sl_mutex_unlock(&s->mu);
		lk_session_unref(s);
	}
	sli_conn_close(c);
	lk_forget_conn(l, c);
	sli_conn_unref(c);
	sl_waitgroup_done(&l->wg);
}

static void
lk_acceptor(void *arg)
{
	sl_link *l = arg;
	sli_aio  a = { 0 };

	if (sli_aio_init(&a) != 0)
		goto out;
	while (sl_ctx_err(l->lctx) == 0) {
		sli_aio_begin(&a);
		if (!lk_start_ep(l, NULL, l->lst, &a))
			break;
		int rv = sli_aio_end(&a, "link accept");
		if (rv == 0 && sl_ctx_err(l->lctx) != 0) {
			/* Accepted as we stop: nobody will serve it. */
			nng_stream *st = nng_aio_get_output(a.aio, 0);
			nng_stream_close(st);
			nng_stream_free(st);
			break;
		}
		if (rv == NNG_ECLOSED || sl_ctx_err(l->lctx) != 0)
			break;
		if (rv != 0) {
			(void) sl_sleep_ctx(l->lctx, 10 * SL_MILLISECOND);
			continue;
		}
		sli_conn  *c = sli_conn_new(nng_aio_get_output(a.aio, 0),
		    &l->lim);
		lk_rd_arg *ra = malloc(sizeof(*ra));
		if (c == NULL || ra == NULL) {
			free(ra);
			sli_conn_unref(c);
			continue;
		}
		atomic_store(&c->write_timeout_ms,
		    (int) (LK_HANDSHAKE(l) / SL_MILLISECOND));
		if (lk_track_conn(l, c) != 0) {
			free(ra);
			sli_conn_unref(c);
			continue;
		}
		ra->l = l;
		ra->c = c;
		sl_waitgroup_add(&l->wg, 1);
		if (sl_go(lk_reader, ra) != 0) {
			sl_waitgroup_done(&l->wg);
			free(ra);
			lk_forget_conn(l, c);
			sli_conn_unref(c);
		}
	}
out:
	sli_aio_fini(&a);
	sl_waitgroup_done(&l->wg);
}

/* ---- heartbeats and dead peers ------------------------------------------ */

static void
lk_ticker(void *arg)
{
	sl_link *l = arg;
	lk_wbuf  w = { 0 };

	for (;;) {
		size_t     n = 0;
		sli_conn **cs;
		/* Every heartbeat, or sooner when kicked (l->tick). */
		int        r = sl_chan_recv_ctx(l->tick, NULL, l->lctx,
		    sl_now() + l->o.heartbeat);

		if (r != 0 && r != SL_ETIMEDOUT)
			break;

		if (l->output && l->npeers > 1 && l->o.reassign_after >= 0)
			lk_reassign(l, &w);
		cs = lk_snapshot_conns(l, &n);

		for (size_t i = 0; i < n; i++) {
			sli_conn *c = cs[i];
			int64_t   now = sl_now();
			/* Silent only counts while we wait to read: a reader
			 * blocked on a full input channel is backpressure. */
			if (atomic_load(&c->hello) &&
			    atomic_load(&c->reading) &&
			    now - atomic_load(&c->last_rx) > l->o.peer_timeout) {
				lk_log(l, "nothing from %s for %" PRId64 " ms: "
				    "dropping the connection", c->peer,
				    (now - atomic_load(&c->last_rx)) /
				    SL_MILLISECOND);
				sli_conn_close(c);
			} else if (atomic_load(&c->hello) &&
			    now - atomic_load(&c->last_tx) >= l->o.heartbeat) {
				/* Not before our hello: the peer's handshake
				 * wants that as the first frame. */
				sli_frame     f;
				sli_heartbeat hb;
				sluice__link__frame__init(&f);
				sluice__link__heartbeat__init(&hb);
				hb.time_ns = (uint64_t) now;
				f.kind_case = SLUICE__LINK__FRAME__KIND_HEARTBEAT;
				f.heartbeat = &hb;
				(void) sli_conn_write(c, &f);
			}
			sli_conn_unref(c);
		}
		free(cs);
	}
	lk_wbuf_free(&w);
	sl_waitgroup_done(&l->wg);
}

/* ---- construction and teardown ------------------------------------------ */

static char *
lk_read_file(const char *path)
{
	FILE  *f = fopen(path, "rb");
	char  *buf = NULL;
	long   n;

	if (f == NULL)
		return (NULL);
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t) n + 1)) != NULL) {
		if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return (buf);
}

/* TLS for tls+tcp:// urls.  0 or SL_EINVAL (message printed). */
static int
lk_tls_setup(sl_link *l, bool server)
{
	nng_tls_config *cfg;
	int             rv;

	if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER :
	    NNG_TLS_MODE_CLIENT)) != 0) {
		lk_log(l, "TLS: %s", nng_strerror(rv));
		return (SL_EINVAL);
	}
	l->tls = cfg;
	if (l->o.tls_cert != NULL || l->o.tls_key != NULL) {
		char *cert = l->o.tls_cert ? lk_read_file(l->o.tls_cert) : NULL;
		char *key = l->o.tls_key ? lk_read_file(l->o.tls_key) : NULL;
		if (cert == NULL || key == NULL) {
			lk_log(l, "TLS: cannot read certificate '%s' or key "
			    "'%s'", l->o.tls_cert ? l->o.tls_cert : "(none)",
			    l->o.tls_key ? l->o.tls_key : "(none)");
			free(cert);
			free(key);
			return (SL_EINVAL);
		}
		rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
		free(cert);
		free(key);
		if (rv != 0) {
			lk_log(l, "TLS: bad certificate or key: %s",
			    nng_strerror(rv));
			return (SL_EINVAL);
		}
	} else if (server) {
		lk_log(l, "TLS: a tls+tcp:// input needs tls_cert and tls_key");
		return (SL_EINVAL);
	}
	if (l->o.tls_ca != NULL) {
		if ((rv = nng_tls_config_ca_file(cfg, l->o.tls_ca)) != 0) {
			lk_log(l, "TLS: bad CA file '%s': %s", l->o.tls_ca,
			    nng_strerror(rv));
			return (SL_EINVAL);
		}
		(void) nng_tls_config_auth_mode(cfg,
		    NNG_TLS_AUTH_MODE_REQUIRED);
	} else {
		if (!server)
			lk_log(l, "TLS: no tls_ca given: the server's "
			    "certificate is not verified");
		(void) nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	}
	if (!server && l->o.tls_server_name != NULL)
		(void) nng_tls_config_server_name(cfg, l->o.tls_server_name);
	return (0);
}

static bool
lk_is_tls(const char *url)
{
	return (strncmp(url, "tls+tcp://", 10) == 0);
}

static void lk_free_mem(sl_link *l);

/*
 * The stage's channel.  An input's holds at most a window, which the
 * sender's credit bounds in messages and bytes.  Nothing bounds the bytes
 * in an output's, so it is kept to one batch target: at 8192 messages of
 * 4 KiB it alone would hold 32 MiB.
 */
static size_t
lk_chan_cap(const sl_link *l)
{
	size_t n = l->o.window_msgs;

	if (l->output)
		n = n / 4 < l->lim.max_batch ? n / 4 : l->lim.max_batch;
	return (n > 0 ? n : 1);
}

int
sl_link_opts_check(const sl_link_opts *o, char *err, size_t errsz)
{
	char none[1];
	int  rv;

	if (err == NULL || errsz == 0) {
		err = none;
		errsz = sizeof(none);
	}
	if (o == NULL || o->stage == NULL || o->port == NULL ||
	    o->type == NULL || *o->stage == '\0' || *o->port == '\0' ||
	    *o->type == '\0') {
		snprintf(err, errsz, "link: options need stage, port and "
		    "payload type names");
		return (SL_EINVAL);
	}
	/* What the peer's hello check would refuse: the link could not
	 * even say hello, and would redial for ever. */
	if ((rv = sli_frame_check_names(o->stage, o->port, o->type, err,
	    errsz)) != 0)
		return (rv);
	/* A frame holds twice max_payload, and its length is announced
	 * and framed in 32 bits; the window sizes rings and channels. */
	if (o->max_payload > SL_LINK_PAYLOAD_MAX ||
	    o->window_msgs > SL_LINK_WINDOW_MAX) {
		snprintf(err, errsz, "link (stage '%s' port '%s'): %s of %zu "
		    "is over the limit of %zu", o->stage, o->port,
		    o->max_payload > SL_LINK_PAYLOAD_MAX ? "max_payload" :
		    "window_msgs", o->max_payload > SL_LINK_PAYLOAD_MAX ?
		    o->max_payload : (size_t) o->window_msgs,
		    o->max_payload > SL_LINK_PAYLOAD_MAX ?
		    (size_t) SL_LINK_PAYLOAD_MAX : (size_t) SL_LINK_WINDOW_MAX);
		return (SL_EINVAL);
	}
	return (0);
}

static int
lk_new(bool output, const sl_link_opts *o, sl_ctx *ctx, sl_link **out)
{
	sl_link *l;
	char     why[800];
	int      rv;

	*out = NULL;
	if ((rv = sl_link_opts_check(o, why, sizeof(why))) != 0) {
		fprintf(stderr, "sluice: %s\n", why);
		return (rv);
	}
	if (sl_goid() == 0) {
		fprintf(stderr, "sluice: link: must be created from a "
		    "goroutine (inside sl_main)\n");
		return (SL_ESTATE);
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (SL_ENOMEM);
	l->output = output;
	l->o = *o;
	l->stage = strdup(o->stage);
	l->port = strdup(o->port);
	l->type = strdup(o->type);
	l->o.stage = l->stage;
	l->o.port = l->port;
	l->o.type = l->type;
	l->o.tls_cert = lk_strdup(o->tls_cert);
	l->o.tls_key = lk_strdup(o->tls_key);
	l->o.tls_ca = lk_strdup(o->tls_ca);
	l->o.tls_server_name = lk_strdup(o->tls_server_name);
	if (l->o.window_msgs == 0)
		l->o.window_msgs = 8192;
	if (l->o.window_bytes == 0)
		l->o.window_bytes = 8u << 20;
	if (l->o.max_payload == 0)
		l->o.max_payload = SLI_PAYLOAD_MAX_DEFAULT;
	if (l->o.upstreams <= 0)
		l->o.upstreams = 1;
	if (l->o.heartbeat <= 0)
		l->o.heartbeat = 500 * SL_MILLISECOND;
	if (l->o.peer_timeout <= 0)
		l->o.peer_timeout = 5 * SL_SECOND;
	/* Timeouts go to NNG as int milliseconds, the handshake's doubled:
	 * a day is more than any peer should be waited for. */
	if (l->o.peer_timeout > 24 * 3600 * SL_SECOND)
		l->o.peer_timeout = 24 * 3600 * SL_SECOND;
	if (l->o.reassign_after == 0)
		l->o.reassign_after = 5 * SL_SECOND;
	/* A power of two, at least one word of bits. */
	if (l->o.dedup_horizon == 0)
		l->o.dedup_horizon = (uint64_t) 1 << 24;
	if (l->o.dedup_horizon < 64)
		l->o.dedup_horizon = 64;
	if (l->o.dedup_horizon > (uint64_t) 1 << 32)
		l->o.dedup_horizon = (uint64_t) 1 << 32;
	while (l->o.dedup_horizon & (l->o.dedup_horizon - 1))
		l->o.dedup_horizon &= l->o.dedup_horizon - 1;
	l->lim = sli_frame_limits_default;
	l->lim.max_payload = l->o.max_payload;
	if (l->lim.max_frame < 2 * l->o.max_payload + 4096)
		l->lim.max_frame = 2 * l->o.max_payload + 4096;
	l->incarnation = lk_random64();
	l->ctx = sl_ctx_retain(ctx != NULL ? ctx : sl_ctx_background());
	if (l->stage == NULL || l->port == NULL || l->type == NULL ||
	    sl_ctx_with_cancel(l->ctx, &l->lctx) != 0 ||
	    (l->ch = sl_chan_make(sizeof(sl_msg), lk_chan_cap(l))) == NULL ||
	    (l->kick = sl_chan_make(0, 1)) == NULL ||
	    (l->tick = sl_chan_make(0, 1)) == NULL ||
	    (l->done = sl_chan_make(0, 0)) == NULL) {
		lk_free_mem(l);
		return (SL_ENOMEM);
	}
	*out = l;
	return (0);
}

/* Starts fn as a link goroutine counted in l->wg. */
static int
lk_go(sl_link *l, sl_fn fn, void *arg)
{
	sl_waitgroup_add(&l->wg, 1);
	if (sl_go(fn, arg) != 0) {
		sl_waitgroup_done(&l->wg);
		return (SL_ENOMEM);
	}
	return (0);
}

static int
lk_start_common(sl_link *l)
{
	sl_waitgroup_add(&l->wg, 1);
	sl_waitgroup_add(&l->cwg, 1);
	if (sl_ctx_after_func(l->ctx, lk_on_cancel, l, &l->af) != 0) {
		sl_waitgroup_done(&l->cwg);
		sl_waitgroup_done(&l->wg);
		l->af = NULL;
		return (SL_ENOMEM);
	}
	return (lk_go(l, lk_ticker, l));
}

/*
 * False if url is an ipc:// (or unix://) path that holds something other
 * than a socket or a directory: NNG's listener removes what is at its
 * path when a connect there is refused (as it is by a regular file), so
 * it would delete the user's file.  A stale socket of a killed stage is
 * fine (NNG replaces it); the rest NNG's own error describes.
 */
static bool
lk_ipc_path_ok(const char *url)
{
	static const char *const schemes[] = { "ipc://", "unix://" };
	struct stat sb;

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);

		if (strncasecmp(url, schemes[i], n) == 0)
			return (lstat(url + n, &sb) != 0 ||
			    S_ISSOCK(sb.st_mode) || S_ISDIR(sb.st_mode));
	}
	return (true);
}

int
sl_link_input(const char *url, const sl_link_opts *opts, sl_ctx *ctx,
    sl_link **out)
{
	sl_link *l;
	int      r, rv;

	if (url == NULL || *url == '\0') {
		fprintf(stderr, "sluice: link: an input needs a url\n");
		return (SL_EINVAL);
	}
	if ((r = lk_new(false, opts, ctx, &l)) != 0)
		return (r);
	l->url = strdup(url);
	if (!lk_ipc_path_ok(url)) {
		lk_log(l, "cannot listen on '%s': not a socket, and listening "
		    "there would delete it", url);
		sl_link_free(l);
		return (SL_EINVAL);
	}
	if ((rv = nng_stream_listener_alloc(&l->lst, url)) != 0) {
		lk_log(l, "cannot listen on '%s': %s", url, nng_strerror(rv));
		sl_link_free(l);
		return (SL_EINVAL);
	}
	if (lk_is_tls(url)) {
		if ((r = lk_tls_setup(l, true)) != 0 ||
		    (rv = nng_stream_listener_set_ptr(l->lst,
		    NNG_OPT_TLS_CONFIG, l->tls)) != 0) {
			sl_link_free(l);
			return (SL_EINVAL);
		}
	}
	if ((rv = nng_stream_listener_listen(l->lst)) != 0) {
		lk_log(l, "cannot listen on '%s': %s", url, nng_strerror(rv));
		sl_link_free(l);
		return (rv == NNG_EADDRINUSE ? SL_ECONNREFUSED : SL_EINVAL);
	}
	if ((r = lk_start_common(l)) != 0 ||
	    (r = lk_go(l, lk_acceptor, l)) != 0) {
		sl_link_free(l);
		return (r);
	}
	*out = l;
	return (0);
}

/* False if url names a port no TCP peer can have (tcp://host:99999):
 * NNG takes it, and every dial would fail in silence. */
static bool
lk_port_ok(const char *url)
{
	nng_url *u;
	bool     ok = true;

	if (nng_url_parse(&u, url) != 0)
		return (true); /* not ours to judge: NNG said yes */
	if (u->u_port != NULL && *u->u_port != '\0') {
		char *end;
		long  n;

		errno = 0;
		n = strtol(u->u_port, &end, 10);
		ok = *end == '\0' && errno == 0 && n >= 1 && n <= 65535 &&
		    u->u_port[0] >= '0' && u->u_port[0] <= '9';
	}
	nng_url_free(u);
	return (ok);
}

int
sl_link_output(const char *const *urls, size_t n, const sl_link_opts *opts,
    sl_ctx *ctx, sl_link **out)
{
	sl_link *l;
	int      r, rv;

	if (urls == NULL || n == 0) {
		fprintf(stderr, "sluice: link: an output needs at least one "
		    "url\n");
		return (SL_EINVAL);
	}
	if ((r = lk_new(true, opts, ctx, &l)) != 0)
		return (r);
	if ((l->peers = calloc(n, sizeof(*l->peers))) == NULL) {
		sl_link_free(l);
		return (SL_ENOMEM);
	}
	l->npeers = n;
	for (size_t i = 0; i < n; i++) {
		lk_peer *p = &l->peers[i];

		/* The input would take the second for the first one
		 * reconnecting: their streams would be mixed up. */
		for (size_t j = 0; j < i && urls[i] != NULL; j++) {
			if (urls[j] != NULL && strcmp(urls[j], urls[i]) == 0) {
				lk_log(l, "url '%s' given twice", urls[i]);
				sl_link_free(l);
				return (SL_EINVAL);
			}
		}
		p->link = l;
		p->cap = l->o.window_msgs;
		p->mask = lk_ring_mask(p->cap);
		p->next_seq = 1;
		p->down_since = sl_now();
		p->url = urls[i] ? strdup(urls[i]) : NULL;
		p->ring = calloc(p->mask + 1, sizeof(*p->ring));
		if (p->url == NULL || p->ring == NULL) {
			sl_link_free(l);
			return (SL_ENOMEM);
		}
		if ((rv = nng_stream_dialer_alloc(&p->dialer, p->url)) != 0 ||
		    !lk_port_ok(p->url)) {
			lk_log(l, "cannot dial '%s': %s", p->url, rv != 0 ?
			    nng_strerror(rv) : "port not in 1-65535");
			sl_link_free(l);
			return (SL_EINVAL);
		}
		if (lk_is_tls(p->url)) {
			if ((l->tls == NULL && lk_tls_setup(l, false) != 0) ||
			    nng_stream_dialer_set_ptr(p->dialer,
			    NNG_OPT_TLS_CONFIG, l->tls) != 0) {
				sl_link_free(l);
				return (SL_EINVAL);
			}
		}
	}
	if ((r = lk_start_common(l)) != 0 || (r = lk_go(l, lk_pump, l)) != 0) {
		sl_link_free(l);
		return (r);
	}
	for (size_t i = 0; i < n; i++) {
		if ((r = lk_go(l, lk_dialer, &l->peers[i])) != 0) {
			sl_link_free(l);
			return (r);
		}
	}
	*out = l;
	return (0);
}

sl_chan *
sl_link_chan(sl_link *l)
{
	return (l != NULL ? l->ch : NULL);
}

int
sl_link_send(sl_link *l, sl_msg *m)
{
	if (m->len > l->o.max_payload) {
		lk_log(l, "message of %zu bytes refused: the limit is %zu "
		    "bytes (max_payload)", m->len, l->o.max_payload);
		return (SL_ETOOBIG);
	}
	return (sl_chan_send_ctx(l->ch, m, l->ctx, SL_FOREVER));
}

int
sl_link_recv(sl_link *l, sl_msg *m)
{
	return (sl_chan_recv_ctx(l->ch, m, l->ctx, SL_FOREVER));
}

int
sl_link_wait(sl_link *l, sl_ctx *ctx)
{
	sl_case cs[2] = {
		SL_CASE_RECV(l->done, NULL),
		SL_CASE_RECV(sl_ctx_done(l->ctx), NULL),
	};
	int     chosen, r;

	r = sl_select(cs, 2, ctx, SL_FOREVER, &chosen);
	if (r != 0)
		return (r);
	if (chosen == 0 && sl_ctx_err(l->ctx) == 0)
		return (0);
	/* Completed and canceled at once: completion wins. */
	if (atomic_load(&l->done_closed))
		return (0);
	return (SL_ECANCELED);
}

void
sl_link_get_stats(sl_link *l, sl_link_stats *st)
{
	st->msgs = atomic_load(&l->st[ST_MSGS]);
	st->bytes = atomic_load(&l->st[ST_BYTES]);
	st->batches = atomic_load(&l->st[ST_BATCHES]);
	st->resent = atomic_load(&l->st[ST_RESENT]);
	st->dup_seq = atomic_load(&l->st[ST_DUPSEQ]);
	st->dup_lineage = atomic_load(&l->st[ST_DUPLIN]);
	st->bad_frames = atomic_load(&l->st[ST_BAD]);
	st->refused = atomic_load(&l->st[ST_REFUSED]);
	st->connects = atomic_load(&l->st[ST_CONNECTS]);
	st->hellos = atomic_load(&l->st[ST_HELLOS]);
	st->drops = atomic_load(&l->st[ST_DROPS]);
	st->reassigned = atomic_load(&l->st[ST_REASSIGNED]);
	st->dedup_forgotten = atomic_load(&l->st[ST_DEDUP_FORGOT]);
}

/* Frees what lk_new and the constructors allocated (no goroutines). */
static void
lk_free_mem(sl_link *l)
{
	sl_msg m;

	for (size_t i = 0; i < l->npeers; i++) {
		lk_peer *p = &l->peers[i];
		if (p->ring != NULL) {
			for (uint64_t s = p->acked + 1; s < p->next_seq; s++)
				sl_msg_drop(&p->ring[s & p->mask]);
		}
		free(p->ring);
		if (p->dialer != NULL)
			nng_stream_dialer_free(p->dialer);
		sli_conn_unref(p->conn);
		free(p->url);
	}
	free(l->peers);
	while (l->sessions != NULL) {
		lk_session *s = l->sessions;
		l->sessions = s->next;
		sl_mutex_lock(&s->mu);
		s->link = NULL;
		s->stale = true;
		sl_mutex_unlock(&s->mu);
		lk_session_unref(s);
	}
	if (l->ch != NULL) {
		/* Not finished: the upstream resends them. */
		while (sl_chan_tryrecv(l->ch, &m) == 0)
			sl_msg_drop(&m);
	}
	for (size_t i = 0; i < l->nconns; i++)
		sli_conn_unref(l->conns[i]);
	free(l->conns);
	for (size_t i = 0; i < l->nlinsets; i++)
		sli_seen_fini(&l->linsets[i].seen);
	free(l->linsets);
	if (l->lst != NULL)
		nng_stream_listener_free(l->lst);
	if (l->tls != NULL)
		nng_tls_config_free(l->tls);
	sl_chan_release(l->ch);
	sl_chan_release(l->kick);
	sl_chan_release(l->tick);
	sl_chan_release(l->done);
	sl_ctx_release(l->lctx);
	sl_ctx_release(l->ctx);
	free((char *) l->o.tls_cert);
	free((char *) l->o.tls_key);
	free((char *) l->o.tls_ca);
	free((char *) l->o.tls_server_name);
	free(l->stage);
	free(l->port);
	free(l->type);
	free(l->url);
	free(l);
}

/* Sends the acks still owed, so that a graceful stop does not make the
 * upstream resend what this stage already finished. */
static void
lk_flush_acks(sl_link *l)
{
	size_t     n = 0, cap = 0;
	sli_conn **cs = NULL;
	uint64_t  *acks = NULL;

	sl_mutex_lock(&l->mu);
	for (lk_session *s = l->sessions; s != NULL; s = s->next)
		cap++;
	cs = calloc(cap + 1, sizeof(*cs));
	acks = calloc(cap + 1, sizeof(*acks));
	for (lk_session *s = l->sessions; s != NULL && cs && acks;
	    s = s->next) {
		sl_mutex_lock(&s->mu);
		if (s->conn != NULL && s->done > s->ack_sent) {
			acks[n] = s->ack_sent = s->done;
			cs[n++] = sli_conn_ref(s->conn);
		}
		sl_mutex_unlock(&s->mu);
	}
	sl_mutex_unlock(&l->mu);
	for (size_t i = 0; i < n; i++) {
		(void) lk_send_ack(cs[i], acks[i]);
		sli_conn_unref(cs[i]);
	}
	free(cs);
	free(acks);
}

void
sl_link_free(sl_link *l)
{
	if (l == NULL)
		return;
	if (!l->output)
		lk_flush_acks(l);
	if (l->lctx != NULL)
		sl_ctx_cancel(l->lctx);
	if (l->af != NULL) {
		if (sl_ctx_stop(l->af)) {
			sl_waitgroup_done(&l->cwg);
			sl_waitgroup_done(&l->wg);
		} else {
			/* The stage was canceled: let the Cancel frames go
			 * out before the connections close (each write is
			 * bounded by peer_timeout). */
			sl_waitgroup_wait(&l->cwg);
			/* Let peers read the Cancel before we close (see
			 * lk_linger): wait for them to close first. */
			for (int64_t until = sl_now() + LK_LINGER;
			    sl_now() < until; ) {
				sl_mutex_lock(&l->mu);
				size_t n = l->nconns;
				sl_mutex_unlock(&l->mu);
				if (n == 0)
					break;
				sl_sleep(5 * SL_MILLISECOND);
			}
		}
	}
	l->af = NULL;
	sli_lock(&l->eplk);
	l->epclosed = true;
	sli_unlock(&l->eplk);
	if (l->lst != NULL)
		nng_stream_listener_close(l->lst);
	for (size_t i = 0; i < l->npeers; i++)
		if (l->peers[i].dialer != NULL)
			nng_stream_dialer_close(l->peers[i].dialer);
	sl_mutex_lock(&l->mu);
	l->stopping = true;
	for (size_t i = 0; i < l->npeers; i++)
		if (l->peers[i].conn != NULL)
			sli_conn_close(l->peers[i].conn);
	for (lk_session *s = l->sessions; s != NULL; s = s->next) {
		sl_mutex_lock(&s->mu);
		if (s->conn != NULL)
			sli_conn_close(s->conn);
		sl_mutex_unlock(&s->mu);
	}
	for (size_t i = 0; i < l->nconns; i++)
		sli_conn_close(l->conns[i]);
	sl_mutex_unlock(&l->mu);
	sl_waitgroup_wait(&l->wg);
	lk_free_mem(l);
}
