/*
 * test_chaos_fd.c — a randomized, seeded stress test of the goroutine-aware
 * descriptor calls (sluice/fd.h): sl_fd_wait, sl_read, sl_write,
 * sl_accept, sl_connect and sl_fd_close on many pipes, socketpairs and
 * loopback TCP connections at once, with the exact outcome of every call
 * checked against fd.h, not just "it did not crash".
 *
 * Why: test_fd.c pins down one interleaving per case.  A deadline or a
 * cancellation firing while the poller readies the same wait, a partial
 * write cut short half-way, a descriptor closed under a parked goroutine,
 * hundreds of descriptors armed at once on one or two workers: these
 * show up only when many kinds of operation meet at random.
 *
 * What one round does (each case runs ROUNDS of them, fresh descriptors
 * each, with 1 or 2 workers):
 *
 *   dial     N_TCP loopback connections made with sl_connect by dialer
 *            goroutines and a plain thread, taken with sl_accept by two
 *            acceptors, both sides under random deadlines and contexts
 *            (past, near, far; cancelled by another goroutine; timing
 *            out).  A connect that gave up is closed and retried.  Each
 *            dialer's first 8 bytes name its connection: every connection
 *            that sl_connect reported made is accepted exactly once, and
 *            accepted sockets without a name are no more than the connects
 *            that gave up after trying.  sl_accept returns non-blocking,
 *            close-on-exec descriptors and *fd -1 on every error.
 *
 *   streams  N_PIPE pipes, N_UNIX socketpairs and the TCP connections
 *            carry one stream per direction: a few hundred descriptors, a
 *            writer and a reader per stream, all goroutines but
 *            N_THREADS plain pthreads.  A writer sends its stream's bytes
 *            (a seeded pattern, different for every stream) in random
 *            chunks of 1 byte to 256 KiB, so writes fill the kernel's
 *            buffers and park; a reader reads with random buffer sizes.
 *            Both mix sl_read / sl_write with sl_fd_wait followed by a
 *            plain read(2) / write(2), pauses, and calls with bad
 *            arguments, each call under a random deadline or context (a
 *            third of the streams are "calm": no deadline or context that
 *            can end a wait).  Checked for every call: the result is one
 *            the call may give here (fd.h), a timeout comes no earlier than
 *            its deadline, a context error is the context's, a wait that
 *            was over before the call fails with exactly that error and
 *            moves nothing; sl_write's *n is len on success and less on
 *            error, sl_read's *n is 0 on error.  The reader checks every
 *            byte against the stream's pattern at its position (nothing
 *            lost, duplicated or invented), and at the end it has received
 *            exactly the bytes the writer reported written (the sum of *n,
 *            partial counts alongside errors included), then end of file;
 *            end of file never comes before the writer is done; and
 *            reading again still says end of file.
 *
 *   ready    When sl_fd_wait says an end is ready, read(2) or write(2)
 *            on it does not say EAGAIN: one party only reads and one only
 *            writes each end, so nobody else can have taken the data or
 *            the room (fd.h).  This found stale readiness: an event the
 *            poller took before the party consumed the data itself, or
 *            before the other direction's party re-armed a socket's
 *            shared registration, readied the next wait for nothing.
 *
 *   closes   Some ends are closed under their parties at random moments:
 *            by the coordinator with sl_fd_close (not under TSan, which
 *            rightly calls closing a descriptor that another thread is
 *            inside read(2) on a race), or by the end's only party itself.
 *            A party whose own end is closed gets SL_ECLOSED or SL_EBADF
 *            and stops; a writer whose reader's end is gone gets
 *            SL_ESYSTEM with EPIPE or ECONNRESET (SIGPIPE is ignored, as
 *            fd.h asks: the runtime leaves it alone), never a hang; a
 *            reader whose writer's end is gone gets end of file (or
 *            ECONNRESET on a socket) after exactly the bytes written
 *            (for TCP, whose close may reset what was still in flight,
 *            a prefix of them).  The errors come only after the close.
 *
 *   victims  Waits that nothing but sl_fd_close can end: sl_read and
 *            sl_fd_wait on an empty pipe and socketpair, sl_write on a full
 *            pipe, sl_fd_wait for both directions on a full socketpair,
 *            sl_read and sl_write together on another, sl_accept on an idle
 *            listener, sl_connect to a listener whose backlog is full, a
 *            thread in sl_read; some with a live context or a far
 *            deadline.  Once each is seen queued on its descriptor (from
 *            the epoll set's /proc fdinfo, see victims_scan),
 *            sl_fd_close at a random moment must end it with SL_ECLOSED:
 *            *n 0 for reads, for writes exactly what went in (the other
 *            end is drained to check), *fd -1 for accept.  And one split
 *            victim: a reader and a writer queued on one full socketpair
 *            end; room made for the writer must wake the writer (0) and
 *            not the reader, which only the close ends.
 *
 *   crowd    CROWD waiters for reading one pipe (one a thread) and CROWD
 *            for writing to one full socketpair end, with nothing that
 *            ends their waits but readiness: once the coordinator writes a
 *            byte and makes room, every one returns 0 ("readiness wakes
 *            every waiter of that direction").
 *
 *   probes   Waits that only a deadline or a context can end (idle pipe,
 *            idle listener, full pipe; goroutines and a thread) must end
 *            with exactly that error, not before the deadline, and move
 *            nothing.
 *
 * Every party must finish: a watchdog thread reports a phase in which no
 * party completed an operation for HUNG, with every goroutine's wait, and
 * aborts.  Every descriptor closed by a party is closed for real
 * afterwards; /proc/self/fd holds as many entries after each round, and
 * after sl_main, as before; calls with bad descriptors and NULL pointers
 * return their documented errors, also with no scheduler running.
 *
 * The seed decides the kinds of streams, their sizes, who is a thread,
 * what gets closed and when, and each party's sequence of operations (the
 * interleaving is up to the machine).  A failure prints the seed, round
 * and party; SLUICE_CHAOS_SEED=<number> runs every case with that seed
 * instead of the built-in ones, SLUICE_CHAOS_SEED=random with a new one
 * (printed).  The bytes carried scale with SLUICE_TEST_SCALE (valgrind
 * runs 2% of them); under TSan they are a third, and the streams a
 * quarter (TSan starts a goroutine slowly); writers also stop at a
 * wall-clock cap, so a slow build does less, not worse.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "sltest.h"

enum {
	N_PIPE = 64,          /* pipes per round: a stream each */
	N_UNIX = 32,          /* socketpairs: a stream each way */
	N_TCP = 24,           /* loopback TCP connections: a stream each way */
	N_THREADS = 2,        /* stream parties that are plain pthreads */
	N_DIALERS = 4,        /* dialer goroutines (plus one thread) */
	N_ACCEPTORS = 2,      /* acceptor goroutines */
	N_PROBES = 5,         /* waits only a deadline or context ends */
	PROBE_WAITS = 12,     /* waits per probe and round */
	VIC_WAITERS = 2,      /* most waiters of one victim */
	CROWD = 5,            /* waiters of one direction on one descriptor */
	ROUNDS = 3,           /* rounds per case: fresh descriptors each */
	MAX_CHUNK = 256 * 1024, /* largest read or write */
	MAX_QUOTA = 1 << 20,  /* most bytes of one stream, before scaling */
	MAX_OPS = 20000,      /* operations of one writer, whatever sizes */
	VIC_WRITE = 100000,   /* bytes a victim writes into a full pipe */
	PRINT_MAX = 4,        /* failures printed per check and round */
	LINES_MAX = 4096,     /* more than the lines of this file */
	TSAN_DIVISOR = 3,     /* fewer bytes under TSan */
	TSAN_STREAMS = 4,     /* and fewer streams: a goroutine takes TSan
	                         ~10 ms to start */
};

/* The stream pattern repeats after PERIOD bytes (a prime, so no chunk
 * size lines up with it); pat holds MAX_CHUNK more so that any chunk is
 * one contiguous slice. */
#define PERIOD 1048573u

#define ROUND_CAP (1500 * SL_MILLISECOND) /* writers stop by this */
#define HUNG      (45 * SL_SECOND)  /* no progress this long: hung */
#define FAR       (3600 * SL_SECOND) /* a deadline that never comes */
#define TAG_MAGIC UINT32_C(0x5eedfd00)

/* Bit of an error code in an "allowed results" mask. */
#define B(e) (1u << (unsigned) (e))
#define WAIT_ERRS (B(SL_ETIMEDOUT) | B(SL_ECANCELED) | B(SL_EDEADLINE))

/* Counters of a round, summed over a case for the summary line. */
enum {
	C_WRITTEN,   /* bytes written, all streams */
	C_READ,      /* bytes read, all streams */
	C_CALLS,     /* sl_read, sl_write and sl_fd_wait calls of streams */
	C_TIMEDOUT,  /* SL_ETIMEDOUT */
	C_CANCELED,  /* SL_ECANCELED */
	C_DEADLINE,  /* SL_EDEADLINE */
	C_EXPIRED,   /* waits over before the call, failed at once */
	C_PARTIAL,   /* sl_write cut short after some bytes */
	C_CLOSED,    /* SL_ECLOSED */
	C_BADF,      /* SL_EBADF (own end closed before the call) */
	C_EPIPE,     /* EPIPE / ECONNRESET to a writer */
	C_RESET,     /* ECONNRESET to a reader */
	C_EOF,       /* ends of file */
	C_READY,     /* sl_fd_wait said ready, then read(2) / write(2) */
	C_KILLS,     /* ends closed under their parties */
	C_VICTIMS,   /* victim waits ended by sl_fd_close */
	C_PROBES,    /* probe waits */
	C_DIALS,     /* sl_connect calls */
	C_ABORTED,   /* ... that gave up after trying */
	C_TAGLESS,   /* accepted connections whose dialer gave up */
	C_BAD,       /* calls with bad arguments */
	C_N
};

/* ---- the parties --------------------------------------------------------- */

struct round;
struct stream;
struct victim;
struct probe;
struct agent;

typedef void (*agent_fn)(struct agent *);

/* One party of a round: a goroutine or a plain thread. */
struct agent {
	struct round  *rd;       /* the round */
	agent_fn       fn;       /* its body */
	char           name[48]; /* for messages */
	int            slot;     /* its slot for the canceller */
	bool           thread;   /* a plain pthread */
	uint64_t       rng;      /* generator state */
	pthread_t      th;       /* the thread, if thread */
	struct stream *s;        /* stream parties: the stream */
	struct victim *v;        /* victims: the victim */
	struct probe  *p;        /* probes: the probe */
	int            idx;      /* dialer, acceptor or waiter index */
};

/* Kinds of descriptor pair, and what becomes of an end. */
enum { K_PIPE, K_UNIX, K_TCP };
enum { E_OPEN, E_KILLED, E_CLOSED };
enum { KILL_NONE, KILL_SELF, KILL_FOREIGN };

/* One descriptor carrying streams. */
struct end {
	int         fd;        /* the descriptor */
	int         kind;      /* K_PIPE, K_UNIX or K_TCP */
	atomic_int  state;     /* E_OPEN, then E_KILLED or E_CLOSED */
	atomic_int  users;     /* parties still using it */
	int         kill;      /* KILL_*: closed under its parties, by whom */
	double      kill_at;   /* when: this fraction of the work (or cap) */
	bool        kill_tried; /* the coordinator tried (KILL_FOREIGN) */
};

/* How a writer and a reader ended. */
enum { W_RUNNING, W_DONE, W_STOPPED };
enum { R_RUNNING, R_EOF, R_RESET, R_CLOSED, R_BROKEN };

/* One direction of a pipe, socketpair or connection. */
struct stream {
	int              id;       /* index in rd->st */
	int              kind;     /* K_PIPE, K_UNIX or K_TCP */
	struct end      *w;        /* the end it is written to */
	struct end      *r;        /* the end it is read from */
	uint32_t         off;      /* where its bytes start in pat */
	uint64_t         quota;    /* bytes the writer means to send */
	size_t           wmax;     /* largest write */
	size_t           rmax;     /* largest read */
	bool             calm;     /* no wait that a deadline or ctx ends */
	_Atomic uint64_t written;  /* the writer's sum of *n so far */
	atomic_int       wdone;    /* W_*: set before the writer closes */
	_Atomic uint64_t received; /* bytes the reader took */
	int              rend;     /* R_*: how the reader ended */
	bool             corrupt;  /* a byte was wrong: stop comparing */
	struct agent     writer;   /* its parties */
	struct agent     reader;
};

/* What a victim is blocked in. */
enum {
	V_READ,       /* sl_read, empty pipe */
	V_WAIT_R,     /* sl_fd_wait read, empty socketpair */
	V_WRITE,      /* sl_write, full pipe */
	V_WAIT_RW,    /* sl_fd_wait read|write, full socketpair */
	V_ACCEPT,     /* sl_accept, idle listener */
	V_CONNECT,    /* sl_connect, listener with a full backlog */
	V_MULTI,      /* sl_read and sl_write, full socketpair */
	V_THREAD,     /* a plain thread in sl_read, empty pipe */
	V_SPLIT,      /* sl_fd_wait read, and write until room is made */
	V_KINDS
};

/* Waits that only sl_fd_close can end (and, for V_SPLIT's writer, room
 * made by the coordinator). */
