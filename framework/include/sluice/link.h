/*
 * sluice/link.h — links: Go channel semantics between stage processes.
 *
 * A link joins an output port of an upstream stage to an input port of a
 * downstream stage over NNG (ipc://, tcp:// or tls+tcp://).  To the code
 * in a stage a link is a channel of sl_msg:
 *
 *	upstream:   sl_chan_send(sl_link_chan(out), &msg) ... sl_chan_close()
 *	downstream: while (sl_chan_recv(sl_link_chan(in), &msg) == 0) {
 *	                ...; sl_msg_done(&msg);
 *	            }
 *
 * What the link adds to a plain channel (docs/link-protocol.md has the
 * protocol and the exact guarantees):
 *  - backpressure: credit windows in messages and bytes; a slow consumer
 *    slows the producer and no queue grows without bound;
 *  - end of stream: closing the output channel delivers everything sent
 *    before, then the input channel closes (after all its upstreams);
 *  - cancellation both ways: the link watches the stage's context and
 *    carries a cancel with its cause to the peers, and cancels the stage's
 *    context when a peer cancels;
 *  - no loss: the upstream keeps each message until the downstream called
 *    sl_msg_done on it, and sends it again after a reconnect;
 *  - no duplicates: resent messages the receiver already has are dropped
 *    by sequence number, and an input with dedup_lineage drops messages
 *    whose lineage (origin source + seq) it has already seen.
 *
 * Ownership of sl_msg: a message sent into an output channel belongs to
 * the link from then on; one received from an input channel belongs to
 * the receiver, who must call sl_msg_done (acknowledge and free) or
 * sl_msg_derive + send the derived message (then the input message is
 * acknowledged once the derived one is).
 */
#ifndef SLUICE_LINK_H
#define SLUICE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/chan.h"
#include "sluice/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_link sl_link;
typedef struct sli_delivery sli_delivery;
typedef struct sli_payload sli_payload;

/* One message crossing a link.  Copied by value through channels. */
typedef struct sl_msg {
	void         *data;     /* packed protobuf payload: from
	                           sl_msg_alloc (or malloc'd) by its sender;
	                           in a received message it belongs to the
	                           message until sl_msg_done or sl_msg_derive
	                           (never free it yourself) */
	size_t        len;      /* its length in bytes */
	uint64_t      lin_src;  /* lineage: origin source id (0: none) */
	uint64_t      lin_seq;  /* lineage: sequence number at the origin */
	sli_delivery *parent;   /* internal: the input session to
	                           acknowledge once this message is finished
	                           with (received, or via sl_msg_derive) */
	uint64_t      parent_seq; /* internal: its sequence number there */
	sli_payload  *block;    /* internal: the buffer data lies in, shared
	                           by the messages of one received batch or
	                           one sl_msg_alloc slab (NULL: data was
	                           malloc'd on its own) */
} sl_msg;

/*
 * Makes m (no lineage) own an uninitialised payload buffer of len bytes,
 * m->data, to pack into; m->len is len, and may be lowered once packed.
 * Much cheaper than malloc for small payloads: they are carved one after
 * another from a slab of the calling thread, which is freed when every
 * message carved from it was (so a payload kept for long keeps its slab,
 * 64 KiB, alive).  0 or SL_ENOMEM.
 */
int sl_msg_alloc(sl_msg *m, size_t len);

/* Makes m own a copy of data[0..len) (no lineage).  0 or SL_ENOMEM. */
int sl_msg_init(sl_msg *m, const void *data, size_t len);

/*
 * For 1:1 stages: makes out (whose data the caller set) a result of in:
 * out takes in's lineage, and in is acknowledged upstream only when out
 * has been acknowledged downstream.  in's payload is freed; in must not
 * be used afterwards except to read its lineage.
 */
void sl_msg_derive(sl_msg *out, sl_msg *in);

/* Finished with a received message: acknowledge it and free its data.
 * Also frees a message that was never sent.  NULL data is fine. */
