/*
 * test_chaos_group.c — a randomized, seeded stress test of sl_group
 * (sluice/group.h, Go's errgroup) and of the thread pool behind
 * sl_blocking and sl_blocking_ctx (sluice/runtime.h): what the headers
 * promise holds whatever mix of starts, failures, cancellations, limits
 * and blocking calls races on them.
 *
 * Why: test_group.c and test_blocking.c pin down one interleaving per
 * case.  Two functions failing at once, a parent canceled while a limited
 * group's creator waits for a slot, a nested start racing the last
 * function's return, a call's context ending just as a pool thread takes
 * it, more callers than pool threads: these show up only when many kinds
 * of event meet at random.
 *
 * How: each round runs, at once, N_GROUPS groups and a crowd of blocking
 * calls (B_CALLERS goroutines, more than the pool's 32 threads so that
 * calls queue, and B_THREADS plain pthreads).  Each group is made by its
 * own creator goroutine under a random parent: none, background, one that
 * a canceler goroutine cancels (with or without a cause) at a random
 * moment or never, one with a timeout of a few milliseconds, or one that
 * is already canceled; with or without a limit.  Its functions are
 * started with sl_group_go and sl_group_trygo, by the creator, by 0 to 2
 * feeder goroutines beside it (joined before its wait, as the header
 * requires), and from inside running functions (nested, as the header
 * allows; with a limit only trygo, as a go there could wait for a slot
 * that only its own return frees).  Each does random work (yields,
 * sleeps, waits on the group's context in a select, sl_sleep_ctx or a
 * select with the context, plain and _ctx blocking calls, more starts),
 * then returns 0 or a code unique in the round (or, having seen the
 * context done, its error, as Go code returns ctx.Err()).  A limited
 * group may first fill every slot with "pinned" functions that wait for a
 * gate, so that what trygo must return is known exactly, while 1 to 3
 * helper goroutines' sl_group_go wait for slots.  The blocking calls draw
 * a context (none, background, already canceled, canceled by a
 * goroutine at a random moment, timing out), a deadline (none, past,
 * near, far) and a function (nothing, a sleep, a read of one byte from a
 * pipe that a writer goroutine fills slowly).  Checked:
 *
 *   sl_group
 *     - with a limit n, never more than n functions run at once (an
 *       occupancy counter inside each); trygo returns SL_EAGAIN only with
 *       a limit, 0 when a slot is known to be free (pinned phase) and
 *       SL_EAGAIN when every slot is known to be held; sl_group_go never
 *       returns SL_EAGAIN, and with every slot pinned it returns only
 *       after a pinned function has returned (and starts nothing before),
 *       and no more helpers' go have returned than functions have;
 *     - a function whose go or trygo returned 0 runs exactly once, one
 *       whose call failed never runs (checked again once the round has
 *       settled); every function gets the group's context;
 *     - sl_group_wait returns only after every started function has
 *       returned (nested ones included); it returns 0 when none failed,
 *       else one of the non-zero codes returned; if the context's cause
 *       was ever seen to be a function's code (it can only be the first
 *       failure's), wait returns that code, and the cause is never seen
 *       before that function has returned it; with one worker, where
 *       returns are totally ordered and nothing runs between a function's
 *       return and its group noting it, wait returns the code of the
 *       failure that returned first (by an atomic sequence taken just
 *       before each return);
 *     - once a failure has returned, the context becomes done (a function
 *       that knows of one waits for it, bounded by HUNG); after wait the
 *       context is done: canceled by the first failure (cause its code),
 *       by wait (SL_ECANCELED), or by the parent first (the parent's
 *       error and cause); a parent that is done makes the group's context
 *       done (checked where the parent is seen done, and by the canceler
 *       right after its cancel); a group under a done parent is born done;
 *     - after wait, sl_group_go and sl_group_trygo return SL_ESTATE and do
 *       not run fn; NULL g, fn or out give SL_EINVAL and change nothing;
 *       outside sl_main sl_group_go gives SL_ESTATE;
 *   sl_blocking, sl_blocking_ctx
 *     - a call returns 0 exactly when fn ran, and then fn ran to its end
 *       before the call returned, exactly once, on a pool thread (not a
 *       worker, not a goroutine) or, from a plain thread, on that thread;
 *     - otherwise it returns SL_ETIMEDOUT (only with a deadline, and not
 *       before it) or the context's error (which the context then has),
 *       and fn never runs, not even later: checked once the round's calls
 *       have all returned and a last call has passed through the pool's
 *       queue, and again after sl_main returned (the pool joined); a call
 *       whose context was done or deadline passed before it began never
 *       runs fn; with no context and no deadline it returns 0;
 *     - the pipe: every byte written is read by exactly the calls whose
 *       fn ran (the bytes left over are those of the calls that did not);
 *   everywhere
 *     - no goroutine is left: sl_numgoroutine is back at its value from
 *       before the round once it settles.
 *
 * Each case runs its rounds with 1 or 2 workers and one seed.  A failure
 * prints the seed, worker count and round; SLUICE_CHAOS_SEED=<number>
 * runs every case with that seed instead of the built-in ones,
 * SLUICE_CHAOS_SEED=random with a new one (printed).  The work scales with
 * SLUICE_TEST_SCALE (valgrind runs 2% of it) and is a third under TSan;
 * the number of blocking callers does not scale (they must outnumber the
 * pool).  A round that does not finish within HUNG is reported with every
 * goroutine's wait.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define SLT_CHAOS /* CHK, rnd: see sltest.h */
#include "sltest.h"

enum {
	N_GROUPS = 3,       /* groups per round, run at once */
	G_TASKS = 96,       /* task records per group (top-level, nested,
	                       pinned, refused) */
	G_TOP = 24,         /* top-level starts per group, before scaling */
	G_TOP_MIN = 4,      /* ... and at least this many */
	G_DEPTH = 3,        /* how deep starts nest inside functions */
	G_STEPS = 5,        /* most steps of work per function */
	B_CALLERS = 44,     /* goroutines making blocking calls (more than
	                       the pool's 32 threads) */
	B_THREADS = 2,      /* plain pthreads making them */
	B_CALLS = 6,        /* calls per caller, before scaling */
	ROUNDS = 40,        /* rounds per case, before scaling */
	ROUNDS_MIN = 2,     /* ... and at least this many */
	TSAN_DIVISOR = 3,   /* less work under TSan */
	PARENT_CODE = 900,  /* the cause a canceler gives a parent (+ group) */
	CODE_BASE = 1000,   /* function codes: CODE_BASE + group * G_TASKS +
	                       task (far from the SL_E codes and the above) */
};

#define US SL_MICROSECOND
#define MS SL_MILLISECOND

/* Longest a round, or a wait that must end, may take: a hang.  A group's
 * context must be done DONE_WAIT after a failure returned (shorter, so
 * that it is reported as what it is, not as a hung round). */
#define HUNG      (60 * SL_SECOND)
#define DONE_WAIT (10 * SL_SECOND)

/* ---- helpers ------------------------------------------------------------- */

static uint64_t   g_seed;              /* the seed of the running case */
static int        g_procs;             /* its workers */
static atomic_int g_round;             /* the round being run */

/* What is running, for failure messages (CHK, sltest.h). */
static void
slt_chaos_where(char *where, size_t len)
{
	snprintf(where, len, "seed 0x%" PRIx64 " procs %d round %d",
	    g_seed, g_procs, atomic_load(&g_round));
}

/* Raises *m to at least v. */
static void
max_raise(atomic_int *m, int v)
{
	int cur = atomic_load(m);

	while (cur < v && !atomic_compare_exchange_weak(m, &cur, v))
		;
}

/* Busy for about us microseconds (holds the worker or thread). */
static void
spin_us(int64_t us)
{
	int64_t end = sl_now() + us * US;

	while (sl_now() < end)
		;
}

/* Waits (sleeping, bounded by HUNG) until *n is 0; true if it is. */
static bool
settle_zero(atomic_int *n)
{
	int64_t end = sl_now() + HUNG;

	while (atomic_load(n) != 0 && sl_now() < end)
		sl_sleep(MS);
	return (atomic_load(n) == 0);
}

/* ---- blocking calls ------------------------------------------------------ */