struct victim {
	int              what;      /* V_* */
	int              fd;        /* closed under the waiters */
	int              other;     /* the pair's other end, or -1 */
	int              lfd;       /* V_CONNECT: the full listener */
	int              filler;    /* V_CONNECT: what fills its backlog */
	struct sockaddr_in addr;    /* V_CONNECT: where it connects */
	size_t           prefill;   /* bytes in it before (full ones) */
	sl_ctx          *ctx;       /* a live context for the waits, or NULL */
	int64_t          deadline;  /* SL_FOREVER or far away */
	int              nwait;     /* waiters */
	uint32_t         want[VIC_WAITERS]; /* epoll events each one arms */
	int              nstarted;  /* waiters started (coordinator) */
	int              rv[VIC_WAITERS];   /* what each call returned */
	size_t           n[VIC_WAITERS];    /* its *n */
	int              afd;       /* V_ACCEPT: its *fd */
	atomic_int       ret[VIC_WAITERS]; /* each waiter returned */
	bool             parked[VIC_WAITERS]; /* seen waiting (coordinator) */
	bool             drained;   /* V_SPLIT: room made for the writer */
	bool             closed;    /* sl_fd_close called */
	int              early;     /* 1 + a waiter that returned before its
	                               event (the close, or the room) */
	double           close_at;  /* when, as a kill */
	struct agent     ag[VIC_WAITERS];
};

/* Waiters that one readiness must all wake: CROWD for reading a pipe
 * (one of them a thread), CROWD for writing to a full socketpair end. */
struct crowd {
	int          rp[2];          /* the pipe */
	int          sp[2];          /* the socketpair, full from sp[0] */
	double       at;             /* when the coordinator readies them */
	bool         readied;        /* it did */
	int          rv[2 * CROWD];  /* what each sl_fd_wait returned */
	struct agent ag[2 * CROWD];
};

/* What a probe waits for. */
enum { P_READ, P_WAIT_CTX, P_ACCEPT, P_THREAD, P_WRITE, P_KINDS };

/* A party that waits, again and again, for what never comes. */
struct probe {
	int          what;  /* P_* */
	size_t       moved; /* P_WRITE: bytes its writes moved */
	struct agent ag;
};

/* Everything one round shares. */
struct round {
	uint64_t          seed;     /* the case's seed */
	int               round;    /* which round of the case */
	uint64_t          rseed;    /* the round's seed */
	int               procs;    /* workers */
	double            work;     /* scale of the byte quotas */
	int               np, nu, nt; /* pipes, socketpairs, connections */
	int               ns;       /* streams */
	int               nends;    /* ends */
	struct end       *ends;     /* [nends]: pipes', socketpairs', TCP's */
	struct stream    *st;       /* [ns], in the same order */
	_Atomic int64_t   t0;       /* start of the stream phase */
	_Atomic int64_t   t_cap;    /* writers stop here */
	uint64_t          total;    /* sum of the streams' quotas */
	atomic_long       c[C_N];   /* counters */
	atomic_int        done;     /* parties of the phase finished */
	atomic_int        sdone;    /* stream parties finished */
	int               nstarted; /* parties of the phase started */
	struct agent    **started;  /* them */
	int               nslots;   /* canceller slots in use */
	int               maxslots; /* slots (and started) allocated */
	_Atomic(sl_ctx *) *slot;    /* per agent: a context to cancel */
	atomic_int        stop;     /* the canceller returns */
	sl_waitgroup      canceller_wg; /* the canceller goroutine */
	atomic_int        printed[LINES_MAX]; /* failures printed, per line */
	struct agent      co;       /* the coordinator, for messages */
	/* the dial phase */
	int               lfd;      /* the listener */
	struct sockaddr_in addr;    /* its address */
	sl_ctx           *accept_stop; /* cancelled once all are matched */
	atomic_int        matched;  /* connections accepted with their tag */
	int              *cfd;      /* [nt] dialer's socket per connection */
	atomic_int       *sfd;      /* [nt] acceptor's socket, -1 before */
	struct agent      dialer[N_DIALERS + 1];
	struct agent      acceptor[N_ACCEPTORS];
	/* victims and probes */
	struct victim     vic[V_KINDS];
	struct crowd      crowd;
	struct probe      probe[N_PROBES];
	int               idle[2];  /* a pipe nobody writes to */
	int               full[2];  /* a pipe nobody reads from */
	size_t            full_prefill; /* bytes in full before */
	int               idle_l;   /* a listener nobody connects to */
	int               fdinfo;   /* /proc/self/fdinfo of the epoll set */
	char             *info;     /* its text (coordinator) */
	size_t            infocap;
};

/* The watchdog's view of the running case. */
static struct {
	pthread_mutex_t mu;       /* guards rd and phase */
	struct round   *rd;       /* the round running, or NULL */
	const char     *phase;    /* its phase */
	atomic_long     progress; /* operations completed, all parties */
	atomic_int      stop;     /* the watchdog returns */
} wd = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- failures ------------------------------------------------------------ */

/* Reports a failed invariant seen by agent a: prints it (the first
 * PRINT_MAX of each check and round, with the seed), counts it as a
 * failed SL_CHECK. */
static void fd_failed(struct agent *a, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fd_failed(struct agent *a, int line, const char *fmt, ...)
{
	struct round *rd = a->rd;
	char where[160];
	va_list ap;

	snprintf(where, sizeof(where), "seed 0x%" PRIx64 " procs %d round %d, "
	    "%s%s", rd->seed, rd->procs, rd->round, a->name,
	    a->thread ? " (thread)" : "");
	va_start(ap, fmt);
	slt_chaos_failed(&rd->printed[(unsigned) line % LINES_MAX], PRINT_MAX,
	    __FILE__, line, where, fmt, ap);
	va_end(ap);
}

#define FD_CHECK(a, cond, ...)                                              \
	do {                                                                \
		if (!(cond))                                                \
			fd_failed((a), __LINE__, __VA_ARGS__);              \
	} while (0)

/* ---- helpers ------------------------------------------------------------- */

static unsigned char pat[PERIOD + MAX_CHUNK];

/* Fills the pattern the streams' bytes come from. */
static void
pat_fill(uint64_t seed)
{
	uint64_t s = seed ^ UINT64_C(0x5ca1ab1efdfdfdfd);

	for (size_t i = 0; i < PERIOD; i += 8) {
		uint64_t v = slt_rnd(&s);

		for (size_t j = 0; j < 8 && i + j < PERIOD; j++)
			pat[i + j] = (unsigned char) (v >> (8 * j));
	}
	memcpy(pat + PERIOD, pat, MAX_CHUNK);
}

/* Stream s's bytes from position pos on (MAX_CHUNK of them at least). */
static const unsigned char *
pat_at(const struct stream *s, uint64_t pos)
{
	return (pat + (s->off + pos) % PERIOD);
}

/* Adds n to counter c of the round. */
static void
count(struct round *rd, int c, long n)
{
	atomic_fetch_add_explicit(&rd->c[c], n, memory_order_relaxed);
}

/* One operation of a done: the watchdog watches these. */
static void
op_done(struct agent *a)
{
	(void) a;
	atomic_fetch_add_explicit(&wd.progress, 1, memory_order_relaxed);
}

/* A number in [lo, hi], spread evenly over the powers of two. */
static size_t
rnd_log(uint64_t *rng, size_t lo, size_t hi)
{
	int blo = 0, bhi = 0, b;
	size_t v;

	if (lo < 1)
		lo = 1;
	if (hi <= lo)
		return (lo);
	while (((size_t) 2 << blo) <= lo)
		blo++;
	while (((size_t) 2 << bhi) <= hi)
		bhi++;
	b = blo + (int) slt_rnd_below(rng, (uint32_t) (bhi - blo + 1));
	v = ((size_t) 1 << b) + slt_rnd_below(rng, (uint32_t) 1 << b);
	return (v < lo ? lo : v > hi ? hi : v);
}

/* The size of one read or write: mostly spread up to max, sometimes a
 * few bytes; never more than limit (at least 1). */
static size_t
io_len(struct agent *a, size_t max, uint64_t limit)
{
	size_t len;

	if (slt_rnd_below(&a->rng, 8) == 0)
		len = 1 + slt_rnd_below(&a->rng, 16);
	else
		len = rnd_log(&a->rng, max / 256 + 1, max);
	if (len > limit)
		len = (size_t) limit;
	return (len > 0 ? len : 1);
}

/*
 * The open descriptors (entries of /proc/self/fd) and, if list is not
 * NULL, "fd -> file" lines of them in list.  Files under /proc are left
 * out: the listing's own, and glibc's pthread_getattr_np, which the
 * runtime calls as worker 0 starts, reads /proc/self/maps on the
 * process's initial thread while the main goroutine may already run on
 * worker 1.
 */
static int
fds_open(char *list, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t at = 0;
	int n = 0;

	if (d == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL) {
		char path[300], link[200];
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if ((k = readlink(path, link, sizeof(link) - 1)) < 0)
			continue; /* closed meanwhile */
		link[k] = '\0';
		if (strncmp(link, "/proc/", 6) == 0)
			continue;
		n++;
		if (list == NULL || at + 1 >= len)
			continue;
		at += (size_t) snprintf(list + at, len - at, "  fd %s -> %s\n",
		    e->d_name, link);
		if (at >= len)
			at = len - 1;
	}
	closedir(d);
	return (n);
}

/* The poller's epoll descriptor (the only one of this process), or -1. */
static int
epoll_fd_find(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1, n = 0;

	if (d == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL) {
		char path[300], link[64];
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		link[k > 0 ? k : 0] = '\0';
		if (strcmp(link, "anon_inode:[eventpoll]") == 0) {
			found = atoi(e->d_name);
			n++;
		}
	}
	closedir(d);
	return (n == 1 ? found : -1);
}

/* The events the epoll set has armed for fd, or -1 if it does not hold
 * fd: its fdinfo has a line "tfd: <fd> events: <hex> ..." per descriptor.
 * pread, so that no descriptor is opened while ends are being closed. */
static long
epoll_events(struct round *rd, int fd)
{
	size_t len = 0;
	ssize_t k;

	while (len + 1 < rd->infocap && (k = pread(rd->fdinfo, rd->info + len,
	    rd->infocap - 1 - len, (off_t) len)) > 0)
		len += (size_t) k;
	rd->info[len] = '\0';
	for (char *p = rd->info; (p = strstr(p, "tfd:")) != NULL; p += 4) {
		char *ev = strstr(p, "events:");

		if (atoi(p + 4) == fd && ev != NULL)
			return (strtol(ev + 7, NULL, 16));
	}
	return (-1);
}

/* A non-blocking TCP socket, unbuffered, with small buffers (so that
 * writes fill them, and to bound kernel memory). */
static int
tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, buf = 64 * 1024;

	if (fd < 0)
		SLT_FATAL("socket: %s", strerror(errno));
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	return (fd);
}

/* A non-blocking listener on 127.0.0.1, any port; *addr gets it. */
static int
tcp_listener(struct sockaddr_in *addr, int backlog)
{
	int fd = tcp_socket();
	socklen_t len = sizeof(*addr);

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *) addr, sizeof(*addr)) != 0 ||
	    listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *) addr, &len) != 0)
		SLT_FATAL("listener: %s", strerror(errno));
	return (fd);
}

/* A non-blocking pipe, and a non-blocking socketpair. */
static void
nb_pipe(int fds[2])
{
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
		SLT_FATAL("pipe2: %s", strerror(errno));
}

static void
nb_socketpair(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    fds) != 0)
		SLT_FATAL("socketpair: %s", strerror(errno));
}

/* Writes to fd until it would block; returns how much went in.  64 KiB
 * chunks leave a pipe's pages full, so nothing more merges into them. */
static size_t
fill(int fd)
{
	size_t total = 0;
	ssize_t k;

	while ((k = write(fd, pat, 64 * 1024)) > 0)
		total += (size_t) k;
	if (k < 0 && errno != EAGAIN)
		SLT_FATAL("fill: %s", strerror(errno));
	return (total);
}

/* Where the coordinator reads what it throws away (goroutine stacks are
 * too small for it). */
static unsigned char junk[65536];

/* Reads fd (whose writers are all closed) to its end; the byte count. */
static size_t
drain(int fd)
{
	size_t total = 0;
	ssize_t k;

	while ((k = read(fd, junk, sizeof(junk))) > 0)
		total += (size_t) k;
	if (k < 0)
		return (SIZE_MAX);
	return (total);
}

/* Whether e was closed under its parties (before they were done). */
static bool
killed(struct end *e)
{
	return (atomic_load(&e->state) == E_KILLED);
}

/* ---- how an operation waits ---------------------------------------------- */

/* The deadline and context of one call. */
struct wspec {
	sl_ctx  *ctx;       /* passed to the call, or NULL */
	sl_ctx  *own;       /* ctx when made here, released by wspec_done */
	sl_ctx  *parent;    /* a parent of ctx made here, or NULL */
	int64_t  deadline;  /* passed to the call */
	unsigned allowed;   /* the wait errors it may end with */
	int      must;      /* over before the call: the exact error */
};

/* Hands ctx (one more reference) to the canceller through a's slot. */
static void
publish(struct agent *a, sl_ctx *ctx)
{
	sl_ctx *old = atomic_exchange(&a->rd->slot[a->slot],
	    sl_ctx_retain(ctx));

	sl_ctx_release(old);
}

/* A near deadline: mostly under 300 us, sometimes a few ms. */
static int64_t
near(struct agent *a)
{
	if (slt_rnd_below(&a->rng, 4) == 0)
		return ((int64_t) slt_rnd_below(&a->rng, 5000) *
		    SL_MICROSECOND);
	return ((int64_t) slt_rnd_below(&a->rng, 300) * SL_MICROSECOND);
}

