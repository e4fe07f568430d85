/*
 * sluice/error.h — the one error enum of libsluice.
 *
 * Every fallible call returns an int: 0 (SL_OK) on success, or one of the
 * codes below.  sl_strerror() turns a code into a sentence, sl_errname()
 * into its symbol name.  Both lists are generated from SL_ERRORS so they
 * cannot drift apart.
 */
#ifndef SLUICE_ERROR_H
#define SLUICE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ERRORS(X)                                                        \
	X(ECLOSED, "channel or file descriptor closed")                    \
	X(ECANCELED, "context canceled")                                    \
	X(EDEADLINE, "context deadline exceeded")                           \
	X(ETIMEDOUT, "timed out")                                           \
	X(EAGAIN, "operation would block")                                  \
	X(ENOMEM, "out of memory")                                          \
	X(EINVAL, "invalid argument")                                       \
	X(ESTATE, "incorrect state (e.g. no scheduler running)")           \
	X(EDEADLOCK, "all goroutines are asleep - deadlock")               \
	X(ESYSTEM, "operating system error")                               \
	X(EPROTO, "protocol error")                                         \
	X(ETYPE, "payload type mismatch")                                   \
	X(EVERSION, "protocol version mismatch")                            \
	X(ETOOBIG, "message too large")                                     \
	X(ECONNREFUSED, "connection refused")                               \
	X(ECONNSHUT, "connection shut down")                                \
	X(ENOENT, "not found")                                             \
	X(EBADF, "bad file descriptor")

enum sl_err {
	SL_OK = 0,
#define SL__ERR_ENUM(name, text) SL_##name,
	SL_ERRORS(SL__ERR_ENUM)
#undef SL__ERR_ENUM
	SL_ERR_COUNT
};

/* A static, human-readable sentence for err; never NULL. */
const char *sl_strerror(int err);

/* The symbol name of err ("SL_ECLOSED"); "SL_E?" for unknown codes. */
const char *sl_errname(int err);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_ERROR_H */