/* The context of a blocking call. */
enum { CK_NULL, CK_BG, CK_DONE, CK_LATER, CK_TIMEOUT, CK_N };
/* Its deadline. */
enum { DK_FOREVER, DK_PAST, DK_NEAR, DK_FAR, DK_N };
/* What its fn does. */
enum { FK_NOP, FK_SLEEP, FK_USLEEP, FK_PIPE, FK_N };

static const char *ck_name[CK_N] = { "no ctx", "background", "canceled ctx",
	"ctx canceled later", "timeout ctx" };
static const char *dk_name[DK_N] = { "no deadline", "past deadline",
	"near deadline", "far deadline" };
static const char *fk_name[FK_N] = { "nop", "nanosleep", "usleep",
	"pipe read" };

/* One blocking call: how it is made, what its fn did, what it returned.
 * Calls of the blocking crowd live until the case ends (so that a fn that
 * ran late would be seen); calls made by group functions live on their
 * stacks. */
struct call {
	int          ck, dk, fk;     /* CK_*, DK_*, FK_* */
	int64_t      work;           /* ns of sleep for FK_SLEEP/USLEEP */
	int64_t      cancel_after;   /* CK_LATER: the canceler's pause */
	bool         cause;          /* CK_LATER/DONE: cancel with a cause */
	bool         plain;          /* no ctx, no deadline: sl_blocking */
	int          pipe_rd;        /* FK_PIPE: the pipe to read */
	atomic_int  *inflight;       /* fns running, of the round */
	sl_waitgroup *aux;           /* the round's helper goroutines */
	sl_ctx      *ctx;            /* its context (NULL: none) */
	sl_ctx      *cctx;           /* the canceler's reference */
	int64_t      deadline;       /* SL_FOREVER: none */
	bool         thread;         /* made from a plain thread */
	pthread_t    caller;         /* the calling thread */
	int          pre_err;        /* sl_ctx_err(ctx) just before */
	bool         pre_late;       /* deadline passed just before */
	atomic_int   started;        /* fn entered */
	atomic_int   finished;       /* fn reached its end */
	pthread_t    ran_on;         /* where fn ran */
	int          ran_worker;     /* sl_worker_id() there */
	uint64_t     ran_goid;       /* sl_goid() there */
	int          rv;             /* what the call returned */
	int64_t      t_ret;          /* sl_now() after it returned */
	atomic_int   returned;       /* the call has returned */
};

static void
call_fn(void *arg)
{
	struct call *c = arg;
	atomic_int *inflight = c->inflight;
	struct timespec ts;
	ssize_t n;
	char b;

	atomic_fetch_add(inflight, 1);
	CHK(atomic_fetch_add(&c->started, 1) == 0, "blocking call (%s, %s, "
	    "%s): fn ran twice", ck_name[c->ck], dk_name[c->dk],
	    fk_name[c->fk]);
	c->ran_on = pthread_self();
	c->ran_worker = sl_worker_id();
	c->ran_goid = sl_goid();
	switch (c->fk) {
	case FK_SLEEP:
		ts.tv_sec = 0;
		ts.tv_nsec = (long) c->work;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		break;
	case FK_USLEEP:
		usleep((useconds_t) (c->work / US));
		break;
	case FK_PIPE:
		while ((n = read(c->pipe_rd, &b, 1)) < 0 && errno == EINTR)
			;
		CHK(n == 1, "blocking call: the pipe read returned %zd (more "
		    "fns ran than bytes were written)", n);
		break;
	default:
		break;
	}
	atomic_store(&c->finished, 1);
	/* The last touch of c: its caller (and c) may go once fn returns. */
	atomic_fetch_sub(inflight, 1);
}

/* Checks what a call returned against what its fn did. */
static void
call_check(struct call *c)
{
	int st = atomic_load(&c->started), fin = atomic_load(&c->finished);
	int rv = c->rv;

	if (rv == 0) {
		CHK(st == 1 && fin == 1, "blocking call (%s, %s, %s) returned "
		    "0 but fn started %d times, finished %d", ck_name[c->ck],
		    dk_name[c->dk], fk_name[c->fk], st, fin);
		CHK(c->pre_err == 0 && !c->pre_late, "blocking call (%s, %s) "
		    "ran fn though its context was done (%s) or its deadline "
		    "passed (%d) before it began", ck_name[c->ck],
		    dk_name[c->dk], sl_errname(c->pre_err), c->pre_late);
		if (c->thread)
			CHK(st != 1 || (pthread_equal(c->ran_on, c->caller) &&
			    c->ran_goid == 0), "blocking call from a plain "
			    "thread: fn ran on another thread (goroutine %"
			    PRIu64 ")", c->ran_goid);
		else
			CHK(st != 1 || (c->ran_worker == -1 &&
			    c->ran_goid == 0), "blocking call: fn ran on "
			    "worker %d, goroutine %" PRIu64 ", not on a pool "
			    "thread", c->ran_worker, c->ran_goid);
		return;
	}
	CHK(st == 0, "blocking call (%s, %s, %s) returned %s but fn started "
	    "(%d times)", ck_name[c->ck], dk_name[c->dk], fk_name[c->fk],
	    sl_errname(rv), st);
	if (rv == SL_ETIMEDOUT)
		CHK(c->deadline != SL_FOREVER && c->t_ret >= c->deadline,
		    "blocking call (%s, %s) returned SL_ETIMEDOUT %" PRId64
		    " ns before its deadline", ck_name[c->ck], dk_name[c->dk],
		    c->deadline == SL_FOREVER ? INT64_MAX :
		    c->deadline - c->t_ret);
	else
		CHK(c->ctx != NULL && rv == sl_ctx_err(c->ctx),
		    "blocking call (%s, %s) returned %s, its context's error "
		    "is %s", ck_name[c->ck], dk_name[c->dk], sl_errname(rv),
		    c->ctx != NULL ? sl_errname(sl_ctx_err(c->ctx)) : "none");
}

/* Makes call c (its ctx and deadline already set) and checks it. */
static int
call_run(struct call *c)
{
	int64_t t0;
	int rv;

	c->caller = pthread_self();
	c->thread = sl_goid() == 0;
	c->pre_err = sl_ctx_err(c->ctx);
	t0 = sl_now();
	c->pre_late = c->deadline != SL_FOREVER && t0 >= c->deadline;
	if (c->plain)
		rv = sl_blocking(call_fn, c);
	else
		rv = sl_blocking_ctx(call_fn, c, c->ctx, c->deadline);
	c->t_ret = sl_now();
	c->rv = rv;
	call_check(c);
	if (c->ctx == NULL && c->deadline == SL_FOREVER)
		CHK(rv == 0, "blocking call with no context and no deadline "
		    "returned %s", sl_errname(rv));
	atomic_store(&c->returned, 1);
	return (rv);
}

/* A random deadline of kind dk. */
static int64_t
rnd_deadline(uint64_t *rng, int dk)
{
	switch (dk) {
	case DK_PAST:
		return (sl_now() - 1 - (int64_t) rnd(rng, 1000) * US);
	case DK_NEAR:
		return (sl_now() + (int64_t) rnd(rng, 3000) * US);
	case DK_FAR:
		return (sl_now() + 10 * SL_SECOND);
	default:
		return (SL_FOREVER);
	}
}

static void
call_canceler(void *arg)
{
	struct call *c = arg;
	sl_ctx *ctx = c->cctx;
	sl_waitgroup *aux = c->aux;

	sl_sleep(c->cancel_after);
	if (c->cause)
		sl_ctx_cancel_cause(ctx, PARENT_CODE, "canceler");
	else
		sl_ctx_cancel(ctx);
	CHK(sl_ctx_err(ctx) == SL_ECANCELED, "a canceled context reports %s",
	    sl_errname(sl_ctx_err(ctx)));
	sl_ctx_release(ctx);
	sl_waitgroup_done(aux);
}

/* Makes c's context and deadline now (a canceler for CK_LATER), runs the
 * call, releases the context. */