/*
 * A random way to wait for agent a.  Calm: no limit, a far deadline, a
 * live context, or one that times out far away, so the wait ends only by
 * its event.  Otherwise also: a near or past deadline, a context that the
 * canceller cancels (alone, with a deadline, or as the parent of one that
 * times out), one that times out soon, one cancelled or timed out before
 * the call.  With base, every context descends from base (and a call
 * without one of its own gets base): acceptors stop that way.
 */
static void
wspec_make(struct agent *a, struct wspec *w, bool calm, sl_ctx *base)
{
	sl_ctx *root = base != NULL ? base : sl_ctx_background();
	uint32_t r = slt_rnd_below(&a->rng, 100);
	int64_t now = sl_now();

	memset(w, 0, sizeof(*w));
	w->deadline = SL_FOREVER;
	if (calm)
		r = 200 + slt_rnd_below(&a->rng, 4);
	if (r < 12 || r == 200) {
		/* no limit */
	} else if (r < 30) {
		w->deadline = now + near(a);
		w->allowed = B(SL_ETIMEDOUT);
	} else if (r < 36) {
		w->deadline = now - (int64_t) slt_rnd_below(&a->rng, 1000) *
		    SL_MICROSECOND;
		w->allowed = B(SL_ETIMEDOUT);
		w->must = SL_ETIMEDOUT;
	} else if (r < 42 || r == 201) {
		w->deadline = now + FAR;
	} else if (r < 58) {
		SL_CHECK_OK(sl_ctx_with_cancel(root, &w->own));
		publish(a, w->own);
		w->allowed = B(SL_ECANCELED);
	} else if (r < 66) {
		SL_CHECK_OK(sl_ctx_with_cancel(root, &w->own));
		publish(a, w->own);
		w->deadline = now + near(a);
		w->allowed = B(SL_ECANCELED) | B(SL_ETIMEDOUT);
	} else if (r < 78) {
		SL_CHECK_OK(sl_ctx_with_timeout(root, SL_MICROSECOND + near(a),
		    &w->own));
		w->allowed = B(SL_EDEADLINE);
	} else if (r < 84) {
		SL_CHECK_OK(sl_ctx_with_cancel(root, &w->parent));
		publish(a, w->parent);
		SL_CHECK_OK(sl_ctx_with_timeout(w->parent, SL_MICROSECOND +
		    near(a), &w->own));
		w->allowed = B(SL_ECANCELED) | B(SL_EDEADLINE);
	} else if (r < 92) {
		SL_CHECK_OK(sl_ctx_with_cancel(root, &w->own));
		sl_ctx_cancel(w->own);
		w->allowed = B(SL_ECANCELED);
		w->must = SL_ECANCELED;
	} else if (r < 96) {
		/* Born done: "a deadline already past makes the context done
		 * at once with SL_EDEADLINE". */
		SL_CHECK_OK(sl_ctx_with_timeout(root, -SL_MILLISECOND,
		    &w->own));
		w->allowed = B(SL_EDEADLINE);
		w->must = SL_EDEADLINE;
	} else if (r < 100 || r == 202) {
		SL_CHECK_OK(sl_ctx_with_cancel(root, &w->own)); /* live */
		if (r < 100)
			w->deadline = now + FAR;
	} else {
		SL_CHECK_OK(sl_ctx_with_timeout(root, FAR, &w->own));
	}
	w->ctx = w->own;
	if (base != NULL) {
		if (w->ctx == NULL)
			w->ctx = base;
		w->allowed |= B(SL_ECANCELED); /* base itself is cancelled */
	}
}

/* Ends a wait: takes back the published context, drops ours. */
static void
wspec_done(struct agent *a, struct wspec *w)
{
	if (w->own == NULL)
		return;
	sl_ctx_release(atomic_exchange(&a->rd->slot[a->slot], NULL));
	sl_ctx_release(w->own);
	sl_ctx_release(w->parent);
}

/*
 * Checks the outcome rv of a call that waited as w says and moved bytes:
 * a call whose wait was over before it began fails with exactly that
 * error (the context's, checked first, or SL_ETIMEDOUT) having moved
 * nothing; a timeout comes no earlier than its deadline; a context error
 * is the one the context reports; wait errors only where w allows them.
 * Counts the wait errors.  Other errors are the caller's to judge.
 */
static void
check_wait(struct agent *a, const struct wspec *w, int rv, size_t moved,
    const char *what)
{
	struct round *rd = a->rd;

	if (w->must != 0) {
		FD_CHECK(a, rv == w->must || (w->ctx != NULL && rv != 0 &&
		    rv == sl_ctx_err(w->ctx)),
		    "%s returned %s though its wait was over before the call "
		    "(%s expected, before anything is tried)", what,
		    sl_errname(rv), sl_errname(w->must));
		FD_CHECK(a, moved == 0, "%s moved %zu bytes though its wait "
		    "was over before the call", what, moved);
		count(rd, C_EXPIRED, 1);
	}
	if ((B(rv) & WAIT_ERRS) == 0 || rv == 0)
		return;
	FD_CHECK(a, (B(rv) & w->allowed) != 0, "%s returned %s, which its "
	    "wait cannot end with (deadline %s, ctx %s)", what,
	    sl_errname(rv), w->deadline == SL_FOREVER ? "none" : "set",
	    w->ctx != NULL ? "set" : "none");
	if (rv == SL_ETIMEDOUT) {
		count(rd, C_TIMEDOUT, 1);
		FD_CHECK(a, w->deadline != SL_FOREVER &&
		    sl_now() >= w->deadline,
		    "%s: SL_ETIMEDOUT %" PRId64 " ns before the deadline", what,
		    w->deadline - sl_now());
	} else {
		count(rd, rv == SL_ECANCELED ? C_CANCELED : C_DEADLINE, 1);
		FD_CHECK(a, w->ctx != NULL && sl_ctx_err(w->ctx) == rv,
		    "%s returned %s but the context says %s", what,
		    sl_errname(rv),
		    sl_errname(w->ctx != NULL ? sl_ctx_err(w->ctx) : 0));
	}
}

/* ---- ends ---------------------------------------------------------------- */

/* Closes e under its parties (the coordinator's kill, or a party's
 * own): marked first, so that a party that then fails on it knows why. */
static void
end_kill(struct agent *a, struct end *e)
{
	int open = E_OPEN;

	if (!atomic_compare_exchange_strong(&e->state, &open, E_KILLED))
		return; /* its parties were done and closed it */
	SL_CHECK_OK(sl_fd_close(e->fd));
	count(a->rd, C_KILLS, 1);
}

/* A party is done with e; the last one closes it (unless killed). */
static void
end_release(struct agent *a, struct end *e)
{
	int open = E_OPEN;

	if (atomic_fetch_sub(&e->users, 1) != 1)
		return;
	if (!atomic_compare_exchange_strong(&e->state, &open, E_CLOSED))
		return;
	/* Nobody waits on it now: either way of closing is right. */
	if (slt_rnd_below(&a->rng, 2) == 0)
		SL_CHECK_OK(sl_fd_close(e->fd));
	else
		FD_CHECK(a, close(e->fd) == 0, "close(%d): %s", e->fd,
		    strerror(errno));
}

/* Whether a self-killing end's party should close it now. */
static bool
kill_due(struct agent *a, struct end *e, uint64_t pos, uint64_t quota)
{
	struct round *rd = a->rd;

	return (e->kill == KILL_SELF && ((double) pos >= e->kill_at *
	    (double) quota || (double) (sl_now() - rd->t0) >= e->kill_at *
	    (double) ROUND_CAP));
}

/* A pause: a short sleep, or a yield. */
static void
party_pause(struct agent *a)
{
	if (a->thread || slt_rnd_below(&a->rng, 3) != 0)
		sl_sleep((int64_t) slt_rnd_below(&a->rng, 400) *
		    SL_MICROSECOND);
	else
		sl_yield();
}

/* sl_fd_wait said e was ready, yet read(2) or write(2) said EAGAIN,
 * with no other party reading (or writing) that end: a broken promise of
 * fd.h. */
static void
ready_spurious(struct agent *a, struct end *e, const char *how)
{
	fd_failed(a, __LINE__, "sl_fd_wait said fd %d was %s, but the %s(2) "
	    "that followed said EAGAIN, with no other party %s it", e->fd,
	    how, strcmp(how, "readable") == 0 ? "read" : "write",
	    strcmp(how, "readable") == 0 ? "reading" : "writing");
}

/* ---- writers ------------------------------------------------------------- */

/*
 * Judges an error rv (errno err) of the writer's call on its end: a wait
 * error (an abandoned wait), its own end closed under it, or its reader's
 * end gone.  Returns W_STOPPED if the writer must stop, else W_RUNNING.
 */
static int
writer_err(struct agent *a, const struct wspec *w, int rv, int err,
    size_t moved, const char *what)
{
	struct stream *s = a->s;
	struct round *rd = a->rd;

	check_wait(a, w, rv, moved, what);
	if (rv == 0)
		return (W_RUNNING);
	if ((B(rv) & WAIT_ERRS) != 0) {
		if (moved > 0)
			count(rd, C_PARTIAL, 1);
		return (W_RUNNING);
	}
	if (rv == SL_ECLOSED || rv == SL_EBADF) {
		count(rd, rv == SL_ECLOSED ? C_CLOSED : C_BADF, 1);
		FD_CHECK(a, killed(s->w), "%s on fd %d returned %s, but nobody "
		    "closed it", what, s->w->fd, sl_errname(rv));
		return (W_STOPPED);
	}
	if (rv == SL_ESYSTEM && (err == EPIPE || err == ECONNRESET)) {
		count(rd, C_EPIPE, 1);
		FD_CHECK(a, killed(s->r), "%s on fd %d returned SL_ESYSTEM "
		    "(%s), but its reader's end %d is open", what, s->w->fd,
		    strerror(err), s->r->fd);
		return (W_STOPPED);
	}
	fd_failed(a, __LINE__, "%s on fd %d returned %s (errno %s)", what,
	    s->w->fd, sl_errname(rv), strerror(err));
	return (W_STOPPED);
}

/* One sl_write of a random chunk, under a random wait. */
static int
writer_write(struct agent *a, uint64_t *pos)
{
	struct stream *s = a->s;
	struct end *e = s->w;
	size_t len = io_len(a, s->wmax, s->quota - *pos), n = SIZE_MAX;
	struct wspec w;
	bool nulln;
	int rv, err;

	wspec_make(a, &w, s->calm, NULL);
	/* *n may be NULL when nothing can stop the write. */
	nulln = w.allowed == 0 && e->kill == KILL_NONE &&
	    s->r->kill == KILL_NONE && slt_rnd_below(&a->rng, 4) == 0;
	rv = sl_write(e->fd, pat_at(s, *pos), len, nulln ? NULL : &n, w.ctx,
	    w.deadline);
	err = errno;
	count(a->rd, C_CALLS, 1);
	if (nulln) {
		FD_CHECK(a, rv == 0, "sl_write with *n NULL returned %s",
		    sl_errname(rv));
		n = rv == 0 ? len : 0;
	}
	FD_CHECK(a, rv == 0 ? n == len : n < len, "sl_write of %zu on fd %d "
	    "returned %s with *n %zu", len, e->fd, sl_errname(rv), n);
	if (n > len)
		n = 0;
	*pos += n;
	count(a->rd, C_WRITTEN, (long) n);
	rv = writer_err(a, &w, rv, err, n, "sl_write");
	wspec_done(a, &w);
	return (rv);
}

/* sl_fd_wait for room, then one plain write(2), which must not say
 * EAGAIN. */
static int
writer_ready(struct agent *a, uint64_t *pos)
{
	struct stream *s = a->s;
	struct end *e = s->w;
	struct wspec w;
	int rv, err, end = W_RUNNING;

	wspec_make(a, &w, s->calm, NULL);
	rv = sl_fd_wait(e->fd, SL_FD_WRITE, w.ctx, w.deadline);
	err = errno;
	count(a->rd, C_CALLS, 1);
	if (rv == 0) {
		size_t len = io_len(a, s->wmax, s->quota - *pos);
		ssize_t k;

		check_wait(a, &w, 0, 0, "sl_fd_wait(write)");
		k = write(e->fd, pat_at(s, *pos), len);
		err = errno;
		count(a->rd, C_READY, 1);
		if (k > 0) {
			FD_CHECK(a, (size_t) k <= len, "write(2) of %zu: %zd",
			    len, k);
			*pos += (size_t) k;
			count(a->rd, C_WRITTEN, (long) k);
		} else if (k < 0 && err == EAGAIN) {
			ready_spurious(a, e, "writable");
		} else if (k < 0 && err == EBADF) {
			count(a->rd, C_BADF, 1);
			FD_CHECK(a, killed(e), "write(2) on fd %d: EBADF, but "
			    "nobody closed it", e->fd);
			end = W_STOPPED;
		} else if (k < 0 && (err == EPIPE || err == ECONNRESET)) {
			count(a->rd, C_EPIPE, 1);
			FD_CHECK(a, killed(s->r), "write(2) on fd %d: %s, but "
			    "its reader's end is open", e->fd, strerror(err));
			end = W_STOPPED;
		} else {
			fd_failed(a, __LINE__, "write(2) of %zu on fd %d after "
			    "sl_fd_wait: %zd (%s)", len, e->fd, k,
			    strerror(err));
			end = W_STOPPED;
		}
	} else {
		end = writer_err(a, &w, rv, err, 0, "sl_fd_wait(write)");
	}
	wspec_done(a, &w);
	return (end);
}