void sl_msg_done(sl_msg *m);
/* sl_msg_done on m[0..n), cheaper than one call per message. */
void sl_msg_done_many(sl_msg *m, size_t n);

/*
 * Lets go of m without finishing it: frees its data, but a received
 * message (or the input a result was derived from, sl_msg_derive) is not
 * acknowledged upstream, which resends it to this stage's successor.
 * For a stage that stops before it has handled a message, or before it
 * could send a result (sl_msg_done would have the input counted as
 * delivered: lost).  NULL data is fine.
 */
void sl_msg_drop(sl_msg *m);

/* The largest max_payload and window_msgs a link takes (SL_EINVAL above:
 * a frame holds up to twice max_payload, and frame lengths are 32-bit). */
#define SL_LINK_PAYLOAD_MAX ((size_t) 1 << 30)
#define SL_LINK_WINDOW_MAX  ((uint32_t) 1 << 20)

typedef struct sl_link_opts {
	const char *stage;        /* this stage's name (unique per replica) */
	const char *port;         /* this port's name, e.g. "out", "in" */
	const char *type;         /* payload protobuf full type name */
	uint32_t    window_msgs;  /* credit window in messages; default 8192,
	                             at most SL_LINK_WINDOW_MAX */
	uint64_t    window_bytes; /* credit window in payload bytes; 8 MiB */
	size_t      max_payload;  /* largest payload accepted; default 4 MiB,
	                             at most SL_LINK_PAYLOAD_MAX.  Give both
	                             ends of a link the same: the hello does
	                             not carry it, so an output with a higher
	                             one may send what its input refuses.
	                             That fails the output's stage (its ctx
	                             is canceled with SL_ETOOBIG, the cause
	                             naming the input's limit) rather than
	                             have it send the message again after
	                             every reconnect; the input logs it and
	                             counts it in bad_frames */
	int         upstreams;    /* input: upstreams that must close before
	                             the input closes; default 1.  Once they
	                             have, a sender that comes or sends
	                             after that is refused: it fails with
	                             SL_ECLOSED (see sl_link_output) */
	bool        dedup_lineage; /* input: drop already-seen lineages */
	uint64_t    dedup_horizon; /* input: lineage seqs per source tracked
	                              above the contiguous mark (1 bit each);
	                              older ones are delivered unchecked;
	                              default 2^24 (2 MiB); rounded down to a
	                              power of two */
	uint64_t    source_id;    /* output of a source: lineage source id
	                             stamped on messages without lineage (0:
	                             none) */
	int64_t     heartbeat;    /* ns between heartbeats; default 500 ms */
	int64_t     peer_timeout; /* ns of silence that drops a peer; 5 s
	                             (at most a day); the hello exchange of
	                             a new connection may take twice this */
	int64_t     reassign_after; /* output with several urls: ns a replica
	                             may stay away before its unacked messages
	                             go to the others (and, once the stream
	                             ended, before it is no longer waited
	                             for); default 5 s; negative: never */
	const char *tls_cert;     /* tls+tcp://: PEM certificate file */
	const char *tls_key;      /* tls+tcp://: PEM private key file */
	const char *tls_ca;       /* tls+tcp://: PEM CA file to verify peers */
	const char *tls_server_name; /* tls+tcp:// dialer: expected name */
} sl_link_opts;

/*
 * Checks opts as sl_link_input and sl_link_output do, without a scheduler
 * (for a command line, before sl_main): the three names set, each at most
 * 256 bytes of UTF-8 without NUL, the type a protobuf full name
 * ("pkg.Msg"), the limits in range.  0, or SL_EINVAL with a line saying
 * why in err (errsz bytes; err may be NULL).
 */
int sl_link_opts_check(const sl_link_opts *opts, char *err, size_t errsz);

/*
 * An input port listening on url.  ctx is the stage's context: the link
 * cancels it when an upstream cancels, and tells upstreams when it is
 * canceled.  Returns 0 and *out, or SL_EINVAL (bad url/options, with a
 * message on stderr), SL_ECONNREFUSED (address in use), SL_ENOMEM.
 * Must be called from a goroutine.
 */