static void
call_make_run(struct call *c, uint64_t *rng)
{
	switch (c->ck) {
	case CK_BG:
		c->ctx = sl_ctx_background();
		break;
	case CK_DONE:
		SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(), &c->ctx));
		if (c->cause)
			sl_ctx_cancel_cause(c->ctx, PARENT_CODE, NULL);
		else
			sl_ctx_cancel(c->ctx);
		break;
	case CK_LATER:
		SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(), &c->ctx));
		c->cctx = sl_ctx_retain(c->ctx);
		sl_waitgroup_add(c->aux, 1);
		SL_ASSERT_OK(sl_go(call_canceler, c));
		break;
	case CK_TIMEOUT:
		SL_ASSERT_OK(sl_ctx_with_timeout(sl_ctx_background(),
		    (int64_t) rnd(rng, 3000) * US - 100 * US, &c->ctx));
		break;
	default:
		c->ctx = NULL;
		break;
	}
	c->deadline = rnd_deadline(rng, c->dk);
	c->plain = c->ck == CK_NULL && c->dk == DK_FOREVER && rnd(rng, 2);
	(void) call_run(c);
	if (c->ck != CK_NULL && c->ck != CK_BG)
		sl_ctx_release(c->ctx);
}

/* ---- groups -------------------------------------------------------------- */

/* The parent of a group. */
enum { PK_NULL, PK_BG, PK_CANCEL, PK_CAUSE, PK_TIMEOUT, PK_DONE, PK_N };

static const char *pk_name[PK_N] = { "none", "background", "canceled",
	"canceled with a cause", "timeout", "done" };

struct grp;

/* A function of a group (its record lives in the group's round). */
struct task {
	struct grp *gr;       /* its group */
	int         id;       /* index in gr->t */
	int         depth;    /* 0: started by the creator */
	int         code;     /* 0, or the code it fails with */
	bool        pinned;   /* waits for the gate, and nothing else */
	bool        tried;    /* started with trygo */
	uint64_t    rng;      /* its generator */
	int         start_rv; /* what its go or trygo returned */
	atomic_int  runs;     /* times it was entered */
	atomic_int  returned; /* it has returned */
	int         ret;      /* what it returned */
	long        seq;      /* gr->seq just before it returned */
};

/* Counters of one group, for the summary line. */
struct gstats {
	long groups;      /* groups run */
	long limited;     /* ... with a limit */
	long pinned;      /* ... whose slots were all pinned at first */
	long fed;         /* ... with feeders beside the creator */
	long started;     /* functions started */
	long nested;      /* ... of them from inside functions */
	long eagain;      /* trygo refused (SL_EAGAIN) */
	long failed;      /* functions that returned non-zero */
	long errs;        /* groups whose wait returned non-zero */
	long seen;        /* groups where a function's cause was seen */
	long parent_done; /* groups whose parent was done by wait */
	long full;        /* groups that reached their limit */
	long bcalls;      /* blocking calls made by functions */
};

struct round;

struct grp {
	struct round *rd;           /* its round */
	int           gi;           /* index in rd->gr */
	uint64_t      rng;          /* the creator's generator */
	uint64_t      crng;         /* the canceler's */
	int           pk;           /* PK_* */
	sl_ctx       *parent;       /* NULL for PK_NULL */
	sl_group     *g;            /* the group */
	sl_ctx       *gctx;         /* its context */
	int           limit;        /* 0: none */
	uint32_t      pfail;        /* % of functions that fail */
	sl_chan      *gate;         /* closed to let pinned functions end */
	atomic_int    next;         /* task records handed out */
	struct task   t[G_TASKS];   /* the functions */
	atomic_int    occ;          /* functions running now */
	atomic_int    occ_max;      /* ... at most */
	atomic_long   seq;          /* order of returns */
	atomic_int    failed;       /* failing functions that returned */
	atomic_int    pins_back;    /* pinned functions that returned */
	atomic_int    back;         /* functions that returned */
	atomic_int    helpers_ok;   /* helpers whose go returned 0 */
	atomic_int    winner;       /* a function's code seen as the cause */
	atomic_int    late;         /* functions run after wait returned */
	atomic_int    bcalls;       /* blocking calls made */
	atomic_bool   undone;       /* done came not DONE_WAIT after a
	                               failure (reported once) */
	int           result;       /* what wait returned */
	sl_waitgroup  aux;          /* its canceler */
	sl_waitgroup  hwg;          /* its helpers and feeders */
	struct gstats st;           /* its counters */
};

/* One round: the groups and the blocking crowd. */
struct round {
	int           r;                     /* which round of the case */
	uint64_t      rseed;                 /* the round's seed */
	struct grp    gr[N_GROUPS];          /* the groups */
	struct call  *calls;                 /* the crowd's calls */
	int           ncalls;                /* ... and how many */
	int           per;                   /* calls per caller */
	uint64_t      crng[B_CALLERS + B_THREADS]; /* callers' generators */
	pthread_t     th[B_THREADS];         /* the plain threads */
	int           pfd[2];                /* the pipe */
	int           npipe;                 /* FK_PIPE calls: bytes to write */
	uint64_t      wrng;                  /* the writer's generator */
	atomic_int    inflight;              /* blocking fns running */
	sl_waitgroup  wg;                    /* creators and callers */
	sl_waitgroup  aux;                   /* cancelers and the writer */
	long          top;                   /* top-level starts per group */
};

static int
gr_code(const struct grp *gr, int id)
{
	return (CODE_BASE + gr->gi * G_TASKS + id);
}

/* The number of task records in use. */
static int
gr_ntasks(struct grp *gr)
{
	int n = atomic_load(&gr->next);

	return (n < G_TASKS ? n : G_TASKS);
}

/* A new task record (NULL when they are used up), drawn from *from, the
 * generator of its starter. */
static struct task *
task_alloc(struct grp *gr, int depth, uint64_t *from)
{
	int i = atomic_fetch_add(&gr->next, 1);
	struct task *t;

	if (i >= G_TASKS)
		return (NULL);
	t = &gr->t[i];
	t->gr = gr;
	t->id = i;
	t->depth = depth;
	t->rng = slt_rnd(from);
	t->code = rnd(from, 100) < gr->pfail ? gr_code(gr, i) : 0;
	t->start_rv = -1;
	return (t);
}

/*
 * What anyone may check of the group's context at any moment before wait
 * returned: a done parent means a done context; its error is one of the
 * two; a cause that is a function's code is that of a function that has
 * returned it, and it never changes (it is the first failure's).
 */
static void
gr_observe(struct grp *gr)
{
	sl_ctx *ctx = gr->gctx;
	int pe = sl_ctx_err(gr->parent), e, c, id, w = 0;

	e = sl_ctx_err(ctx);
	if (pe != 0)
		CHK(e != 0, "group (parent %s): the parent is done (%s), the "
		    "group's context is not", pk_name[gr->pk], sl_errname(pe));
	CHK(e == 0 || e == SL_ECANCELED || (e == SL_EDEADLINE &&
	    gr->pk == PK_TIMEOUT), "group (parent %s): context error %s",
	    pk_name[gr->pk], sl_errname(e));
	c = sl_ctx_cause(ctx, NULL);
	if (c < CODE_BASE)
		return;
	id = c - gr_code(gr, 0);
	CHK(id >= 0 && id < G_TASKS, "group %d: cause %d is no function's "
	    "code", gr->gi, c);
	if (id >= 0 && id < G_TASKS) {
		struct task *t = &gr->t[id];

		CHK(atomic_load(&t->returned) && t->ret == c, "group %d: the "
		    "context's cause is %d before function %d returned it",
		    gr->gi, c, id);
	}
	if (!atomic_compare_exchange_strong(&gr->winner, &w, c))
		CHK(w == c, "group %d: the context's cause changed from %d to "
		    "%d", gr->gi, w, c);
}

/* Records what a go or trygo of t returned and checks it. */
static void
start_checked(struct grp *gr, struct task *t, int rv, const char *who)
{
	t->start_rv = rv;
	if (t->tried && gr->limit > 0)
		CHK(rv == 0 || rv == SL_EAGAIN, "group %d: %s trygo returned "
		    "%s", gr->gi, who, sl_errname(rv));
	else
		CHK(rv == 0, "group %d (limit %d): %s %s returned %s", gr->gi,
		    gr->limit, who, t->tried ? "trygo" : "go",
		    sl_errname(rv));
}