/* Calls with bad arguments on the writer's end: their errors, and no byte
 * moved (the stream check would see one). */
static void
writer_misc(struct agent *a)
{
	struct stream *s = a->s;
	size_t n = 99;
	int rv;

	count(a->rd, C_BAD, 1);
	switch (slt_rnd_below(&a->rng, 4)) {
	case 0:
		rv = sl_write(s->w->fd, NULL, 1 + slt_rnd_below(&a->rng, 99),
		    &n, NULL, SL_FOREVER);
		FD_CHECK(a, rv == SL_EINVAL && n == 0, "sl_write of NULL: %s, "
		    "*n %zu", sl_errname(rv), n);
		break;
	case 1:
		/* Nothing to write: done at once, whatever the descriptor. */
		rv = sl_write(s->w->fd, NULL, 0, &n, NULL, SL_FOREVER);
		FD_CHECK(a, rv == 0 && n == 0, "sl_write of 0 bytes: %s, *n "
		    "%zu", sl_errname(rv), n);
		break;
	case 2:
		SL_CHECK_ERR(sl_fd_wait(s->w->fd, slt_rnd_below(&a->rng, 2) ?
		    0 : SL_FD_WRITE | 8, NULL, SL_FOREVER), SL_EINVAL);
		break;
	default:
		SL_CHECK_ERR(sl_fd_wait(-1 - (int) slt_rnd_below(&a->rng, 9),
		    SL_FD_WRITE, NULL, SL_FOREVER), SL_EBADF);
		break;
	}
}

/* A writer: its quota (or until the cap) in random operations, then it
 * closes its side of the stream. */
static void
writer_run(struct agent *a)
{
	struct stream *s = a->s;
	struct round *rd = a->rd;
	uint64_t pos = 0;
	int end = W_RUNNING;

	for (long op = 0; end == W_RUNNING && pos < s->quota && op < MAX_OPS;
	    op++) {
		uint32_t r = slt_rnd_below(&a->rng, 100);

		if ((op & 7) == 0 && sl_now() > rd->t_cap)
			break;
		if (kill_due(a, s->w, pos, s->quota)) {
			/* Closed with sl_fd_close in the middle of the stream:
			 * the reader still gets exactly what went in. */
			atomic_store(&s->written, pos);
			end_kill(a, s->w);
			end = W_STOPPED;
			break;
		}
		if (r < 5)
			writer_misc(a);
		else if (r < 22)
			end = writer_ready(a, &pos);
		else if (r < 27)
			party_pause(a);
		else
			end = writer_write(a, &pos);
		atomic_store(&s->written, pos);
		op_done(a);
		if (!a->thread && slt_rnd_below(&a->rng, 8) == 0)
			sl_yield();
	}
	atomic_store(&s->written, pos);
	if (end == W_RUNNING) {
		/* Done before anything stopped it: the reader may see end of
		 * file from now on. */
		atomic_store(&s->wdone, W_DONE);
		if (s->kind != K_PIPE && shutdown(s->w->fd, SHUT_WR) != 0) {
			int err = errno;

			FD_CHECK(a, (err == EBADF && killed(s->w)) ||
			    (err == ENOTCONN && (killed(s->w) ||
			    killed(s->r))), "shutdown(%d): %s", s->w->fd,
			    strerror(err));
		}
	} else {
		atomic_store(&s->wdone, W_STOPPED);
	}
	end_release(a, s->w);
	atomic_fetch_add(&rd->sdone, 1);
}

/* ---- readers ------------------------------------------------------------- */

/* Judges an error rv (errno err) of the reader's call; returns how the
 * reader ends (R_RUNNING: it goes on). */
static int
reader_err(struct agent *a, const struct wspec *w, int rv, int err,
    const char *what)
{
	struct stream *s = a->s;
	struct round *rd = a->rd;

	check_wait(a, w, rv, 0, what);
	if (rv == 0)
		return (R_RUNNING);
	if ((B(rv) & WAIT_ERRS) != 0)
		return (R_RUNNING);
	if (rv == SL_ECLOSED || rv == SL_EBADF) {
		count(rd, rv == SL_ECLOSED ? C_CLOSED : C_BADF, 1);
		FD_CHECK(a, killed(s->r), "%s on fd %d returned %s, but nobody "
		    "closed it", what, s->r->fd, sl_errname(rv));
		return (R_CLOSED);
	}
	if (rv == SL_ESYSTEM && err == ECONNRESET) {
		count(rd, C_RESET, 1);
		FD_CHECK(a, s->kind != K_PIPE && killed(s->w), "%s on fd %d: "
		    "ECONNRESET, but its writer's end %d is open", what,
		    s->r->fd, s->w->fd);
		return (R_RESET);
	}
	fd_failed(a, __LINE__, "%s on fd %d returned %s (errno %s)", what,
	    s->r->fd, sl_errname(rv), strerror(err));
	return (R_BROKEN);
}

/* End of file: only once the writer is done (or its end is gone). */
static int
reader_eof(struct agent *a, uint64_t pos)
{
	struct stream *s = a->s;

	count(a->rd, C_EOF, 1);
	FD_CHECK(a, atomic_load(&s->wdone) != W_RUNNING || killed(s->w),
	    "end of file on fd %d after %" PRIu64 " bytes, while the writer "
	    "still writes (%" PRIu64 " so far)", s->r->fd, pos,
	    (uint64_t) atomic_load(&s->written));
	return (R_EOF);
}

/* Checks n bytes read at stream position *pos against the pattern, and
 * advances. */
static void
reader_got(struct agent *a, const unsigned char *buf, size_t n,
    uint64_t *pos)
{
	struct stream *s = a->s;
	const unsigned char *want = pat_at(s, *pos);

	if (!s->corrupt && memcmp(buf, want, n) != 0) {
		size_t i = 0, m;
		long shift = 0;

		while (buf[i] == want[i])
			i++;
		/* Where do the bytes from i on belong?  Lost bytes show as
		 * a later position, duplicated ones as an earlier one. */
		m = n - i < 16 ? n - i : 16;
		for (long d = 1; d <= 65536 && shift == 0; d++) {
			if (memcmp(buf + i, pat_at(s, *pos + i + (uint64_t) d),
			    m) == 0)
				shift = d;
			else if ((uint64_t) d <= *pos + i &&
			    memcmp(buf + i, pat_at(s, *pos + i - (uint64_t) d),
			    m) == 0)
				shift = -d;
		}
		fd_failed(a, __LINE__, "stream %d (%s) on fd %d: byte %" PRIu64
		    " is 0x%02x, should be 0x%02x (read of %zu at %" PRIu64
		    "; writer reported %" PRIu64 "): %s %ld", s->id,
		    s->kind == K_PIPE ? "pipe" : s->kind == K_UNIX ?
		    "socketpair" : "tcp", s->r->fd, *pos + i, buf[i], want[i],
		    n, *pos, (uint64_t) atomic_load(&s->written),
		    shift > 0 ? "bytes lost:" : shift < 0 ?
		    "bytes repeated:" : "no nearby match, shift", shift > 0 ?
		    shift : -shift);
		s->corrupt = true;
	}
	*pos += n;
	atomic_store(&s->received, *pos);
	count(a->rd, C_READ, (long) n);
}

/* One sl_read with a random buffer size, under a random wait. */
static int
reader_read(struct agent *a, uint64_t *pos)
{
	struct stream *s = a->s;
	size_t len = io_len(a, s->rmax, MAX_CHUNK), n = SIZE_MAX;
	unsigned char *buf = malloc(len); /* exactly len: ASan sees more */
	struct wspec w;
	int rv, err, end = R_RUNNING;

	if (buf == NULL)
		SLT_FATAL("out of memory");
	wspec_make(a, &w, s->calm, NULL);
	rv = sl_read(s->r->fd, buf, len, &n, w.ctx, w.deadline);
	err = errno;
	count(a->rd, C_CALLS, 1);
	if (rv == 0) {
		check_wait(a, &w, 0, 0, "sl_read");
		FD_CHECK(a, n <= len, "sl_read of %zu: *n %zu", len, n);
		if (n == 0)
			end = reader_eof(a, *pos);
		else if (n <= len)
			reader_got(a, buf, n, pos);
	} else {
		FD_CHECK(a, n == 0, "sl_read returned %s with *n %zu (fd.h: "
		    "0)", sl_errname(rv), n);
		end = reader_err(a, &w, rv, err, "sl_read");
	}
	free(buf);
	wspec_done(a, &w);
	return (end);
}

/* sl_fd_wait for data, then one plain read(2), which must not say
 * EAGAIN. */
static int
reader_ready(struct agent *a, uint64_t *pos)
{
	struct stream *s = a->s;
	struct end *e = s->r;
	struct wspec w;
	int rv, err, end = R_RUNNING;

	wspec_make(a, &w, s->calm, NULL);
	rv = sl_fd_wait(e->fd, SL_FD_READ, w.ctx, w.deadline);
	err = errno;
	count(a->rd, C_CALLS, 1);
	if (rv == 0) {
		size_t len = io_len(a, s->rmax, MAX_CHUNK);
		unsigned char *buf = malloc(len);
		ssize_t k;

		if (buf == NULL)
			SLT_FATAL("out of memory");
		check_wait(a, &w, 0, 0, "sl_fd_wait(read)");
		k = read(e->fd, buf, len);
		err = errno;
		count(a->rd, C_READY, 1);
		if (k > 0) {
			reader_got(a, buf, (size_t) k, pos);
		} else if (k == 0) {
			end = reader_eof(a, *pos);
		} else if (err == EAGAIN) {
			ready_spurious(a, e, "readable");
		} else if (err == EBADF) {
			count(a->rd, C_BADF, 1);
			FD_CHECK(a, killed(e), "read(2) on fd %d: EBADF, but "
			    "nobody closed it", e->fd);
			end = R_CLOSED;
		} else if (err == ECONNRESET) {
			count(a->rd, C_RESET, 1);
			FD_CHECK(a, s->kind != K_PIPE && killed(s->w),
			    "read(2) on fd %d: ECONNRESET, but its writer's "
			    "end is open", e->fd);
			end = R_RESET;
		} else {
			fd_failed(a, __LINE__, "read(2) on fd %d after "
			    "sl_fd_wait: %s", e->fd, strerror(err));
			end = R_BROKEN;
		}
		free(buf);
	} else {
		end = reader_err(a, &w, rv, err, "sl_fd_wait(read)");
	}
	wspec_done(a, &w);
	return (end);
}

/* Calls with bad arguments on the reader's end: their errors, and no
 * byte taken. */
static void
reader_misc(struct agent *a)
{
	struct stream *s = a->s;
	unsigned char buf[16];
	size_t n = 99;
	int rv;

	count(a->rd, C_BAD, 1);
	switch (slt_rnd_below(&a->rng, 5)) {
	case 0:
		SL_CHECK_ERR(sl_read(s->r->fd, NULL, 1 +
		    slt_rnd_below(&a->rng, 99), &n, NULL, SL_FOREVER),
		    SL_EINVAL);
		break;
	case 1:
		SL_CHECK_ERR(sl_read(s->r->fd, buf, sizeof(buf), NULL, NULL,
		    SL_FOREVER), SL_EINVAL);
		break;
	case 2:
		/* A read of nothing returns at once with 0.  (Not on TCP,
		 * where Linux's recvmsg of 0 bytes waits for data.) */
		if (s->kind == K_TCP)
			break;
		rv = sl_read(s->r->fd, buf, 0, &n, NULL, SL_FOREVER);
		FD_CHECK(a, (rv == 0 || (rv == SL_EBADF && killed(s->r))) &&
		    n == 0, "sl_read of 0 bytes: %s, *n %zu", sl_errname(rv),
		    n);
		break;
	case 3:
		SL_CHECK_ERR(sl_fd_wait(s->r->fd, slt_rnd_below(&a->rng, 2) ?
		    0 : -1, NULL, SL_FOREVER), SL_EINVAL);
		break;
	default:
		SL_CHECK_ERR(sl_fd_wait(-1 - (int) slt_rnd_below(&a->rng, 9),
		    SL_FD_READ, NULL, SL_FOREVER), SL_EBADF);
		break;
	}
}

/* A reader: reads until end of file (or its end is closed under it). */
static void
reader_run(struct agent *a)
{
	struct stream *s = a->s;
	uint64_t pos = 0;
	int end = R_RUNNING;

	while (end == R_RUNNING) {
		uint32_t r = slt_rnd_below(&a->rng, 100);

		if (kill_due(a, s->r, pos, s->quota)) {
			/* Hang up mid-stream: the writer gets EPIPE. */
			end_kill(a, s->r);
			end = R_CLOSED;
			break;
		}
		if (r < 5)
			reader_misc(a);
		else if (r < 22)
			end = reader_ready(a, &pos);
		else if (r < 25)
			party_pause(a);
		else
			end = reader_read(a, &pos);
		op_done(a);
		if (!a->thread && slt_rnd_below(&a->rng, 8) == 0)
			sl_yield();
	}
	if (end == R_EOF) {
		/* End of file stays. */
		unsigned char buf[16];
		size_t n = 99;
		int rv = sl_read(s->r->fd, buf, sizeof(buf), &n, NULL,
		    sl_now() + FAR), err = errno;

		FD_CHECK(a, (rv == 0 && n == 0) || (rv == SL_ESYSTEM &&
		    err == ECONNRESET && killed(s->w)) || ((rv == SL_ECLOSED ||
		    rv == SL_EBADF) && killed(s->r)), "sl_read after end of "
		    "file on fd %d: %s, *n %zu", s->r->fd, sl_errname(rv), n);
	}
	if (end == R_BROKEN)
		end_kill(a, s->r); /* already failed: do not hang the writer */
	s->rend = end;
	end_release(a, s->r);
	atomic_fetch_add(&a->rd->sdone, 1);
}