int sl_link_input(const char *url, const sl_link_opts *opts, sl_ctx *ctx,
    sl_link **out);

/*
 * An output port dialing n downstream urls (replicas of one downstream
 * stage, or one url); messages are spread by available credit.  Dials in
 * the background and keeps redialing; sends block on credit meanwhile.
 * A downstream still unreached after peer_timeout is reported on stderr
 * with the last error ("cannot reach 'URL' for 5.3 s (12 tries, last:
 * Connection refused); still trying"), again each time the outage has
 * doubled (at most every 10 minutes), and once reached ("reached 'URL'
 * after 42.0 s").  Returns 0 and *out, or SL_EINVAL (a url NNG cannot
 * dial, a port not in 1-65535, or options out of range, with a message
 * on stderr), SL_ENOMEM.
 */
int sl_link_output(const char *const *urls, size_t n,
    const sl_link_opts *opts, sl_ctx *ctx, sl_link **out);
/*
 * A downstream that refuses this output (a configuration error that
 * redialing cannot mend: another payload type or protocol version, an
 * input whose stream already ended, a message over its max_payload)
 * cancels
 * ctx with the refusal's code and a cause naming the downstream and its
 * reason, e.g. "refused by ipc:///tmp/sink.sock: ...".
 */

/* The channel of sl_msg: receive from an input, send to an output (and
 * close it to end the stream).  Owned by the link. */
sl_chan *sl_link_chan(sl_link *l);

/*
 * Conveniences: sl_chan_send_ctx / sl_chan_recv_ctx on the link's channel
 * with the stage context given at creation, so a canceled stage (or a
 * downstream that canceled it) makes them return SL_ECANCELED.  send takes
 * ownership of m on success only, and refuses a payload above max_payload
 * with SL_ETOOBIG (a message put into the channel directly past that
 * check is dropped by the link with a log line and counted in
 * bad_frames).
 */
int sl_link_send(sl_link *l, sl_msg *m);
int sl_link_recv(sl_link *l, sl_msg *m);

/*
 * Output: waits until everything sent was acknowledged and the stream
 * end (channel closed) reached every downstream, or ctx is done.  Input:
 * waits until the input channel closed.  0, SL_ECANCELED (with the cause
 * in the stage context), or sl_ctx_err(ctx).
 */
int sl_link_wait(sl_link *l, sl_ctx *ctx);

/* Stops the link and frees it; messages not yet acknowledged are lost
 * to this process (they are resent to its successor).  NULL is fine. */
void sl_link_free(sl_link *l);

/* Counters, for metrics and tests. */
typedef struct sl_link_stats {
	uint64_t msgs;          /* messages sent (output) / delivered (input) */
	uint64_t bytes;         /* payload bytes likewise */
	uint64_t batches;       /* data frames */
	uint64_t resent;        /* output: messages sent again after a drop */
	uint64_t dup_seq;       /* input: duplicates dropped by sequence */
	uint64_t dup_lineage;   /* input: duplicates dropped by lineage */
	uint64_t bad_frames;    /* malformed / oversized / undecodable, or
	                           against the protocol (e.g. a message past
	                           its sender's Close) */
	uint64_t refused;       /* connections refused (type, version, an
	                           input whose stream already ended) */
	uint64_t connects;      /* connections made or accepted */
	uint64_t hellos;        /* of those, the ones through the hello
	                           exchange: ready to carry messages (on an
	                           output, its replica takes work from then) */
	uint64_t drops;         /* connections dropped */
	uint64_t reassigned;    /* output: messages of a replica that stayed
	                           away, given to the other replicas */
	uint64_t dedup_forgotten; /* input: lineages too far behind the
	                           dedup horizon to check, delivered */
} sl_link_stats;

void sl_link_get_stats(sl_link *l, sl_link_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_LINK_H */