static int task_fn(sl_ctx *ctx, void *arg);

/* A function starts another (trygo only with a limit: a go could wait
 * for a slot that only its caller's return frees). */
static void
task_start_child(struct task *t)
{
	struct grp *gr = t->gr;
	struct task *c;
	int rv;

	if (t->depth >= G_DEPTH ||
	    (c = task_alloc(gr, t->depth + 1, &t->rng)) == NULL)
		return;
	c->tried = gr->limit > 0 || rnd(&t->rng, 2) == 0;
	rv = c->tried ? sl_group_trygo(gr->g, task_fn, c) :
	    sl_group_go(gr->g, task_fn, c);
	start_checked(gr, c, rv, "a nested");
}

/*
 * A function waits a while for the group's context to be done, in one of
 * three ways.  If a failure had returned before, the context must become
 * done: it then waits up to DONE_WAIT.  true: it saw it done and stops.
 */
static bool
task_wait_done(struct task *t, sl_ctx *ctx)
{
	struct grp *gr = t->gr;
	int failed0 = atomic_load(&gr->undone) ? 0 : atomic_load(&gr->failed);
	int64_t dl = sl_now() + (failed0 > 0 ? DONE_WAIT :
	    (int64_t) rnd(&t->rng, 600) * US);
	sl_case cs;
	int rv, chosen = -1;

	switch (rnd(&t->rng, 3)) {
	case 0:
		cs = SL_CASE_RECV(sl_ctx_done(ctx), NULL);
		rv = sl_select(&cs, 1, NULL, dl, &chosen);
		if (rv == 0) {
			CHK(chosen == 0 && !cs.ok, "select on done: case %d, "
			    "ok %d", chosen, cs.ok);
			rv = sl_ctx_err(ctx);
			CHK(rv != 0, "the done channel is closed, sl_ctx_err "
			    "is 0");
		}
		break;
	case 1:
		rv = sl_sleep_ctx(ctx, dl - sl_now());
		if (rv == 0)
			rv = SL_ETIMEDOUT;
		break;
	default:
		cs = SL_CASE_RECV(NULL, NULL);
		rv = sl_select(&cs, 1, ctx, dl, &chosen);
		break;
	}
	if (rv == SL_ETIMEDOUT) {
		CHK(failed0 == 0 || atomic_exchange(&gr->undone, true),
		    "group %d: a function failed, and %d s later the group's "
		    "context is not done", gr->gi,
		    (int) (DONE_WAIT / SL_SECOND));
		return (false);
	}
	CHK((rv == SL_ECANCELED || rv == SL_EDEADLINE) &&
	    rv == sl_ctx_err(ctx), "group %d: a wait for the context "
	    "returned %s, its error is %s", gr->gi, sl_errname(rv),
	    sl_errname(sl_ctx_err(ctx)));
	gr_observe(gr);
	return (rnd(&t->rng, 4) != 0);
}

/* A function makes a blocking call: plain, or with the group's context
 * and a random deadline; its fn sleeps a little or does nothing. */
static void
task_blocking(struct task *t, sl_ctx *ctx, bool with_ctx)
{
	struct grp *gr = t->gr;
	struct call c;

	memset(&c, 0, sizeof(c));
	c.fk = rnd(&t->rng, 3) == 0 ? FK_NOP : FK_SLEEP;
	c.work = (int64_t) rnd(&t->rng, 300) * US;
	c.inflight = &gr->rd->inflight;
	c.ck = with_ctx ? CK_LATER : CK_NULL;
	c.dk = with_ctx ? (int) rnd(&t->rng, DK_N) : DK_FOREVER;
	c.ctx = with_ctx ? ctx : NULL;
	c.deadline = rnd_deadline(&t->rng, c.dk);
	c.plain = !with_ctx;
	(void) call_run(&c);
	atomic_fetch_add(&gr->bcalls, 1);
}

/* One step of a function's work; true when it saw the context done and
 * chose to stop. */
static bool
task_step(struct task *t, sl_ctx *ctx)
{
	uint32_t r = rnd(&t->rng, 100);

	if (r < 12) {
		sl_yield();
	} else if (r < 27) {
		sl_sleep((int64_t) rnd(&t->rng, 300) * US);
	} else if (r < 50) {
		return (task_wait_done(t, ctx));
	} else if (r < 58) {
		task_blocking(t, ctx, false);
	} else if (r < 68) {
		task_blocking(t, ctx, true);
	} else if (r < 88) {
		task_start_child(t);
	} else if (r < 94) {
		spin_us(rnd(&t->rng, 50));
	} else {
		gr_observe(t->gr);
	}
	return (false);
}

/* The function of every task: counts itself in and out of the occupancy,
 * works, returns its code (or, having seen the context done, maybe its
 * error, as Go code returns ctx.Err()). */
static int
task_fn(sl_ctx *ctx, void *arg)
{
	struct task *t = arg;
	struct grp *gr = t->gr;
	int occ, rv, ret = t->code;
	bool stop = false;

	CHK(atomic_fetch_add(&t->runs, 1) == 0, "group %d: function %d ran "
	    "twice", gr->gi, t->id);
	CHK(ctx == gr->gctx, "group %d: a function got another context",
	    gr->gi);
	occ = atomic_fetch_add(&gr->occ, 1) + 1;
	max_raise(&gr->occ_max, occ);
	CHK(gr->limit <= 0 || occ <= gr->limit, "group %d: %d functions run "
	    "at once, limit %d", gr->gi, occ, gr->limit);
	if (t->pinned) {
		rv = sl_chan_recv_ctx(gr->gate, NULL, NULL, sl_now() + HUNG);
		CHK(rv == SL_ECLOSED, "group %d: pinned function: the gate "
		    "gave %s", gr->gi, sl_errname(rv));
	} else {
		int n = (int) rnd(&t->rng, G_STEPS + 1);

		for (int i = 0; i < n && !stop; i++)
			stop = task_step(t, ctx);
		if (stop && ret == 0 && rnd(&t->rng, 3) == 0)
			ret = sl_ctx_err(ctx);
	}
	gr_observe(gr);
	/* Nothing below may yield: with one worker the group notes this
	 * return before any other function runs. */
	t->ret = ret;
	if (ret != 0)
		atomic_fetch_add(&gr->failed, 1);
	if (t->pinned)
		atomic_fetch_add(&gr->pins_back, 1);
	atomic_fetch_add(&gr->back, 1);
	atomic_fetch_sub(&gr->occ, 1);
	t->seq = atomic_fetch_add(&gr->seq, 1);
	atomic_store(&t->returned, 1);
	return (ret);
}

/* Started after wait returned: must never run. */
static int
late_fn(sl_ctx *ctx, void *arg)
{
	struct grp *gr = arg;

	(void) ctx;
	atomic_fetch_add(&gr->late, 1);
	return (0);
}

static void
gr_canceler(void *arg)
{
	struct grp *gr = arg;
	const char *msg = NULL;
	int c;

	sl_sleep((int64_t) rnd(&gr->crng, 4000) * US);
	if (rnd(&gr->crng, 5) != 0) {
		if (gr->pk == PK_CAUSE)
			sl_ctx_cancel_cause(gr->parent, PARENT_CODE + gr->gi,
			    "parent gone");
		else
			sl_ctx_cancel(gr->parent);
		/* The tree is canceled by the time cancel returns. */
		CHK(sl_ctx_err(gr->gctx) != 0, "group %d: its parent was "
		    "canceled, its context is not done", gr->gi);
		c = sl_ctx_cause(gr->gctx, &msg);
		if (c == PARENT_CODE + gr->gi)
			CHK(msg != NULL && strcmp(msg, "parent gone") == 0,
			    "group %d: the parent's cause text is \"%s\"",
			    gr->gi, msg != NULL ? msg : "(null)");
	}
	sl_waitgroup_done(&gr->aux);
}

/* Waits for the creator's helpers and feeders: their starts are the
 * creator's, so they must all be done before wait. */
static void
gr_join_helpers(struct grp *gr, const char *who)
{
	if (sl_waitgroup_wait_ctx(&gr->hwg, NULL, sl_now() + HUNG) != 0) {
		sl_dump_goroutines(stderr);
		SLT_FATAL("group %d: a %s's sl_group_go hung", gr->gi, who);
	}
}