/* ---- the dial phase ------------------------------------------------------ */

/* A dialer: its share of the connections, each retried until
 * sl_connect succeeds; then the connection's tag. */
static void
dialer_run(struct agent *a)
{
	struct round *rd = a->rd;

	for (int id = a->idx; id < rd->nt; id += N_DIALERS + 1) {
		for (int tries = 0;; tries++) {
			int fd = tcp_socket(), rv, err;
			uint32_t tag[2] = { TAG_MAGIC ^ (uint32_t) rd->round,
				(uint32_t) id };
			struct wspec w;
			size_t n = 99;

			if (tries == 5000) {
				fd_failed(a, __LINE__, "connection %d not made "
				    "in %d tries", id, tries);
				close(fd);
				return;
			}
			wspec_make(a, &w, slt_rnd_below(&a->rng, 3) == 0, NULL);
			rv = sl_connect(fd, (struct sockaddr *) &rd->addr,
			    sizeof(rd->addr), w.ctx, w.deadline);
			err = errno;
			count(rd, C_DIALS, 1);
			check_wait(a, &w, rv, 0, "sl_connect");
			wspec_done(a, &w);
			op_done(a);
			if (rv != 0) {
				/* "The socket is then half-way: close it." */
				FD_CHECK(a, (B(rv) & WAIT_ERRS) != 0,
				    "sl_connect returned %s (errno %s)",
				    sl_errname(rv), strerror(err));
				if (w.must == 0)
					count(rd, C_ABORTED, 1);
				if (slt_rnd_below(&a->rng, 2) == 0)
					SL_CHECK_OK(sl_fd_close(fd));
				else
					close(fd);
				continue;
			}
			rv = sl_write(fd, tag, sizeof(tag), &n, NULL,
			    sl_now() + FAR);
			FD_CHECK(a, rv == 0 && n == sizeof(tag),
			    "sending the tag: %s, *n %zu", sl_errname(rv), n);
			rd->cfd[id] = fd;
			break;
		}
	}
}

/* An acceptor: accepts and matches connections by their tags until all
 * are matched, under random waits that accept_stop ends at last. */
static void
acceptor_run(struct agent *a)
{
	struct round *rd = a->rd;

	while (atomic_load(&rd->matched) < rd->nt) {
		uint32_t tag[2];
		unsigned char *t = (unsigned char *) tag;
		struct wspec w;
		size_t got = 0, n;
		int fd = -2, rv, err, expect = -1;

		wspec_make(a, &w, slt_rnd_below(&a->rng, 3) == 0,
		    rd->accept_stop);
		rv = sl_accept(rd->lfd, &fd, w.ctx, w.deadline);
		err = errno;
		check_wait(a, &w, rv, 0, "sl_accept");
		wspec_done(a, &w);
		op_done(a);
		if (rv != 0) {
			FD_CHECK(a, (B(rv) & WAIT_ERRS) != 0, "sl_accept "
			    "returned %s (errno %s)", sl_errname(rv),
			    strerror(err));
			FD_CHECK(a, fd == -1, "sl_accept returned %s with *fd "
			    "%d", sl_errname(rv), fd);
			continue;
		}
		FD_CHECK(a, fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) &&
		    (fcntl(fd, F_GETFD) & FD_CLOEXEC), "sl_accept gave fd %d, "
		    "not non-blocking and close-on-exec", fd);
		if (fd < 0)
			continue;
		/* The tag, in random pieces. */
		while (got < sizeof(tag)) {
			rv = sl_read(fd, t + got, 1 + slt_rnd_below(&a->rng,
			    (uint32_t) (sizeof(tag) - got)), &n, NULL,
			    sl_now() + FAR);
			err = errno;
			if (rv != 0 || n == 0)
				break;
			got += n;
		}
		if (got < sizeof(tag)) {
			/* Its dialer gave up and closed it. */
			FD_CHECK(a, got == 0 && (rv == 0 || (rv == SL_ESYSTEM &&
			    err == ECONNRESET)), "reading a tag: %s (errno %s) "
			    "after %zu bytes", sl_errname(rv), strerror(err),
			    got);
			count(rd, C_TAGLESS, 1);
			close(fd);
			continue;
		}
		FD_CHECK(a, tag[0] == (TAG_MAGIC ^ (uint32_t) rd->round) &&
		    tag[1] < (uint32_t) rd->nt, "bad tag %08x %08x", tag[0],
		    tag[1]);
		if (tag[1] >= (uint32_t) rd->nt ||
		    !atomic_compare_exchange_strong(&rd->sfd[tag[1]], &expect,
		    fd)) {
			fd_failed(a, __LINE__, "connection %u accepted twice",
			    tag[1]);
			close(fd);
			continue;
		}
		if (atomic_fetch_add(&rd->matched, 1) + 1 == rd->nt)
			sl_ctx_cancel(rd->accept_stop);
	}
}

/* ---- victims and probes -------------------------------------------------- */

/* One waiter of a victim: blocks, and records what ended it. */
static void
victim_run(struct agent *a)
{
	struct victim *v = a->v;
	unsigned char buf[64];
	size_t n = 0;
	int rv, fd = -2;

	switch (v->what) {
	case V_WAIT_R:
		rv = sl_fd_wait(v->fd, SL_FD_READ, v->ctx, v->deadline);
		break;
	case V_SPLIT:
		rv = sl_fd_wait(v->fd, a->idx == 0 ? SL_FD_READ : SL_FD_WRITE,
		    v->ctx, v->deadline);
		break;
	case V_MULTI:
		if (a->idx == 1) {
			n = SIZE_MAX;
			rv = sl_write(v->fd, pat, VIC_WRITE, &n, v->ctx,
			    v->deadline);
			break;
		}
		/* FALLTHROUGH */
	case V_READ:
	case V_THREAD:
		n = 99;
		rv = sl_read(v->fd, buf, sizeof(buf), &n, v->ctx, v->deadline);
		break;
	case V_WRITE:
		n = SIZE_MAX;
		rv = sl_write(v->fd, pat, VIC_WRITE, &n, v->ctx, v->deadline);
		break;
	case V_WAIT_RW:
		rv = sl_fd_wait(v->fd, SL_FD_READ | SL_FD_WRITE, v->ctx,
		    v->deadline);
		break;
	case V_ACCEPT:
		rv = sl_accept(v->fd, &fd, v->ctx, v->deadline);
		v->afd = fd;
		break;
	default:
		rv = sl_connect(v->fd, (struct sockaddr *) &v->addr,
		    sizeof(v->addr), v->ctx, v->deadline);
		break;
	}
	v->rv[a->idx] = rv;
	v->n[a->idx] = n;
	atomic_store(&v->ret[a->idx], 1);
	op_done(a);
}

/* One of the crowd: a wait that readiness ends (no deadline or context
 * that could end it first). */
static void
crowd_run(struct agent *a)
{
	struct crowd *c = &a->rd->crowd;
	struct wspec w;

	wspec_make(a, &w, true, NULL);
	if (a->idx < CROWD)
		c->rv[a->idx] = sl_fd_wait(c->rp[0], SL_FD_READ, w.ctx,
		    w.deadline);
	else
		c->rv[a->idx] = sl_fd_wait(c->sp[0], SL_FD_WRITE, w.ctx,
		    w.deadline);
	wspec_done(a, &w);
	op_done(a);
}

/* A probe: waits that only their deadline or context can end. */
static void
probe_run(struct agent *a)
{
	struct round *rd = a->rd;
	struct probe *p = a->p;

	for (int k = 0; k < PROBE_WAITS; k++) {
		int64_t d = sl_now() + SL_MICROSECOND +
		    (int64_t) slt_rnd_below(&a->rng, 2000) * SL_MICROSECOND;
		unsigned char buf[16];
		size_t n = 99, len;
		sl_ctx *ctx = NULL;
		int rv, fd = -2;

		count(rd, C_PROBES, 1);
		switch (p->what) {
		case P_READ:
			rv = sl_read(rd->idle[0], buf, sizeof(buf), &n, NULL,
			    d);
			FD_CHECK(a, rv == SL_ETIMEDOUT && n == 0 &&
			    sl_now() >= d, "sl_read on an idle pipe: %s, *n "
			    "%zu, %" PRId64 " ns after the deadline",
			    sl_errname(rv), n, sl_now() - d);
			break;
		case P_WAIT_CTX:
			SL_CHECK_OK(sl_ctx_with_deadline(sl_ctx_background(),
			    d, &ctx));
			rv = sl_fd_wait(rd->idle[0], SL_FD_READ, ctx,
			    SL_FOREVER);
			FD_CHECK(a, rv == SL_EDEADLINE && sl_ctx_err(ctx) ==
			    SL_EDEADLINE && sl_now() >= d, "sl_fd_wait on an "
			    "idle pipe with a timing-out context: %s",
			    sl_errname(rv));
			break;
		case P_ACCEPT:
			/* Only the canceller ends this one. */
			SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(),
			    &ctx));
			publish(a, ctx);
			rv = sl_accept(rd->idle_l, &fd, ctx,
			    slt_rnd_below(&a->rng, 2) ? SL_FOREVER :
			    sl_now() + FAR);
			FD_CHECK(a, rv == SL_ECANCELED && fd == -1 &&
			    sl_ctx_err(ctx) == SL_ECANCELED, "sl_accept on "
			    "an idle listener: %s, *fd %d", sl_errname(rv), fd);
			sl_ctx_release(atomic_exchange(&rd->slot[a->slot],
			    NULL));
			break;
		case P_THREAD:
			rv = sl_fd_wait(rd->idle[0], SL_FD_READ, NULL, d);
			FD_CHECK(a, rv == SL_ETIMEDOUT && sl_now() >= d,
			    "sl_fd_wait of a thread on an idle pipe: %s, %"
			    PRId64 " ns after the deadline", sl_errname(rv),
			    sl_now() - d);
			break;
		default:
			len = 1 + slt_rnd_below(&a->rng, 8192);
			if (slt_rnd_below(&a->rng, 2) == 0) {
				SL_CHECK_OK(sl_ctx_with_cancel(
				    sl_ctx_background(), &ctx));
				publish(a, ctx);
				d = SL_FOREVER;
			}
			n = SIZE_MAX;
			rv = sl_write(rd->full[1], pat, len, &n, ctx, d);
			FD_CHECK(a, (rv == SL_ETIMEDOUT || (rv ==
			    SL_ECANCELED && ctx != NULL)) && n < len,
			    "sl_write of %zu into a full pipe: %s, *n %zu", len,
			    sl_errname(rv), n);
			if (n < len)
				p->moved += n;
			if (ctx != NULL)
				sl_ctx_release(atomic_exchange(
				    &rd->slot[a->slot], NULL));
			break;
		}
		sl_ctx_release(ctx);
		op_done(a);
	}
}

/* ---- the parties' lives -------------------------------------------------- */

/* The bodies of an agent as a goroutine and as a thread: its function,
 * then it counts itself done. */
static void
agent_goroutine(void *arg)
{
	struct agent *a = arg;

	a->fn(a);
	atomic_fetch_add(&a->rd->done, 1);
}

static void *
agent_thread(void *arg)
{
	struct agent *a = arg;

	a->fn(a);
	atomic_fetch_add(&a->rd->done, 1);
	sl_sched_release();
	return (NULL);
}