/* A helper of the pinned phase: its go waits for a slot.  Every slot was
 * pinned, and a slot frees only when a function returns: so when its go
 * returns, a pinned function has returned, and the helpers whose go
 * returned are no more than the functions that returned. */
static void
gr_helper(void *arg)
{
	struct task *h = arg;
	struct grp *gr = h->gr;
	int rv, k;

	rv = sl_group_go(gr->g, task_fn, h);
	start_checked(gr, h, rv, "a helper's");
	if (rv == 0) {
		k = atomic_fetch_add(&gr->helpers_ok, 1) + 1;
		CHK(atomic_load(&gr->pins_back) > 0, "group %d: with all %d "
		    "slots pinned, sl_group_go returned before any pinned "
		    "function returned", gr->gi, gr->limit);
		CHK(k <= atomic_load(&gr->back), "group %d: with all %d slots "
		    "pinned, %d helpers' go returned, %d functions returned",
		    gr->gi, gr->limit, k, atomic_load(&gr->back));
	}
	sl_waitgroup_done(&gr->hwg);
}

/*
 * The pinned phase, at the start (nothing runs yet): n functions that wait
 * for the gate take n slots (limit: all of them), every start succeeding;
 * with a limit, then trygo must refuse, and the helpers' go (1 to 3
 * helpers) must wait for functions to return.
 */
static void
gr_pin(struct grp *gr, struct gstats *st)
{
	int n = gr->limit > 0 ? gr->limit : 1 + (int) rnd(&gr->rng, 4), rv;
	int nh = 1 + (int) rnd(&gr->rng, 3);
	struct task *t, *h[3];

	st->pinned += gr->limit > 0;
	for (int i = 0; i < n; i++) {
		if ((t = task_alloc(gr, 0, &gr->rng)) == NULL)
			SLT_FATAL("out of task records");
		t->pinned = true;
		t->tried = rnd(&gr->rng, 2) == 0;
		rv = t->tried ? sl_group_trygo(gr->g, task_fn, t) :
		    sl_group_go(gr->g, task_fn, t);
		t->start_rv = rv;
		CHK(rv == 0, "group %d (limit %d): %d of the slots held, %s "
		    "returned %s", gr->gi, gr->limit, i, t->tried ? "trygo" :
		    "go", sl_errname(rv));
	}
	if (gr->limit > 0) {
		for (int i = 0; i < nh; i++) {
			if ((h[i] = task_alloc(gr, 0, &gr->rng)) == NULL)
				SLT_FATAL("out of task records");
			sl_waitgroup_add(&gr->hwg, 1);
			SL_ASSERT_OK(sl_go(gr_helper, h[i]));
		}
		for (int k = (int) rnd(&gr->rng, 3); k >= 0; k--) {
			if ((t = task_alloc(gr, 0, &gr->rng)) == NULL)
				SLT_FATAL("out of task records");
			t->tried = true;
			rv = sl_group_trygo(gr->g, task_fn, t);
			t->start_rv = rv;
			CHK(rv == SL_EAGAIN, "group %d: all %d slots pinned, "
			    "trygo returned %s", gr->gi, gr->limit,
			    sl_errname(rv));
			if (rnd(&gr->rng, 2) == 0)
				sl_yield();
			else
				sl_sleep((int64_t) rnd(&gr->rng, 200) * US);
		}
		for (int i = 0; i < nh; i++)
			CHK(atomic_load(&h[i]->runs) == 0, "group %d: all %d "
			    "slots pinned, yet a helper's go started its "
			    "function", gr->gi, gr->limit);
	}
	SL_CHECK_OK(sl_chan_close(gr->gate));
	if (gr->limit > 0)
		gr_join_helpers(gr, "helper");
}

/* A feeder: starts some of the top-level functions, alongside the
 * creator (its starts happen before wait: the creator joins it first). */
struct feeder {
	struct grp *gr;
	uint64_t    rng;
	long        n;
};

static void
gr_feed(struct grp *gr, uint64_t *rng, long n, const char *who)
{
	int rv;

	for (long i = 0; i < n; i++) {
		struct task *t = task_alloc(gr, 0, rng);

		if (t == NULL)
			break;
		t->tried = rnd(rng, 3) == 0;
		rv = t->tried ? sl_group_trygo(gr->g, task_fn, t) :
		    sl_group_go(gr->g, task_fn, t);
		start_checked(gr, t, rv, who);
		switch (rnd(rng, 6)) {
		case 0:
			sl_yield();
			break;
		case 1:
			sl_sleep((int64_t) rnd(rng, 200) * US);
			break;
		case 2:
			gr_observe(gr);
			break;
		default:
			break;
		}
	}
}

static void
gr_feeder(void *arg)
{
	struct feeder *f = arg;
	struct grp *gr = f->gr;

	gr_feed(gr, &f->rng, f->n, "a feeder's");
	free(f);
	sl_waitgroup_done(&gr->hwg);
}

/* Bad input: SL_EINVAL, nothing started (checked at the end: no record
 * is given, and the group's counts must come out exact). */
static void
gr_bad_input(struct grp *gr)
{
	sl_group *mark = (sl_group *) &gr->rng, *g = mark;

	CHK(sl_group_make(gr->parent, NULL) == SL_EINVAL, "sl_group_make "
	    "(NULL out) did not return SL_EINVAL");
	CHK(g == mark, "sl_group_make touched out");
	CHK(sl_group_go(NULL, task_fn, NULL) == SL_EINVAL, "sl_group_go(NULL "
	    "g) did not return SL_EINVAL");
	CHK(sl_group_trygo(NULL, task_fn, NULL) == SL_EINVAL,
	    "sl_group_trygo(NULL g) did not return SL_EINVAL");
	CHK(sl_group_go(gr->g, NULL, NULL) == SL_EINVAL, "sl_group_go(NULL "
	    "fn) did not return SL_EINVAL");
	CHK(sl_group_trygo(gr->g, NULL, NULL) == SL_EINVAL,
	    "sl_group_trygo(NULL fn) did not return SL_EINVAL");
	CHK(sl_group_wait(NULL) == SL_EINVAL, "sl_group_wait(NULL) did not "
	    "return SL_EINVAL");
	CHK(sl_group_ctx(NULL) == NULL, "sl_group_ctx(NULL) not NULL");
	sl_group_limit(NULL, 2);
	sl_group_free(NULL);
}

/* Checks the group once wait has returned r: every function, the
 * result, the context. */
static void
gr_check_wait(struct grp *gr, int r, struct gstats *st)
{
	int n = gr_ntasks(gr), first = 0, e, c, pe, pc, w;
	long first_seq = LONG_MAX;
	bool any = false, found = false;

	for (int i = 0; i < n; i++) {
		struct task *t = &gr->t[i];
		int runs = atomic_load(&t->runs);

		if (t->start_rv != 0) {
			CHK(runs == 0, "group %d: function %d ran %d times, "
			    "its start returned %s", gr->gi, i, runs,
			    sl_errname(t->start_rv));
			st->eagain += t->start_rv == SL_EAGAIN;
			continue;
		}
		st->started++;
		st->nested += t->depth > 0;
		CHK(runs == 1 && atomic_load(&t->returned), "group %d: "
		    "function %d (depth %d) ran %d times and %s returned when "
		    "wait returned", gr->gi, i, t->depth, runs,
		    atomic_load(&t->returned) ? "had" : "had not");
		if (!atomic_load(&t->returned) || t->ret == 0)
			continue;
		st->failed++;
		any = true;
		found |= t->ret == r;
		if (t->seq < first_seq) {
			first_seq = t->seq;
			first = t->ret;
		}
	}
	if (!any)
		CHK(r == 0, "group %d: no function failed, wait returned %d",
		    gr->gi, r);
	else
		CHK(found, "group %d: wait returned %d, which no function "
		    "returned", gr->gi, r);
	if (any && g_procs == 1)
		CHK(r == first, "group %d (one worker): wait returned %d, the "
		    "first failure returned was %d", gr->gi, r, first);
	if ((w = atomic_load(&gr->winner)) != 0) {
		st->seen++;
		CHK(r == w, "group %d: the context's cause was seen to be %d, "
		    "wait returned %d", gr->gi, w, r);
	}
	st->errs += r != 0;

	e = sl_ctx_err(gr->gctx);
	c = sl_ctx_cause(gr->gctx, NULL);
	pe = sl_ctx_err(gr->parent);
	pc = sl_ctx_cause(gr->parent, NULL);
	st->parent_done += pe != 0;
	CHK(e == SL_ECANCELED || (e == SL_EDEADLINE && gr->pk == PK_TIMEOUT),
	    "group %d (parent %s): after wait its context's error is %s",
	    gr->gi, pk_name[gr->pk], sl_errname(e));
	CHK(c == (r != 0 ? r : SL_ECANCELED) || (pe != 0 && c == pc),
	    "group %d (parent %s, %s): wait returned %d, the context's cause "
	    "is %d", gr->gi, pk_name[gr->pk], sl_errname(pe), r, c);
	CHK(sl_chan_tryrecv(sl_ctx_done(gr->gctx), NULL) == SL_ECLOSED,
	    "group %d: after wait its done channel is not closed", gr->gi);
	CHK(atomic_load(&gr->occ) == 0, "group %d: %d functions still "
	    "counted running after wait", gr->gi, atomic_load(&gr->occ));
	st->full += gr->limit > 0 && atomic_load(&gr->occ_max) == gr->limit;
}

/* The creator of one group: makes the parent and the group, starts the
 * functions, waits, checks, frees. */
static void
gr_creator(void *arg)
{
	struct grp *gr = arg;
	int rv, r, nf;

	switch (gr->pk) {
	case PK_BG:
		gr->parent = sl_ctx_background();
		break;
	case PK_CANCEL:
	case PK_CAUSE:
	case PK_DONE:
		SL_ASSERT_OK(sl_ctx_with_cancel(sl_ctx_background(),
		    &gr->parent));
		if (gr->pk == PK_DONE)
			sl_ctx_cancel_cause(gr->parent, PARENT_CODE + gr->gi,
			    NULL);
		break;
	case PK_TIMEOUT:
		SL_ASSERT_OK(sl_ctx_with_timeout(sl_ctx_background(),
		    (int64_t) rnd(&gr->rng, 4000) * US, &gr->parent));
		break;
	default:
		gr->parent = NULL;
		break;
	}
	/* Background: given as NULL or as itself, the same. */
	SL_ASSERT_OK(sl_group_make(gr->pk == PK_BG && rnd(&gr->rng, 2) ?
	    NULL : gr->parent, &gr->g));
	gr->gctx = sl_group_ctx(gr->g);
	CHK(gr->gctx != NULL && gr->gctx != gr->parent, "group %d: its "
	    "context is %p", gr->gi, (void *) gr->gctx);
	if (gr->pk == PK_DONE)
		CHK(sl_ctx_err(gr->gctx) == SL_ECANCELED &&
		    sl_ctx_cause(gr->gctx, NULL) == PARENT_CODE + gr->gi,
		    "group %d under a done parent: not born done with the "
		    "parent's cause (%s, %d)", gr->gi,
		    sl_errname(sl_ctx_err(gr->gctx)),
		    sl_ctx_cause(gr->gctx, NULL));
	else if (gr->pk != PK_TIMEOUT)
		CHK(sl_ctx_err(gr->gctx) == 0, "group %d: born done (%s)",
		    gr->gi, sl_errname(sl_ctx_err(gr->gctx)));
	if (rnd(&gr->rng, 4) == 0)
		gr_bad_input(gr);
	/* The limit before the first go; <= 0 (also set) is none. */
	if (gr->limit != 0 || rnd(&gr->rng, 4) == 0)
		sl_group_limit(gr->g, gr->limit);
	if (gr->limit < 0)
		gr->limit = 0;
	gr->st.groups++;
	gr->st.limited += gr->limit > 0;
	if (gr->pk == PK_CANCEL || gr->pk == PK_CAUSE) {
		sl_waitgroup_add(&gr->aux, 1);
		SL_ASSERT_OK(sl_go(gr_canceler, gr));
	}
	if (rnd(&gr->rng, gr->limit > 0 ? 2 : 4) == 0)
		gr_pin(gr, &gr->st);
	else
		SL_CHECK_OK(sl_chan_close(gr->gate));

	/* The top-level starts, by the creator and 0 to 2 feeders. */
	nf = (int) rnd(&gr->rng, 3);
	for (int i = 0; i < nf; i++) {
		struct feeder *f = malloc(sizeof(*f));

		if (f == NULL)
			SLT_FATAL("out of memory");
		f->gr = gr;
		f->rng = slt_rnd(&gr->rng);
		f->n = gr->rd->top / (nf + 1);
		sl_waitgroup_add(&gr->hwg, 1);
		SL_ASSERT_OK(sl_go(gr_feeder, f));
	}
	gr_feed(gr, &gr->rng, gr->rd->top - nf * (gr->rd->top / (nf + 1)),
	    "the creator's");
	gr_join_helpers(gr, "feeder");
	gr->st.fed += nf > 0;
	r = sl_group_wait(gr->g);
	gr->result = r;
	gr_check_wait(gr, r, &gr->st);

	/* After wait: refused, and nothing runs. */
	rv = sl_group_go(gr->g, late_fn, gr);
	CHK(rv == SL_ESTATE, "group %d: sl_group_go after wait returned %s",
	    gr->gi, sl_errname(rv));
	rv = sl_group_trygo(gr->g, late_fn, gr);
	CHK(rv == SL_ESTATE, "group %d: sl_group_trygo after wait returned "
	    "%s", gr->gi, sl_errname(rv));

	if (sl_waitgroup_wait_ctx(&gr->aux, NULL, sl_now() + HUNG) != 0) {
		sl_dump_goroutines(stderr);
		SLT_FATAL("group %d: its canceler hung", gr->gi);
	}
	gr->st.bcalls += atomic_load(&gr->bcalls);
	sl_group_free(gr->g);
	gr->g = NULL;
	if (gr->pk != PK_NULL && gr->pk != PK_BG)
		sl_ctx_release(gr->parent);
	sl_waitgroup_done(&gr->rd->wg);
}

/* ---- the blocking crowd -------------------------------------------------- */

/* Caller i's calls: rd->calls[i * per .. (i + 1) * per). */
static void
caller_run(struct round *rd, int i)
{
	for (int k = 0; k < rd->per; k++) {
		call_make_run(&rd->calls[i * rd->per + k], &rd->crng[i]);
		switch (rnd(&rd->crng[i], 4)) {
		case 0:
			if (i < B_CALLERS)
				sl_yield();
			else
				sched_yield();
			break;
		case 1:
			sl_sleep((int64_t) rnd(&rd->crng[i], 300) * US);
			break;
		default:
			break;
		}
	}
}

struct caller_arg {
	struct round *rd;
	int           i;
};

static void
caller_goroutine(void *arg)
{
	struct caller_arg *a = arg;
	struct round *rd = a->rd;

	caller_run(rd, a->i);
	free(a);
	sl_waitgroup_done(&rd->wg);
}

static void *
caller_thread(void *arg)
{
	caller_goroutine(arg);
	sl_sched_release();
	return (NULL);
}

/* Writes the pipe's bytes, one at a time, slowly: readers wait. */
static void
pipe_writer(void *arg)
{
	struct round *rd = arg;
	char b = 'x';
	ssize_t n;

	for (int i = 0; i < rd->npipe; i++) {
		if (rnd(&rd->wrng, 3) == 0)
			sl_yield();
		else
			sl_sleep((int64_t) rnd(&rd->wrng, 250) * US);
		while ((n = write(rd->pfd[1], &b, 1)) < 0 && errno == EINTR)
			;
		CHK(n == 1, "pipe write returned %zd", n);
	}
	sl_waitgroup_done(&rd->aux);
}

static void
nop_fn(void *arg)
{
	(void) arg;
}

/* Draws the crowd's calls (which must be known up front: the writer
 * writes one byte per pipe read). */