/* Names agent a, gives it its body, a slot and a generator. */
static void agent_init(struct round *rd, struct agent *a, agent_fn fn,
    bool thread, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
agent_init(struct round *rd, struct agent *a, agent_fn fn, bool thread,
    const char *fmt, ...)
{
	va_list ap;

	memset(a, 0, sizeof(*a));
	a->rd = rd;
	a->fn = fn;
	a->thread = thread;
	va_start(ap, fmt);
	vsnprintf(a->name, sizeof(a->name), fmt, ap);
	va_end(ap);
	if (rd->nslots == rd->maxslots)
		SLT_FATAL("out of canceller slots");
	a->slot = rd->nslots++;
	a->rng = rd->rseed * UINT64_C(0x100000001b3) + (uint64_t) a->slot;
}

/* Starts a as a goroutine or a thread, in the current phase. */
static void
agent_start(struct agent *a)
{
	struct round *rd = a->rd;

	rd->started[rd->nstarted++] = a;
	if (a->thread) {
		sl_sched_hold();
		if (pthread_create(&a->th, NULL, agent_thread, a) != 0)
			SLT_FATAL("pthread_create failed");
	} else {
		SL_ASSERT_OK(sl_go(agent_goroutine, a));
	}
}

/* Cancels the contexts parties publish, at random moments. */
static void
canceller(void *arg)
{
	struct round *rd = arg;
	uint64_t rng = rd->rseed ^ UINT64_C(0xc0ffee);

	while (!atomic_load(&rd->stop)) {
		int i = (int) slt_rnd_below(&rng, (uint32_t) rd->nslots);
		sl_ctx *c = atomic_exchange(&rd->slot[i], NULL);

		if (c != NULL) {
			sl_ctx_cancel(c);
			sl_ctx_release(c);
		}
		if (slt_rnd_below(&rng, 4) == 0)
			sl_yield();
		else
			sl_sleep((int64_t) slt_rnd_below(&rng, 40) *
			    SL_MICROSECOND);
	}
	sl_waitgroup_done(&rd->canceller_wg);
}

/* ---- the coordinator ----------------------------------------------------- */

/* Reports a hung phase with everybody's state and stops the program. */
static void
hung(struct round *rd, const char *phase)
{
	fprintf(stderr, "chaos_fd: %s hung (seed 0x%" PRIx64 " procs %d "
	    "round %d): %d of %d parties done, none made progress for %d "
	    "s\n", phase, rd->seed, rd->procs, rd->round,
	    atomic_load(&rd->done), rd->nstarted, (int) (HUNG / SL_SECOND));
	for (int i = 0; i < rd->ns && strcmp(phase, "stream phase") == 0;
	    i++) {
		struct stream *s = &rd->st[i];

		if (s->rend == R_RUNNING)
			fprintf(stderr, "  stream %d kind %d fd %d->%d: "
			    "written %" PRIu64 " (wdone %d), received %" PRIu64
			    ", ends %d/%d\n", i, s->kind, s->w->fd, s->r->fd,
			    (uint64_t) atomic_load(&s->written),
			    atomic_load(&s->wdone),
			    (uint64_t) atomic_load(&s->received),
			    atomic_load(&s->w->state),
			    atomic_load(&s->r->state));
	}
	for (int i = 0; i < V_KINDS && strcmp(phase, "stream phase") == 0; i++)
		for (int j = 0; j < rd->vic[i].nwait; j++)
			if (!atomic_load(&rd->vic[i].ret[j]))
				fprintf(stderr, "  victim %d.%d (kind %d) waits "
				    "on fd %d\n", i, j, rd->vic[i].what,
				    rd->vic[i].fd);
	sl_dump_goroutines(stderr);
	SLT_FATAL("chaos_fd %s hung (seed 0x%" PRIx64 ")", phase, rd->seed);
}

/*
 * Finds which victims' waiters are queued on their descriptors, from the
 * events the epoll set holds for them: a victim's descriptor is fresh (no
 * wait armed it before), and a waiter queues itself before it arms the
 * descriptor for its direction, under the lock that sl_fd_close takes.
 * So once the events of waiter j show, it is queued, and only a close
 * can take it off (nothing else can end its wait).  The second waiter of
 * a victim waits for the other direction, and starts only once the first
 * is queued, so that its arming shows too.  (sl_dump_goroutines would
 * name the waits of goroutines, but it reads each wait's description
 * from the waiter's stack, racing with waiters that wake meanwhile.)
 * Notes victims that ended before their close.
 */
static void
victims_scan(struct round *rd)
{
	for (int i = 0; i < V_KINDS; i++) {
		struct victim *v = &rd->vic[i];
		int j = v->nstarted - 1;
		long ev;

		if (v->closed)
			continue;
		for (int k = 0; k < v->nwait; k++)
			if (atomic_load(&v->ret[k]) && v->early == 0 &&
			    !(v->what == V_SPLIT && k == 1 && v->drained))
				v->early = 1 + k;
		if (j < 0 || v->parked[j])
			continue;
		ev = epoll_events(rd, v->fd);
		if (ev >= 0 && ((uint32_t) ev & v->want[j]) == v->want[j]) {
			v->parked[j] = true;
			if (v->nstarted < v->nwait)
				agent_start(&v->ag[v->nstarted++]);
		}
	}
}

/* The coordinator's part of the stream phase, once per turn: closes the
 * ends and victims whose moment came. */
static void
stream_duties(struct round *rd, bool scan)
{
	double f = (double) atomic_load(&rd->c[C_WRITTEN]) /
	    (double) (rd->total > 0 ? rd->total : 1);
	double ft = (double) (sl_now() - rd->t0) / (double) ROUND_CAP;

	if (ft > f)
		f = ft;
	if (atomic_load(&rd->sdone) == 2 * rd->ns)
		f = 1.0; /* the streams are over: close the rest now */
	for (int i = 0; i < rd->nends; i++) {
		struct end *e = &rd->ends[i];

		if (e->kill == KILL_FOREIGN && !e->kill_tried &&
		    f >= e->kill_at) {
			e->kill_tried = true;
			end_kill(&rd->co, e);
		}
	}
	/* The probes that only a cancel ends get one from here too: the
	 * canceller takes long to come round to their slots among hundreds. */
	for (int i = 0; i < N_PROBES; i++) {
		sl_ctx *c;

		if (slt_rnd_below(&rd->co.rng, 8) != 0 ||
		    (c = atomic_exchange(&rd->slot[rd->probe[i].ag.slot],
		    NULL)) == NULL)
			continue;
		sl_ctx_cancel(c);
		sl_ctx_release(c);
	}
	if (!rd->crowd.readied && f >= rd->crowd.at) {
		struct crowd *c = &rd->crowd;

		/* A byte that nobody reads, and room that stays. */
		FD_CHECK(&rd->co, write(c->rp[1], "c", 1) == 1,
		    "write(2) to the crowd's pipe: %s", strerror(errno));
		while (read(c->sp[1], junk, sizeof(junk)) > 0)
			continue;
		c->readied = true;
	}
	if (scan)
		victims_scan(rd);
	for (int i = 0; i < V_KINDS; i++) {
		struct victim *v = &rd->vic[i];
		bool all = true;

		for (int j = 0; j < v->nwait; j++)
			all &= v->parked[j];
		if (v->closed || v->early || !all || f < v->close_at)
			continue;
		if (v->what == V_SPLIT && !v->drained) {
			/* Room for the writer; the reader must sleep on. */
			while (read(v->other, junk, sizeof(junk)) > 0)
				continue;
			v->drained = true;
			continue;
		}
		if (v->what == V_SPLIT && !atomic_load(&v->ret[1]))
			continue;
		v->closed = true;
		SL_CHECK_OK(sl_fd_close(v->fd));
		count(rd, C_VICTIMS, v->nwait);
	}
}

/* Runs the coordinator until the phase's parties are done, then joins
 * its threads. */
static void
phase_run(struct round *rd, bool streams, const char *phase)
{
	int64_t next_scan = 0;
	uint64_t rng = rd->rseed ^ (streams ? 0x5747 : 0xd1a1);

	pthread_mutex_lock(&wd.mu);
	wd.rd = rd;
	wd.phase = phase;
	pthread_mutex_unlock(&wd.mu);
	while (atomic_load(&rd->done) < rd->nstarted) {
		int64_t now = sl_now();

		if (streams) {
			stream_duties(rd, now >= next_scan);
			if (now >= next_scan)
				next_scan = now + SL_MILLISECOND;
		}
		if (slt_rnd_below(&rng, 4) == 0)
			sl_yield();
		else
			sl_sleep((int64_t) (20 + slt_rnd_below(&rng, 200)) *
			    SL_MICROSECOND);
	}
	for (int i = 0; i < rd->nstarted; i++)
		if (rd->started[i]->thread)
			SL_CHECK_EQ(pthread_join(rd->started[i]->th, NULL), 0);
	rd->nstarted = 0;
	atomic_store(&rd->done, 0);
	pthread_mutex_lock(&wd.mu);
	wd.rd = NULL;
	pthread_mutex_unlock(&wd.mu);
}

/*
 * The watchdog, a plain thread: a phase in which no party completes an
 * operation for HUNG is reported with everybody's state, and the program
 * aborts.  A thread, because a goroutine that spins without parking (a
 * wait that never waits) can hold every worker, the coordinator's too.
 */
static void *
watchdog(void *arg)
{
	long last = -1;
	int64_t last_move = sl_now();

	(void) arg;
	while (!atomic_load(&wd.stop)) {
		long p = atomic_load(&wd.progress);
		int64_t now = sl_now();

		if (p != last) {
			last = p;
			last_move = now;
		}
		pthread_mutex_lock(&wd.mu);
		if (wd.rd == NULL)
			last_move = now;
		else if (now - last_move > HUNG)
			hung(wd.rd, wd.phase);
		pthread_mutex_unlock(&wd.mu);
		usleep(100 * 1000);
	}
	return (NULL);
}

/* Calls with bad descriptors and pointers, and a refused connection. */
static void
bad_input(struct round *rd)
{
	struct agent *co = &rd->co;
	struct sockaddr_in addr;
	int p[2], s = tcp_socket(), l, closed, fd, rv;
	unsigned char c;
	size_t n;

	nb_pipe(p);
	l = tcp_listener(&addr, 1);
	/* A number that is not open: far above the lowest free one, which
	 * is what the kernel hands out to anyone opening something now. */
	closed = fcntl(p[0], F_DUPFD_CLOEXEC, 500);
	SL_CHECK(closed >= 0);
	close(closed);
	count(rd, C_BAD, 24);
	SL_CHECK_ERR(sl_fd_wait(-1, SL_FD_READ, NULL, SL_FOREVER), SL_EBADF);
	SL_CHECK_ERR(sl_fd_wait(closed, SL_FD_READ, NULL, SL_FOREVER),
	    SL_EBADF);
	SL_CHECK_ERR(sl_fd_wait(1 << 22, SL_FD_WRITE, NULL, SL_FOREVER),
	    SL_EBADF);
	SL_CHECK_ERR(sl_fd_wait(p[0], 0, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_fd_wait(p[0], 4, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_fd_wait(p[0], -1, NULL, SL_FOREVER), SL_EINVAL);
	n = 7;
	SL_CHECK_ERR(sl_read(closed, &c, 1, &n, NULL, SL_FOREVER), SL_EBADF);
	SL_CHECK_EQ(n, 0);
	n = 7;
	SL_CHECK_ERR(sl_write(closed, "x", 1, &n, NULL, SL_FOREVER),
	    SL_EBADF);
	SL_CHECK_EQ(n, 0);
	SL_CHECK_ERR(sl_read(p[0], NULL, 1, &n, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_read(p[0], &c, 1, NULL, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_write(p[1], NULL, 1, &n, NULL, SL_FOREVER),
	    SL_EINVAL);
	fd = 7;
	SL_CHECK_ERR(sl_accept(closed, &fd, NULL, SL_FOREVER), SL_EBADF);
	SL_CHECK_EQ(fd, -1);
	SL_CHECK_ERR(sl_accept(l, NULL, NULL, SL_FOREVER), SL_EINVAL);
	fd = 7;
	rv = sl_accept(p[0], &fd, NULL, SL_FOREVER);
	FD_CHECK(co, rv == SL_ESYSTEM && errno == ENOTSOCK && fd == -1,
	    "sl_accept on a pipe: %s (%s), *fd %d", sl_errname(rv),
	    strerror(errno), fd);
	n = 7;
	rv = sl_read(l, &c, 1, &n, NULL, SL_FOREVER);
	FD_CHECK(co, rv == SL_ESYSTEM && errno == ENOTCONN && n == 0,
	    "sl_read on a listener: %s (%s), *n %zu", sl_errname(rv),
	    strerror(errno), n);
	SL_CHECK_ERR(sl_connect(s, NULL, 0, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_connect(closed, (struct sockaddr *) &addr,
	    sizeof(addr), NULL, SL_FOREVER), SL_EBADF);
	SL_CHECK_ERR(sl_fd_close(-1), SL_EBADF);
	SL_CHECK_ERR(sl_fd_close(closed), SL_EBADF);
	SL_CHECK_OK(sl_read(p[0], NULL, 0, &n, NULL, SL_FOREVER));
	SL_CHECK_EQ(n, 0);
	SL_CHECK_OK(sl_write(p[1], NULL, 0, NULL, NULL, SL_FOREVER));
	/* Nobody listens at the port once its listener is gone. */
	SL_CHECK_OK(sl_fd_close(l));
	rv = sl_connect(s, (struct sockaddr *) &addr, sizeof(addr), NULL,
	    sl_now() + FAR);
	FD_CHECK(co, rv == SL_ECONNREFUSED && errno == ECONNREFUSED,
	    "sl_connect to a closed port: %s (%s)", sl_errname(rv),
	    strerror(errno));
	SL_CHECK_OK(sl_fd_close(s));
	close(p[0]);
	close(p[1]);
}

/* Makes the pipes and socketpairs and lays out the ends and streams
 * (the TCP ends get their descriptors in the dial phase). */
static void
streams_setup(struct round *rd)
{
	uint64_t rng = rd->rseed ^ UINT64_C(0x57ea);
	int threads[N_THREADS];

	rd->ns = rd->np + 2 * rd->nu + 2 * rd->nt;
	rd->nends = 2 * (rd->np + rd->nu + rd->nt);
	rd->ends = calloc((size_t) rd->nends, sizeof(*rd->ends));
	rd->st = calloc((size_t) rd->ns, sizeof(*rd->st));
	if (rd->ends == NULL || rd->st == NULL)
		SLT_FATAL("out of memory");
	for (int i = 0; i < rd->nends; i++) {
		struct end *e = &rd->ends[i];
		uint32_t r = slt_rnd_below(&rng, 100);

		e->fd = -1;
		e->kind = i < 2 * rd->np ? K_PIPE : i < 2 * (rd->np + rd->nu) ?
		    K_UNIX : K_TCP;
		atomic_store(&e->users, e->kind == K_PIPE ? 1 : 2);
		e->kill_at = 0.02 + 0.9 * slt_rnd_below(&rng, 1000) / 1000.0;
		/* The coordinator closes ends under their parties, except
		 * under TSan (see the top); a pipe end's only party may
		 * close it itself anywhere. */
#ifdef SLT_TSAN
		if (e->kind == K_PIPE && r < 12)
			e->kill = KILL_SELF;
#else
		if (e->kind == K_PIPE && r < 6)
			e->kill = KILL_SELF;
		else if (r < 12)
			e->kill = KILL_FOREIGN;
#endif
	}
	for (int i = 0; i < rd->np; i++) {
		int fds[2];

		nb_pipe(fds);
		rd->ends[2 * i].fd = fds[0];
		rd->ends[2 * i + 1].fd = fds[1];
	}
	for (int i = 0; i < rd->nu; i++) {
		int fds[2];

		nb_socketpair(fds);
		rd->ends[2 * (rd->np + i)].fd = fds[0];
		rd->ends[2 * (rd->np + i) + 1].fd = fds[1];
	}
	for (int i = 0; i < rd->ns; i++) {
		struct stream *s = &rd->st[i];
		int pair;

		s->id = i;
		if (i < rd->np) {
			s->kind = K_PIPE;
			s->r = &rd->ends[2 * i];
			s->w = &rd->ends[2 * i + 1];
		} else {
			pair = rd->np + (i - rd->np) / 2;
			s->kind = i < rd->np + 2 * rd->nu ? K_UNIX : K_TCP;
			s->w = &rd->ends[2 * pair + (i - rd->np) % 2];
			s->r = &rd->ends[2 * pair + 1 - (i - rd->np) % 2];
		}
		s->off = (uint32_t) slt_rnd_below(&rng, PERIOD);
		s->wmax = rnd_log(&rng, 16, MAX_CHUNK);
		s->rmax = rnd_log(&rng, s->wmax / 8, MAX_CHUNK);
		s->quota = (uint64_t) ((double) (s->wmax *
		    (2 + slt_rnd_below(&rng, 15))) * rd->work);
		if (s->quota > (uint64_t) ((double) MAX_QUOTA * rd->work))
			s->quota = (uint64_t) ((double) MAX_QUOTA * rd->work);
		if (s->quota < 1)
			s->quota = 1;
		s->calm = slt_rnd_below(&rng, 3) == 0;
		rd->total += s->quota;
	}
	/* A thread reads one stream and writes another (not TCP's). */
	for (int i = 0; i < N_THREADS; i++)
		threads[i] = (int) slt_rnd_below(&rng,
		    (uint32_t) (rd->np + 2 * rd->nu));
	for (int i = 0; i < rd->ns; i++) {
		struct stream *s = &rd->st[i];

		agent_init(rd, &s->writer, writer_run, N_THREADS > 1 &&
		    threads[1] == i && threads[0] != i, "stream %d writer", i);
		agent_init(rd, &s->reader, reader_run, threads[0] == i,
		    "stream %d reader", i);
		s->writer.s = s->reader.s = s;
	}
}

/* The dial phase: makes the TCP connections, as described at the top. */
static void
dial_phase(struct round *rd)
{
	struct agent *co = &rd->co;
	long aborted, tagless;

	rd->lfd = tcp_listener(&rd->addr, SOMAXCONN);
	rd->cfd = calloc((size_t) rd->nt + 1, sizeof(*rd->cfd));
	rd->sfd = calloc((size_t) rd->nt + 1, sizeof(*rd->sfd));
	if (rd->cfd == NULL || rd->sfd == NULL)
		SLT_FATAL("out of memory");
	for (int i = 0; i < rd->nt; i++) {
		rd->cfd[i] = -1;
		atomic_store(&rd->sfd[i], -1);
	}
	SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(),
	    &rd->accept_stop));
	for (int i = 0; i <= N_DIALERS; i++)
		agent_start(&rd->dialer[i]);
	for (int i = 0; i < N_ACCEPTORS; i++)
		agent_start(&rd->acceptor[i]);
	phase_run(rd, false, "dial phase");
	aborted = atomic_load(&rd->c[C_ABORTED]);
	tagless = atomic_load(&rd->c[C_TAGLESS]);
	SL_CHECK_EQ(atomic_load(&rd->matched), rd->nt);
	FD_CHECK(co, tagless <= aborted, "%ld connections accepted without "
	    "a tag, but only %ld connects gave up after trying", tagless,
	    aborted);
	for (int i = 0; i < rd->nt; i++) {
		struct end *c = &rd->ends[2 * (rd->np + rd->nu + i)];

		FD_CHECK(co, rd->cfd[i] >= 0 && atomic_load(&rd->sfd[i]) >= 0,
		    "connection %d: dialer fd %d, acceptor fd %d", i,
		    rd->cfd[i], atomic_load(&rd->sfd[i]));
		c[0].fd = rd->cfd[i];
		c[1].fd = atomic_load(&rd->sfd[i]);
		if (c[0].fd < 0 || c[1].fd < 0)
			SLT_FATAL("the dial phase failed");
	}
	sl_ctx_release(rd->accept_stop);
	/* Nobody waits on it now; what dialers left in its backlog goes. */
	SL_CHECK_OK(sl_fd_close(rd->lfd));
}

/* Makes the victims' descriptors (fresh: never waited on) and the
 * probes'. */
static void
victims_setup(struct round *rd)
{
	uint64_t rng = rd->rseed ^ UINT64_C(0x71c7);
	struct sockaddr_in addr;
	int fds[2];

	for (int i = 0; i < V_KINDS; i++) {
		struct victim *v = &rd->vic[i];
		uint32_t r = slt_rnd_below(&rng, 4);

		v->what = i;
		v->other = v->lfd = v->filler = -1;
		v->nwait = i == V_MULTI || i == V_SPLIT ? 2 : 1;
		v->want[0] = EPOLLIN;
		v->afd = -2;
		v->deadline = r & 1 ? sl_now() + FAR : SL_FOREVER;
		if (r & 2)
			SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(),
			    &v->ctx)); /* live until the round ends */
		v->close_at = 0.05 + 0.85 * slt_rnd_below(&rng, 1000) / 1000.0;
		switch (i) {
		case V_READ:
		case V_THREAD:
			nb_pipe(fds);
			v->fd = fds[0];
			v->other = fds[1];
			break;
		case V_WAIT_R:
			nb_socketpair(fds);
			v->fd = fds[0];
			v->other = fds[1];
			break;
		case V_WRITE:
			nb_pipe(fds);
			v->fd = fds[1];
			v->other = fds[0];
			v->prefill = fill(v->fd);
			v->want[0] = EPOLLOUT;
			break;
		case V_WAIT_RW:
		case V_MULTI:
		case V_SPLIT:
			/* Full one way, empty the other. */
			nb_socketpair(fds);
			v->fd = fds[0];
			v->other = fds[1];
			v->prefill = fill(v->fd);
			if (i == V_WAIT_RW)
				v->want[0] = EPOLLIN | EPOLLOUT;
			v->want[1] = EPOLLOUT;
			break;
		case V_ACCEPT:
			v->fd = tcp_listener(&v->addr, 4);
			break;
		default:
			/* A backlog of 0 takes one connection; the next SYN
			 * is dropped and its connect waits (for retries a
			 * second and more apart). */
			v->lfd = tcp_listener(&v->addr, 0);
			v->filler = tcp_socket();
			SL_ASSERT_OK(sl_connect(v->filler,
			    (struct sockaddr *) &v->addr, sizeof(v->addr),
			    NULL, sl_now() + FAR));
			/* Queued once the listener is readable. */
			SL_ASSERT_OK(sl_fd_wait(v->lfd, SL_FD_READ, NULL,
			    sl_now() + FAR));
			v->fd = tcp_socket();
			v->want[0] = EPOLLOUT;
			break;
		}
		for (int j = 0; j < v->nwait; j++) {
			agent_init(rd, &v->ag[j], victim_run, i == V_THREAD,
			    "victim %d", i * 10 + j);
			v->ag[j].v = v;
			v->ag[j].idx = j;
		}
	}
	nb_pipe(rd->crowd.rp);
	nb_socketpair(rd->crowd.sp);
	(void) fill(rd->crowd.sp[0]);
	rd->crowd.at = 0.05 + 0.85 * slt_rnd_below(&rng, 1000) / 1000.0;
	for (int j = 0; j < 2 * CROWD; j++) {
		agent_init(rd, &rd->crowd.ag[j], crowd_run, j == 0,
		    "crowd %d", j);
		rd->crowd.ag[j].idx = j;
		rd->crowd.rv[j] = -1;
	}
	nb_pipe(rd->idle);
	nb_pipe(rd->full);
	rd->full_prefill = fill(rd->full[1]);
	rd->idle_l = tcp_listener(&addr, 4);
	for (int i = 0; i < N_PROBES; i++) {
		struct probe *p = &rd->probe[i];

		p->what = i % P_KINDS;
		agent_init(rd, &p->ag, probe_run, p->what == P_THREAD,
		    "probe %d", i);
		p->ag.p = p;
	}
}

/* Checks the streams, victims and probes once every party is done. */
static void
round_verify(struct round *rd)
{
	struct agent *co = &rd->co;

	for (int i = 0; i < rd->ns; i++) {
		struct stream *s = &rd->st[i];
		uint64_t wr = atomic_load(&s->written);
		uint64_t rc = atomic_load(&s->received);
		/* Unless its reader's end was closed under it, a stream
		 * arrives whole, even when its writer's end was (a TCP
		 * close may reset what was in flight). */
		bool exact = !killed(s->r) && !(s->kind == K_TCP &&
		    killed(s->w));

		FD_CHECK(co, atomic_load(&s->wdone) != W_RUNNING,
		    "stream %d: the writer did not finish", i);
		FD_CHECK(co, s->rend != R_RUNNING && s->rend != R_BROKEN,
		    "stream %d: the reader ended as %d", i, s->rend);
		if (exact) {
			FD_CHECK(co, rc == wr && (s->rend == R_EOF ||
			    (s->rend == R_RESET && killed(s->w))),
			    "stream %d (kind %d, fd %d->%d, writer end %s): "
			    "%" PRIu64 " bytes reported written, %" PRIu64
			    " received, reader ended as %d", i, s->kind,
			    s->w->fd, s->r->fd, killed(s->w) ? "closed under "
			    "it" : "open", wr, rc, s->rend);
		} else {
			FD_CHECK(co, rc <= wr, "stream %d: %" PRIu64 " bytes "
			    "received but only %" PRIu64 " written", i, rc,
			    wr);
		}
	}
	/* Closed for real, whoever closed them (nothing has been opened
	 * since, so the numbers are free). */
	for (int i = 0; i < rd->nends; i++) {
		struct end *e = &rd->ends[i];

		FD_CHECK(co, atomic_load(&e->state) != E_OPEN &&
		    fcntl(e->fd, F_GETFD) == -1 && errno == EBADF,
		    "end %d (fd %d) still open, state %d", i, e->fd,
		    atomic_load(&e->state));
	}
	for (int i = 0; i < V_KINDS; i++) {
		struct victim *v = &rd->vic[i];

		FD_CHECK(co, v->closed && v->early == 0, "victim %d.%d (kind %d, "
		    "fd %d) ended before %s: %s", i, v->early - 1, v->what,
		    v->fd, v->what == V_SPLIT && v->early == 2 ? "there was "
		    "room" : v->what == V_SPLIT ? "its close (woken by room "
		    "made for the writer?)" : "its close",
		    sl_errname(v->rv[v->early > 0 ? v->early - 1 : 0]));
		if (v->what == V_SPLIT)
			FD_CHECK(co, v->rv[1] == 0, "victim %d.1, waiting to "
			    "write: %s once there was room", i,
			    sl_errname(v->rv[1]));
		for (int j = 0; j < v->nwait; j++) {
			if (v->what == V_SPLIT && j == 1)
				continue;
			FD_CHECK(co, v->rv[j] == SL_ECLOSED, "victim %d.%d "
			    "(kind %d) blocked on fd %d: sl_fd_close woke it "
			    "with %s, not SL_ECLOSED", i, j, v->what, v->fd,
			    sl_errname(v->rv[j]));
			if (v->what == V_WRITE || (v->what == V_MULTI &&
			    j == 1))
				FD_CHECK(co, v->n[j] < VIC_WRITE,
				    "victim write: *n %zu", v->n[j]);
			else
				FD_CHECK(co, v->n[j] == 0, "victim %d.%d: *n "
				    "%zu", i, j, v->n[j]);
		}
		if (v->what == V_ACCEPT)
			FD_CHECK(co, v->afd == -1, "victim accept: *fd %d",
			    v->afd);
		if (v->what == V_WRITE || v->what == V_MULTI) {
			/* What went in before, and what the cut-short write
			 * reported: no more, no less. */
			size_t w = v->what == V_WRITE ? v->n[0] : v->n[1];
			size_t got = drain(v->other);

			FD_CHECK(co, w < VIC_WRITE && got == v->prefill + w,
			    "victim %d: %zu bytes came out, %zu went in "
			    "before plus *n %zu", i, got, v->prefill, w);
		}
	}
	for (int i = 0; i < 2 * CROWD; i++)
		FD_CHECK(co, rd->crowd.rv[i] == 0, "crowd %d, waiting to %s fd "
		    "%d with %d others: %s, not woken by readiness", i,
		    i < CROWD ? "read" : "write", i < CROWD ? rd->crowd.rp[0] :
		    rd->crowd.sp[0], CROWD - 1, sl_errname(rd->crowd.rv[i]));
	{
		size_t moved = 0, got;

		for (int i = 0; i < N_PROBES; i++)
			moved += rd->probe[i].moved;
		SL_CHECK_OK(sl_fd_close(rd->full[1]));
		got = drain(rd->full[0]);
		FD_CHECK(co, got == rd->full_prefill + moved, "full pipe: %zu "
		    "bytes, %zu before plus %zu the timed-out writes "
		    "reported", got, rd->full_prefill, moved);
	}
}

/* Closes what the round still holds and frees it. */
static void
round_cleanup(struct round *rd)
{
	for (int i = 0; i < V_KINDS; i++) {
		struct victim *v = &rd->vic[i];

		if (!v->closed)
			close(v->fd);
		if (v->other >= 0)
			close(v->other);
		if (v->lfd >= 0)
			close(v->lfd);
		if (v->filler >= 0)
			close(v->filler);
		sl_ctx_release(v->ctx);
	}
	for (int i = 0; i < 2; i++) {
		close(rd->crowd.rp[i]);
		close(rd->crowd.sp[i]);
	}
	close(rd->idle[0]);
	close(rd->idle[1]);
	close(rd->full[0]);
	SL_CHECK_OK(sl_fd_close(rd->idle_l));
	if (rd->fdinfo >= 0)
		close(rd->fdinfo);
	free(rd->info);
	free(rd->ends);
	free(rd->st);
	free(rd->cfd);
	free(rd->sfd);
	free(rd->started);
	free((void *) rd->slot);
}

/*
 * One round, run by the main goroutine: the bad-input calls, the dial
 * phase, then the streams, victims and probes all at once, with the
 * coordinator closing ends and victims at their moments; then the
 * checks, and the descriptor count back where it was.
 */
static void
run_round(struct round *rd)
{
	struct agent *co = &rd->co;
	char fdl0[2048], fdl1[2048];
	int fds0 = fds_open(fdl0, sizeof(fdl0)), fds1;
	size_t g0 = sl_numgoroutine();
	int64_t t;

	snprintf(co->name, sizeof(co->name), "coordinator");
	co->rd = rd;
	co->rng = rd->rseed ^ UINT64_C(0xc00d);
	rd->fdinfo = -1;
	rd->maxslots = 2 * (rd->np + 2 * rd->nu + 2 * rd->nt) + N_DIALERS +
	    1 + N_ACCEPTORS + V_KINDS * VIC_WAITERS + 2 * CROWD + N_PROBES;
	rd->slot = calloc((size_t) rd->maxslots, sizeof(*rd->slot));
	rd->started = calloc((size_t) rd->maxslots, sizeof(*rd->started));
	rd->infocap = 1 << 18;
	rd->info = malloc(rd->infocap);
	if (rd->slot == NULL || rd->started == NULL || rd->info == NULL)
		SLT_FATAL("out of memory");

	bad_input(rd);
	streams_setup(rd);
	for (int i = 0; i <= N_DIALERS; i++) {
		agent_init(rd, &rd->dialer[i], dialer_run, i == N_DIALERS,
		    "dialer %d", i);
		rd->dialer[i].idx = i;
	}
	for (int i = 0; i < N_ACCEPTORS; i++)
		agent_init(rd, &rd->acceptor[i], acceptor_run, false,
		    "acceptor %d", i);
	victims_setup(rd); /* also agent slots: before the canceller */
	sl_waitgroup_add(&rd->canceller_wg, 1);
	SL_ASSERT_OK(sl_go(canceller, rd));

	dial_phase(rd);

	/* From here until every party is done nothing opens a descriptor,
	 * so the number of one closed under its parties is not reused: a
	 * party that calls on it gets EBADF, not somebody else's file. */
	{
		int ep = epoll_fd_find();
		char path[64];

		FD_CHECK(co, ep >= 0, "no single epoll descriptor in "
		    "/proc/self/fd");
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
		rd->fdinfo = open(path, O_RDONLY | O_CLOEXEC);
		if (rd->fdinfo < 0)
			SLT_FATAL("open %s: %s", path, strerror(errno));
		for (int i = 0; i < V_KINDS; i++)
			FD_CHECK(co, epoll_events(rd, rd->vic[i].fd) < 0,
			    "victim fd "
			    "%d is in the epoll set before anybody waited on "
			    "it", rd->vic[i].fd);
	}
	/* The clock of the phase starts once everybody is running (starting
	 * them is slow under TSan). */
	atomic_store(&rd->t0, sl_now());
	atomic_store(&rd->t_cap, SL_FOREVER);
	for (int i = 0; i < rd->ns; i++) {
		agent_start(&rd->st[i].reader);
		agent_start(&rd->st[i].writer);
	}
	for (int i = 0; i < V_KINDS; i++) {
		rd->vic[i].nstarted = 1;
		agent_start(&rd->vic[i].ag[0]);
	}
	for (int i = 0; i < 2 * CROWD; i++)
		agent_start(&rd->crowd.ag[i]);
	for (int i = 0; i < N_PROBES; i++)
		agent_start(&rd->probe[i].ag);
	atomic_store(&rd->t0, sl_now());
	atomic_store(&rd->t_cap, atomic_load(&rd->t0) + ROUND_CAP);
	phase_run(rd, true, "stream phase");

	round_verify(rd);
	atomic_store(&rd->stop, 1);
	sl_waitgroup_wait(&rd->canceller_wg);
	for (int i = 0; i < rd->maxslots; i++)
		sl_ctx_release(atomic_exchange(&rd->slot[i], NULL));
	round_cleanup(rd);

	/* Every goroutine returns, and every descriptor is closed. */
	t = sl_now();
	while (sl_numgoroutine() > g0 && sl_now() - t < HUNG)
		sl_sleep(SL_MILLISECOND);
	FD_CHECK(co, sl_numgoroutine() == g0, "%zu goroutines left, %zu "
	    "before the round", sl_numgoroutine(), g0);
	fds1 = fds_open(fdl1, sizeof(fdl1));
	FD_CHECK(co, fds1 == fds0, "%d descriptors open after the round, %d "
	    "before:\n%safter:\n%s", fds1, fds0, fdl0, fdl1);
}

/* ---- the cases ----------------------------------------------------------- */

/* One test case: the worker count, the seed, the totals. */
struct fd_case {
	int      procs;    /* workers */
	uint64_t seed;     /* the built-in seed */
	uint64_t run_seed; /* the seed in use */
	double   work;     /* byte quotas' scale */
	int      np, nu, nt; /* pipes, socketpairs, connections */
};

/* The main goroutine of a case: ROUNDS rounds, then a summary. */
static void
body_chaos_fd(void *arg)
{
	struct fd_case *c = arg;
	long t[C_N];
	int64_t t0 = sl_now();
	pthread_t dog;
	int p[2];

	/* Start the poller first, so that every round counts its two
	 * descriptors (epoll, eventfd) before and after alike. */
	nb_pipe(p);
	SL_ASSERT_OK(sl_fd_wait(p[1], SL_FD_WRITE, NULL, sl_now() + FAR));
	close(p[0]);
	close(p[1]);
	atomic_store(&wd.stop, 0);
	SL_ASSERT_OK(pthread_create(&dog, NULL, watchdog, NULL));
	memset(t, 0, sizeof(t));
	for (int r = 0; r < ROUNDS; r++) {
		struct round *rd = calloc(1, sizeof(*rd));
		uint64_t x = c->run_seed ^ ((uint64_t) r << 32);

		if (rd == NULL)
			SLT_FATAL("out of memory");
		rd->seed = c->run_seed;
		rd->round = r;
		rd->rseed = slt_rnd(&x);
		rd->procs = c->procs;
		rd->work = c->work;
		rd->np = c->np;
		rd->nu = c->nu;
		rd->nt = c->nt;
		run_round(rd);
		for (int i = 0; i < C_N; i++)
			t[i] += atomic_load(&rd->c[i]);
		free(rd);
	}
	atomic_store(&wd.stop, 1);
	SL_ASSERT_OK(pthread_join(dog, NULL));
	printf("chaos_fd seed 0x%" PRIx64 " procs %d: %d rounds of %d "
	    "streams in %.2f s: %.1f MB written, %.1f read; %ld calls: %ld "
	    "timed out, %ld canceled, %ld deadline, %ld over before, %ld "
	    "partial writes; %ld closed, %ld EBADF, %ld EPIPE, %ld reset, "
	    "%ld EOF; %ld ready; "
	    "%ld ends closed under their parties, %ld victims, %ld probes; "
	    "%ld dials (%ld gave up, %ld accepted untagged); %ld bad calls\n",
	    c->run_seed, c->procs, ROUNDS, c->np + 2 * c->nu + 2 * c->nt,
	    (double) (sl_now() - t0) / SL_SECOND, t[C_WRITTEN] / 1e6,
	    t[C_READ] / 1e6, t[C_CALLS], t[C_TIMEDOUT], t[C_CANCELED],
	    t[C_DEADLINE], t[C_EXPIRED], t[C_PARTIAL], t[C_CLOSED], t[C_BADF],
	    t[C_EPIPE], t[C_RESET], t[C_EOF], t[C_READY], t[C_KILLS],
	    t[C_VICTIMS],
	    t[C_PROBES], t[C_DIALS],
	    t[C_ABORTED], t[C_TAGLESS], t[C_BAD]);
	fflush(stdout);
	slt_replay_hint("chaos_fd", c->run_seed, c->procs);
}

/* With no scheduler running, a call that must wait says SL_ESTATE; one
 * that need not wait still works. */
static void
check_no_scheduler(void)
{
	int p[2];
	unsigned char c = 0;
	size_t n = 7;

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(sl_fd_wait(p[0], SL_FD_READ, NULL, SL_FOREVER),
	    SL_ESTATE);
	assert_int_equal(sl_read(p[0], &c, 1, &n, NULL, SL_FOREVER),
	    SL_ESTATE);
	assert_int_equal(n, 0);
	assert_int_equal(write(p[1], "k", 1), 1);
	assert_int_equal(sl_read(p[0], &c, 1, &n, NULL, SL_FOREVER), 0);
	assert_int_equal(n, 1);
	assert_int_equal(c, 'k');
	(void) fill(p[1]);
	n = 7;
	assert_int_equal(sl_write(p[1], "z", 1, &n, NULL, SL_FOREVER),
	    SL_ESTATE);
	assert_int_equal(n, 0);
	assert_int_equal(sl_fd_close(p[0]), 0);
	assert_int_equal(sl_fd_close(p[1]), 0);
	assert_int_equal(sl_fd_close(p[1]), SL_EBADF);
}

/* One case: its seed and sizes, sl_main, then the calls that need no
 * scheduler, and the descriptors all closed again. */
static void
test_chaos_fd(void **state)
{
	struct fd_case *c = *state;
	struct rlimit rl;
	char fdl0[4096], fdl1[4096];
	int fds0 = fds_open(fdl0, sizeof(fdl0)), fds1;
	long need;

	c->run_seed = slt_seed(c->seed);
	c->work = slt_scale();
	c->np = N_PIPE;
	c->nu = N_UNIX;
	c->nt = N_TCP;
#ifdef SLT_TSAN
	c->work /= TSAN_DIVISOR;
	c->np /= TSAN_STREAMS;
	c->nu /= TSAN_STREAMS;
	c->nt /= TSAN_STREAMS;
#endif
	/* Within the descriptor limit (1024 by default): a round holds two
	 * per pair, a few dozen more, and what cmocka and the runtime
	 * hold. */
	need = 2 * (N_PIPE + N_UNIX + N_TCP) + 64 + fds0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && (rlim_t) need > rl.rlim_cur) {
		double f = (double) ((long) rl.rlim_cur - 64 - fds0) /
		    (double) (need - 64 - fds0);

		c->np = (int) (N_PIPE * f) > 1 ? (int) (N_PIPE * f) : 1;
		c->nu = (int) (N_UNIX * f) > 1 ? (int) (N_UNIX * f) : 1;
		c->nt = (int) (N_TCP * f) > 1 ? (int) (N_TCP * f) : 1;
	}
	pat_fill(c->run_seed);
	slt_run_procs(c->procs, body_chaos_fd, c);
	check_no_scheduler();
	fds1 = fds_open(fdl1, sizeof(fdl1));
	if (fds1 != fds0)
		fail_msg("%d descriptors open after sl_main, %d before:\n%s"
		    "after:\n%s", fds1, fds0, fdl0, fdl1);
}

static struct fd_case cases[] = {
	{ .procs = 1, .seed = 0x5eed0001 }, { .procs = 1, .seed = 0x5eed0002 },
	{ .procs = 1, .seed = 0x5eed0003 }, { .procs = 2, .seed = 0x5eed0001 },
	{ .procs = 2, .seed = 0x5eed0002 }, { .procs = 2, .seed = 0x5eed0003 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_fd_1_worker_seed_1", test_chaos_fd, NULL, NULL,
		    &cases[0] },
		{ "test_chaos_fd_1_worker_seed_2", test_chaos_fd, NULL, NULL,
		    &cases[1] },
		{ "test_chaos_fd_1_worker_seed_3", test_chaos_fd, NULL, NULL,
		    &cases[2] },
		{ "test_chaos_fd_2_workers_seed_1", test_chaos_fd, NULL, NULL,
		    &cases[3] },
		{ "test_chaos_fd_2_workers_seed_2", test_chaos_fd, NULL, NULL,
		    &cases[4] },
		{ "test_chaos_fd_2_workers_seed_3", test_chaos_fd, NULL, NULL,
		    &cases[5] },
	};

	/* fd.h: "EPIPE once the reader is gone: ignore SIGPIPE to get it".
	 * The runtime leaves SIGPIPE alone, so a program that writes to
	 * pipes and sockets ignores it, as this one does. */
	signal(SIGPIPE, SIG_IGN);
	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