static void
calls_draw(struct round *rd, uint64_t *rng)
{
	for (int i = 0; i < rd->ncalls; i++) {
		struct call *c = &rd->calls[i];
		uint32_t r;

		memset(c, 0, sizeof(*c));
		r = rnd(rng, 100);
		c->ck = r < 22 ? CK_NULL : r < 30 ? CK_BG : r < 40 ? CK_DONE :
		    r < 72 ? CK_LATER : CK_TIMEOUT;
		r = rnd(rng, 100);
		c->dk = r < 40 ? DK_FOREVER : r < 50 ? DK_PAST : r < 85 ?
		    DK_NEAR : DK_FAR;
		r = rnd(rng, 100);
		c->fk = r < 15 ? FK_NOP : r < 50 ? FK_SLEEP : r < 70 ?
		    FK_USLEEP : FK_PIPE;
		c->work = (int64_t) rnd(rng, 1500) * US;
		if (rnd(rng, 8) == 0)
			c->work += (int64_t) rnd(rng, 3000) * US;
		c->cancel_after = (int64_t) rnd(rng, 3000) * US;
		c->cause = rnd(rng, 2) == 0;
		c->pipe_rd = rd->pfd[0];
		c->inflight = &rd->inflight;
		c->aux = &rd->aux;
		rd->npipe += c->fk == FK_PIPE;
	}
}

/* Counters of the crowd, for the summary line. */
struct bstats {
	long calls;      /* calls made */
	long ran;        /* ... that returned 0 (fn ran) */
	long timedout;   /* SL_ETIMEDOUT */
	long canceled;   /* SL_ECANCELED */
	long deadline;   /* SL_EDEADLINE */
	long withdrawn;  /* failed though live when made: withdrawn */
	long ran_over;   /* returned 0 with ctx or deadline over by then */
	long piped;      /* pipe reads that ran */
	long thread;     /* calls from plain threads */
};

/* After the round: every call returned; a failed one's fn never ran
 * (also not since); the pipe's leftovers are exact. */
static void
calls_check(struct round *rd, struct bstats *bs)
{
	int piped = 0, left = 0;
	ssize_t n;
	char buf[256];

	for (int i = 0; i < rd->ncalls; i++) {
		struct call *c = &rd->calls[i];
		int st = atomic_load(&c->started);

		CHK(atomic_load(&c->returned), "blocking call %d never "
		    "returned", i);
		if (c->rv != 0)
			CHK(st == 0, "blocking call %d (%s, %s, %s) returned "
			    "%s, and its fn ran later (%d times)", i,
			    ck_name[c->ck], dk_name[c->dk], fk_name[c->fk],
			    sl_errname(c->rv), st);
		else
			CHK(st == 1, "blocking call %d returned 0, its fn "
			    "ran %d times", i, st);
		piped += c->fk == FK_PIPE && st > 0;
		bs->calls++;
		bs->ran += c->rv == 0;
		bs->timedout += c->rv == SL_ETIMEDOUT;
		bs->canceled += c->rv == SL_ECANCELED;
		bs->deadline += c->rv == SL_EDEADLINE;
		bs->withdrawn += c->rv != 0 && c->pre_err == 0 &&
		    !c->pre_late;
		bs->ran_over += c->rv == 0 && c->deadline != SL_FOREVER &&
		    c->t_ret >= c->deadline;
		bs->thread += c->thread;
	}
	bs->piped += piped;
	/* The write end is closed: read to the end. */
	for (;;) {
		n = read(rd->pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		left += (int) n;
	}
	CHK(left == rd->npipe - piped, "pipe: %d bytes written, %d read by "
	    "the fns that ran, %d left over", rd->npipe, piped, left);
}

/* ---- the rounds ---------------------------------------------------------- */

/*
 * One round, run by the main goroutine: starts the groups' creators, the
 * blocking callers (goroutines and threads) and the pipe's writer; waits
 * for all; passes a last call through the pool's queue and lets the
 * pool's fns end; then checks the calls, the groups' refused starts, and
 * that no goroutine is left.
 */
static void
run_round(struct round *rd, struct gstats *gs, struct bstats *bs)
{
	size_t g0 = sl_numgoroutine();
	uint64_t rng = rd->rseed ^ UINT64_C(0xb10c);
	int64_t t;
	int rv;

	if (pipe(rd->pfd) != 0)
		SLT_FATAL("pipe: %s", strerror(errno));
	calls_draw(rd, &rng);
	for (int i = 0; i < B_CALLERS + B_THREADS; i++)
		rd->crng[i] = rd->rseed * UINT64_C(0x100000001b3) +
		    (uint64_t) i + 1;
	rd->wrng = rd->rseed ^ UINT64_C(0x717e);

	sl_waitgroup_add(&rd->wg, N_GROUPS + B_CALLERS + B_THREADS);
	for (int j = 0; j < N_GROUPS; j++) {
		struct grp *gr = &rd->gr[j];
		uint32_t r;

		gr->rd = rd;
		gr->gi = j;
		gr->rng = rd->rseed * UINT64_C(0x9e3779b1) + (uint64_t) j + 7;
		gr->crng = gr->rng ^ UINT64_C(0xca9ce1);
		gr->pk = (int) rnd(&rng, PK_N);
		r = rnd(&rng, 100);
		gr->limit = r < 45 ? 0 : r < 50 ? -(int) rnd(&rng, 3) :
		    1 + (int) rnd(&rng, r < 75 ? 2 : 6);
		r = rnd(&rng, 4);
		gr->pfail = r == 0 ? 0 : r == 1 ? 4 : r == 2 ? 15 : 40;
		if ((gr->gate = sl_chan_make(0, 0)) == NULL)
			SLT_FATAL("out of memory");
		SL_ASSERT_OK(sl_go(gr_creator, gr));
	}
	sl_waitgroup_add(&rd->aux, 1);
	SL_ASSERT_OK(sl_go(pipe_writer, rd));
	for (int i = 0; i < B_CALLERS + B_THREADS; i++) {
		struct caller_arg *a = malloc(sizeof(*a));

		if (a == NULL)
			SLT_FATAL("out of memory");
		a->rd = rd;
		a->i = i;
		if (i < B_CALLERS) {
			SL_ASSERT_OK(sl_go(caller_goroutine, a));
			continue;
		}
		sl_sched_hold();
		if (pthread_create(&rd->th[i - B_CALLERS], NULL, caller_thread,
		    a) != 0)
			SLT_FATAL("pthread_create failed");
	}

	rv = sl_waitgroup_wait_ctx(&rd->wg, NULL, sl_now() + HUNG);
	if (rv == 0)
		rv = sl_waitgroup_wait_ctx(&rd->aux, NULL, sl_now() + HUNG);
	if (rv != 0) {
		sl_dump_goroutines(stderr);
		SLT_FATAL("chaos_group round hung (seed 0x%" PRIx64 " procs %d "
		    "round %d): %s", g_seed, g_procs, rd->r, sl_errname(rv));
	}
	for (int i = 0; i < B_THREADS; i++)
		SL_CHECK_EQ(pthread_join(rd->th[i], NULL), 0);
	close(rd->pfd[1]);

	/* A last call, queued behind whatever is left: when it returns,
	 * every call before it was taken; then their fns end. */
	SL_CHECK_OK(sl_blocking(nop_fn, NULL));
	CHK(settle_zero(&rd->inflight), "blocking fns still running %d s "
	    "after their calls returned", (int) (HUNG / SL_SECOND));
	sl_sleep(2 * MS);
	CHK(atomic_load(&rd->inflight) == 0, "a blocking fn began after its "
	    "call returned");
	calls_check(rd, bs);
	close(rd->pfd[0]);

	for (int j = 0; j < N_GROUPS; j++) {
		struct grp *gr = &rd->gr[j];
		int n = gr_ntasks(gr);

		for (int i = 0; i < n; i++)
			CHK(gr->t[i].start_rv == 0 ||
			    atomic_load(&gr->t[i].runs) == 0, "group %d: "
			    "function %d ran after its start returned %s", j, i,
			    sl_errname(gr->t[i].start_rv));
		CHK(atomic_load(&gr->late) == 0, "group %d: a function started "
		    "after wait ran", j);
		sl_chan_release(gr->gate);
		gs->groups += gr->st.groups;
		gs->limited += gr->st.limited;
		gs->pinned += gr->st.pinned;
		gs->fed += gr->st.fed;
		gs->started += gr->st.started;
		gs->nested += gr->st.nested;
		gs->eagain += gr->st.eagain;
		gs->failed += gr->st.failed;
		gs->errs += gr->st.errs;
		gs->seen += gr->st.seen;
		gs->parent_done += gr->st.parent_done;
		gs->full += gr->st.full;
		gs->bcalls += gr->st.bcalls;
	}

	t = sl_now();
	while (sl_numgoroutine() > g0 && sl_now() - t < HUNG)
		sl_sleep(MS);
	CHK(sl_numgoroutine() == g0, "%zu goroutines left, %zu before the "
	    "round", sl_numgoroutine(), g0);
}

/* ---- the cases ----------------------------------------------------------- */

/* One test case: the worker count, the seed, the work. */
struct cg_case {
	int           procs;    /* workers */
	uint64_t      seed;     /* the built-in seed */
	uint64_t      run_seed; /* the seed in use */
	int           rounds;   /* rounds */
	long          top;      /* top-level starts per group */
	int           per;      /* calls per blocking caller */
	struct call **calls;    /* every round's crowd, kept to the end */
};

/* The main goroutine of a case: the rounds, then a summary. */
static void
body(void *arg)
{
	struct cg_case *c = arg;
	struct gstats gs;
	struct bstats bs;
	int64_t t0 = sl_now();
	int rv;

	memset(&gs, 0, sizeof(gs));
	memset(&bs, 0, sizeof(bs));
	/* Bad input to the pool. */
	CHK((rv = sl_blocking(NULL, NULL)) == SL_EINVAL, "sl_blocking(NULL) "
	    "returned %s", sl_errname(rv));
	CHK((rv = sl_blocking_ctx(NULL, NULL, NULL, SL_FOREVER)) == SL_EINVAL,
	    "sl_blocking_ctx(NULL) returned %s", sl_errname(rv));
	for (int r = 0; r < c->rounds; r++) {
		struct round *rd = calloc(1, sizeof(*rd));
		uint64_t x = c->run_seed ^ ((uint64_t) r << 32);

		if (rd == NULL)
			SLT_FATAL("out of memory");
		atomic_store(&g_round, r);
		rd->r = r;
		rd->rseed = slt_rnd(&x);
		rd->top = c->top;
		rd->per = c->per;
		rd->ncalls = (B_CALLERS + B_THREADS) * c->per;
		rd->calls = c->calls[r];
		run_round(rd, &gs, &bs);
		free(rd);
	}
	printf("chaos_group seed 0x%" PRIx64 " procs %d: %d rounds in %.2f s: "
	    "%ld groups (%ld limited, %ld pinned, %ld full, %ld fed), %ld "
	    "functions (%ld nested), %ld trygo refused, %ld failed, %ld "
	    "waits non-zero, %ld causes seen, %ld parents done, %ld calls "
	    "inside; blocking %ld calls (%ld from threads): %ld ran (%ld "
	    "past their deadline), %ld timed out, %ld canceled, %ld "
	    "deadline, %ld withdrawn, %ld pipe reads\n", c->run_seed,
	    c->procs, c->rounds, (double) (sl_now() - t0) / SL_SECOND,
	    gs.groups, gs.limited, gs.pinned, gs.full, gs.fed, gs.started,
	    gs.nested, gs.eagain, gs.failed, gs.errs, gs.seen,
	    gs.parent_done, gs.bcalls, bs.calls, bs.thread, bs.ran,
	    bs.ran_over, bs.timedout, bs.canceled, bs.deadline,
	    bs.withdrawn, bs.piped);
	fflush(stdout);
	slt_replay_hint("chaos_group", c->run_seed, c->procs);
}

/* Outside sl_main: a group starts nothing (SL_ESTATE) and waits for
 * nothing; a blocking call runs fn on the caller unless already over. */
static void
outside_checks(void)
{
	struct call c;
	atomic_int inflight = 0;
	sl_group *g = NULL;
	sl_ctx *ctx;

	assert_int_equal(sl_group_make(NULL, &g), 0);
	assert_int_equal(sl_group_go(g, late_fn, NULL), SL_ESTATE);
	assert_int_equal(sl_group_trygo(g, late_fn, NULL), SL_ESTATE);
	assert_int_equal(sl_group_wait(g), 0);
	sl_group_free(g);

	memset(&c, 0, sizeof(c));
	c.inflight = &inflight;
	c.deadline = SL_FOREVER;
	assert_int_equal(sl_ctx_with_cancel(sl_ctx_background(), &ctx), 0);
	sl_ctx_cancel(ctx);
	assert_int_equal(sl_blocking_ctx(call_fn, &c, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);
	assert_int_equal(sl_blocking_ctx(call_fn, &c, NULL, sl_now() - 1),
	    SL_ETIMEDOUT);
	assert_int_equal(atomic_load(&c.started), 0);
	assert_int_equal(sl_blocking(call_fn, &c), 0);
	assert_int_equal(atomic_load(&c.started), 1);
	assert_true(pthread_equal(c.ran_on, pthread_self()));
}

static void
test_chaos_group(void **state)
{
	struct cg_case *c = *state;

	outside_checks();
	c->run_seed = slt_seed(c->seed);
	c->rounds = (int) slt_scaled_min(ROUNDS, ROUNDS_MIN);
	c->top = slt_scaled_min(G_TOP, G_TOP_MIN);
	c->per = (int) slt_scaled(B_CALLS);
#ifdef SLT_TSAN
	c->rounds = c->rounds / TSAN_DIVISOR > ROUNDS_MIN ?
	    c->rounds / TSAN_DIVISOR : ROUNDS_MIN;
	c->per = c->per / TSAN_DIVISOR > 0 ? c->per / TSAN_DIVISOR : 1;
#endif
	if ((c->calls = calloc((size_t) c->rounds, sizeof(*c->calls))) == NULL)
		fail_msg("out of memory");
	for (int r = 0; r < c->rounds; r++) {
		c->calls[r] = calloc((size_t) (B_CALLERS + B_THREADS) * c->per,
		    sizeof(**c->calls));
		if (c->calls[r] == NULL)
			fail_msg("out of memory");
	}
	g_seed = c->run_seed;
	g_procs = c->procs;
	slt_chaos_reset();

	slt_run_procs(c->procs, body, c);

	/* sl_main joined the pool: still no failed call's fn ran. */
	for (int r = 0; r < c->rounds; r++) {
		for (int i = 0; i < (B_CALLERS + B_THREADS) * c->per; i++) {
			struct call *k = &c->calls[r][i];

			atomic_store(&g_round, r);
			CHK(k->rv == 0 || atomic_load(&k->started) == 0,
			    "blocking call %d returned %s, and its fn ran "
			    "after sl_main returned", i, sl_errname(k->rv));
		}
		free(c->calls[r]);
	}
	free(c->calls);
	slt_replay_hint("chaos_group", c->run_seed, c->procs);
	slt_assert_no_failures();
}

static struct cg_case cases[] = {
	{ .procs = 1, .seed = 0xc6a0001 }, { .procs = 1, .seed = 0xc6a0002 },
	{ .procs = 1, .seed = 0xc6a0003 }, { .procs = 2, .seed = 0xc6a0001 },
	{ .procs = 2, .seed = 0xc6a0002 }, { .procs = 2, .seed = 0xc6a0003 },
};

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_chaos_group_1_worker_seed_1", test_chaos_group, NULL,
		    NULL, &cases[0] },
		{ "test_chaos_group_1_worker_seed_2", test_chaos_group, NULL,
		    NULL, &cases[1] },
		{ "test_chaos_group_1_worker_seed_3", test_chaos_group, NULL,
		    NULL, &cases[2] },
		{ "test_chaos_group_2_workers_seed_1", test_chaos_group, NULL,
		    NULL, &cases[3] },
		{ "test_chaos_group_2_workers_seed_2", test_chaos_group, NULL,
		    NULL, &cases[4] },
		{ "test_chaos_group_2_workers_seed_3", test_chaos_group, NULL,
		    NULL, &cases[5] },
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
