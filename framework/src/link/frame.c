/*
 * frame.c — the frame codec of links: wire bytes <-> checked frames.
 *
 * Decoding runs protobuf-c's unpacker under a memory budget (fr_alloc), so
 * that a small frame of many empty elements cannot make it allocate far
 * more than the frame's size, then checks the result against the rules
 * and limits of frame.h (fr_check_*).  Encoding runs the same checks
 * before packing, so this end never sends what its peer must refuse.
 */
#include "link/frame.h"

#include <inttypes.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

const sli_frame_limits sli_frame_limits_default = {
	.max_frame = SLI_FRAME_MAX_DEFAULT,
	.max_payload = SLI_PAYLOAD_MAX_DEFAULT,
	.max_batch = SLI_BATCH_MAX_DEFAULT,
	.max_name = SLI_NAME_MAX_DEFAULT,
	.max_text = SLI_TEXT_MAX_DEFAULT,
};

/* Longest part of a name or text quoted in an error message. */
#define FR_QUOTE_MAX 48
/* Room for a quoted value: every byte may become "\xNN", plus "...". */
#define FR_QUOTE_SZ (FR_QUOTE_MAX * 4 + 4)

static int fr_fail(char *err, size_t errsz, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fr_fail(char *err, size_t errsz, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return (code);
}

/* ---- text ------------------------------------------------------------- */

/*
 * The offset of the first byte of s[0..len) that does not start a
 * well-formed UTF-8 sequence (no overlong forms, no surrogates, nothing
 * above U+10FFFF), or len if all of it is well formed.
 */
static size_t
fr_utf8_bad(const uint8_t *s, size_t len)
{
	size_t i, k, n;
	uint32_t cp, min;

	i = 0;
	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return (i);
		if (len - i <= n)
			return (i);
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return (i);
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return (i);
		i += n + 1;
	}
	return (len);
}

/*
 * Writes b into out (FR_QUOTE_SZ bytes) for an error message: at most
 * FR_QUOTE_MAX bytes of it, printable ASCII and well-formed UTF-8 as is,
 * anything else (and quotes, backslashes) as \xNN; "..." if cut.
 */
static const char *
fr_quote(char *out, ProtobufCBinaryData b)
{
	size_t i, n, o, good;

	n = b.len;
	if (b.data == NULL)
		n = 0;
	if (n > FR_QUOTE_MAX)
		n = FR_QUOTE_MAX;
	good = n > 0 ? fr_utf8_bad(b.data, n) : 0;
	o = 0;
	for (i = 0; i < n; i++) {
		uint8_t c = b.data[i];

		if ((c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') ||
		    (c >= 0x80 && i < good))
			out[o++] = (char) c;
		else
			o += (size_t) snprintf(out + o, FR_QUOTE_SZ - o,
			    "\\x%02x", c);
	}
	if (n < b.len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return (out);
}

/* Checks a name or text field: bounded, nonempty unless allow_empty,
 * UTF-8 without NUL. */
static int
fr_check_text(const char *what, const char *field, ProtobufCBinaryData b,
    size_t max, bool allow_empty, char *err, size_t errsz)
{
	const uint8_t *nul;
	size_t bad;

	if (b.len == 0) {
		if (allow_empty)
			return (0);
		return (fr_fail(err, errsz, SL_EPROTO, "%s: %s is empty",
		    what, field));
	}
	if (b.len > max)
		return (fr_fail(err, errsz, SL_ETOOBIG,
		    "%s: %s of %zu bytes exceeds the limit of %zu", what,
		    field, b.len, max));
	if (b.data == NULL)
		return (fr_fail(err, errsz, SL_EPROTO, "%s: %s has no data",
		    what, field));
	nul = memchr(b.data, 0, b.len);
	if (nul != NULL)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "%s: %s has a NUL byte at offset %zu", what, field,
		    (size_t) (nul - b.data)));
	bad = fr_utf8_bad(b.data, b.len);
	if (bad < b.len)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "%s: %s is not valid UTF-8 (byte 0x%02x at offset %zu)",
		    what, field, b.data[bad], bad));
	return (0);
}

static bool
fr_ident_start(uint8_t c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_');
}

static bool
fr_ident_char(uint8_t c)
{
	return (fr_ident_start(c) || (c >= '0' && c <= '9'));
}

/* True if b is a protobuf full name: identifiers joined by single dots. */
static bool
fr_is_full_name(ProtobufCBinaryData b)
{
	size_t i;
	bool start;

	start = true;
	for (i = 0; i < b.len; i++) {
		if (start) {
			if (!fr_ident_start(b.data[i]))
				return (false);
			start = false;
		} else if (b.data[i] == '.')
			start = true;
		else if (!fr_ident_char(b.data[i]))
			return (false);
	}
	return (!start);
}

/* ---- checks ----------------------------------------------------------- */

int
sli_frame_check_names(const char *stage, const char *port, const char *type,
    char *err, size_t errsz)
{
	static const char *const field[3] = { "stage name", "port name",
	    "payload type" };
	const char *name[3] = { stage, port, type };
	ProtobufCBinaryData b[3];
	char q[FR_QUOTE_SZ];

	for (int i = 0; i < 3; i++) {
		b[i].data = (uint8_t *) (uintptr_t) name[i];
		b[i].len = strlen(name[i]);
		if (fr_check_text("link", field[i], b[i], SLI_NAME_MAX_DEFAULT,
		    false, err, errsz) != 0)
			return (SL_EINVAL);
	}
	if (!fr_is_full_name(b[2]))
		return (fr_fail(err, errsz, SL_EINVAL,
		    "link: payload type '%s' is not a protobuf full name",
		    fr_quote(q, b[2])));
	return (0);
}

static int
fr_check_hello(const sli_hello *h, const sli_frame_limits *lim, char *err,
    size_t errsz)
{
	char q1[FR_QUOTE_SZ], q2[FR_QUOTE_SZ];
	int rv;

	if (h->version != SLI_LINK_VERSION)
		return (fr_fail(err, errsz, SL_EVERSION,
		    "hello: protocol version %" PRIu32 " from peer (stage '%s' "
		    "port '%s'), this end speaks %" PRIu32, h->version,
		    fr_quote(q1, h->stage), fr_quote(q2, h->port),
		    SLI_LINK_VERSION));
	if (h->role != SLUICE__LINK__ROLE__ROLE_SENDER &&
	    h->role != SLUICE__LINK__ROLE__ROLE_RECEIVER)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "hello: role %d is neither sender nor receiver",
		    (int) h->role));
	if ((rv = fr_check_text("hello", "stage name", h->stage,
	    lim->max_name, false, err, errsz)) != 0)
		return (rv);
	if ((rv = fr_check_text("hello", "port name", h->port, lim->max_name,
	    false, err, errsz)) != 0)
		return (rv);
	if ((rv = fr_check_text("hello", "payload type", h->payload_type,
	    lim->max_name, false, err, errsz)) != 0)
		return (rv);
	if (!fr_is_full_name(h->payload_type))
		return (fr_fail(err, errsz, SL_EPROTO,
		    "hello: payload type '%s' is not a protobuf full name",
		    fr_quote(q1, h->payload_type)));
	if (h->incarnation == 0)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "hello: incarnation is 0"));
	if (h->max_frame < SLI_FRAME_MIN)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "hello: max_frame %" PRIu32 " is below the minimum of %u",
		    h->max_frame, SLI_FRAME_MIN));
	return (0);
}

static int
fr_check_batch(const sli_batch *b, const sli_frame_limits *lim, char *err,
    size_t errsz)
{
	size_t   n = b->n_payloads, i;
	uint64_t lseq = 0;

	if (n == 0)
		return (fr_fail(err, errsz, SL_EPROTO, "batch: no messages"));
	if (n > lim->max_batch)
		return (fr_fail(err, errsz, SL_ETOOBIG,
		    "batch: %zu messages exceed the limit of %zu", n,
		    lim->max_batch));
	if (b->first_seq == 0)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "batch: first_seq is 0"));
	if (b->first_seq - 1 > UINT64_MAX - n)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "batch: %zu messages from seq %" PRIu64 " go past 2^64 - 1",
		    n, b->first_seq));
	if (b->lineage_source == 0 && b->n_lineage_seq_delta != 0)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "batch: %zu lineage seq deltas without a lineage source",
		    b->n_lineage_seq_delta));
	if (b->lineage_source != 0 && b->n_lineage_seq_delta != n)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "batch: %zu lineage seq deltas for %zu messages",
		    b->n_lineage_seq_delta, n));
	for (i = 0; i < n; i++) {
		if (b->payloads[i].len > lim->max_payload)
			return (fr_fail(err, errsz, SL_ETOOBIG,
			    "batch: message %zu payload of %zu bytes exceeds "
			    "the limit of %zu", i, b->payloads[i].len,
			    lim->max_payload));
		if (b->payloads[i].len > 0 && b->payloads[i].data == NULL)
			return (fr_fail(err, errsz, SL_EPROTO,
			    "batch: message %zu payload has no data", i));
		if (b->lineage_source == 0)
			continue;
		lseq += (uint64_t) b->lineage_seq_delta[i];
		if (lseq == 0)
			return (fr_fail(err, errsz, SL_EPROTO,
			    "batch: message %zu lineage seq is 0", i));
	}
	return (0);
}

static int
fr_check_credit(const char *what, const sli_credit *c, char *err,
    size_t errsz)
{
	if (c->messages == 0 && c->bytes == 0)
		return (fr_fail(err, errsz, SL_EPROTO, "%s grants nothing",
		    what));
	return (0);
}

int
sli_frame_check(const sli_frame *f, const sli_frame_limits *lim, char *err,
    size_t errsz)
{
	int rv;

	if (lim == NULL)
		lim = &sli_frame_limits_default;
	if (f == NULL)
		return (fr_fail(err, errsz, SL_EPROTO, "frame: no frame"));

	switch (f->kind_case) {
	case SLUICE__LINK__FRAME__KIND_HELLO:
		if (f->hello == NULL)
			break;
		return (fr_check_hello(f->hello, lim, err, errsz));

	case SLUICE__LINK__FRAME__KIND_BATCH:
		if (f->batch == NULL)
			break;
		return (fr_check_batch(f->batch, lim, err, errsz));

	case SLUICE__LINK__FRAME__KIND_CREDIT:
		if (f->credit == NULL)
			break;
		return (fr_check_credit("credit:", f->credit, err, errsz));

	case SLUICE__LINK__FRAME__KIND_ACK:
		if (f->ack == NULL)
			break;
		if (f->ack->seq == 0)
			return (fr_fail(err, errsz, SL_EPROTO,
			    "ack: seq is 0"));
		if (f->ack->credit != NULL)
			return (fr_check_credit("ack: credit", f->ack->credit,
			    err, errsz));
		return (0);

	case SLUICE__LINK__FRAME__KIND_CLOSE:
		if (f->close == NULL)
			break;
		return (0);

	case SLUICE__LINK__FRAME__KIND_CANCEL:
		if (f->cancel == NULL)
			break;
		if (f->cancel->code == 0)
			return (fr_fail(err, errsz, SL_EPROTO,
			    "cancel: code is 0"));
		if (f->cancel->direction !=
		    SLUICE__LINK__DIRECTION__DIRECTION_DOWNSTREAM &&
		    f->cancel->direction !=
		    SLUICE__LINK__DIRECTION__DIRECTION_UPSTREAM)
			return (fr_fail(err, errsz, SL_EPROTO,
			    "cancel: direction %d is neither downstream nor "
			    "upstream", (int) f->cancel->direction));
		rv = fr_check_text("cancel", "text", f->cancel->text,
		    lim->max_text, true, err, errsz);
		return (rv);

	case SLUICE__LINK__FRAME__KIND_HEARTBEAT:
		if (f->heartbeat == NULL)
			break;
		return (0);

	case SLUICE__LINK__FRAME__KIND_REFUSE:
		if (f->refuse == NULL)
			break;
		if (f->refuse->code == 0)
			return (fr_fail(err, errsz, SL_EPROTO,
			    "refuse: code is 0"));
		return (fr_check_text("refuse", "text", f->refuse->text,
		    lim->max_text, true, err, errsz));

	case SLUICE__LINK__FRAME__KIND__NOT_SET:
	default:
		/* An unknown kind (from a newer peer) decodes as not set. */
		return (fr_fail(err, errsz, SL_EPROTO, "frame: no kind set"));
	}
	return (fr_fail(err, errsz, SL_EPROTO, "frame: %s has no body",
	    sli_frame_kind_name(f)));
}

/* ---- decoding --------------------------------------------------------- */

/* True if m kept an unknown field numbered 0 (which protobuf-c accepts
 * when the tag is an overlong varint, but will not parse once re-packed
 * canonically). */
static bool
fr_tag0(const ProtobufCMessage *m)
{
	size_t i;

	if (m == NULL)
		return (false);
	for (i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return (true);
	return (false);
}

/* fr_tag0 of f and of every message inside it. */
static bool
fr_tag0_frame(const sli_frame *f)
{
	if (fr_tag0(&f->base))
		return (true);
	switch (f->kind_case) {
	case SLUICE__LINK__FRAME__KIND_HELLO:
		return (f->hello != NULL && fr_tag0(&f->hello->base));
	case SLUICE__LINK__FRAME__KIND_BATCH:
		if (f->batch == NULL)
			return (false);
		return (fr_tag0(&f->batch->base));
	case SLUICE__LINK__FRAME__KIND_CREDIT:
		return (f->credit != NULL && fr_tag0(&f->credit->base));
	case SLUICE__LINK__FRAME__KIND_ACK:
		if (f->ack == NULL)
			return (false);
		return (fr_tag0(&f->ack->base) || (f->ack->credit != NULL &&
		    fr_tag0(&f->ack->credit->base)));
	case SLUICE__LINK__FRAME__KIND_CLOSE:
		return (f->close != NULL && fr_tag0(&f->close->base));
	case SLUICE__LINK__FRAME__KIND_CANCEL:
		return (f->cancel != NULL && fr_tag0(&f->cancel->base));
	case SLUICE__LINK__FRAME__KIND_HEARTBEAT:
		return (f->heartbeat != NULL && fr_tag0(&f->heartbeat->base));
	case SLUICE__LINK__FRAME__KIND_REFUSE:
		return (f->refuse != NULL && fr_tag0(&f->refuse->base));
	case SLUICE__LINK__FRAME__KIND__NOT_SET:
	default:
		return (false);
	}
}

/*
 * protobuf-c's allocator, with a budget.  Each block carries its size in
 * a header so that frees give it back.  With data NULL (when freeing a
 * decoded frame later) there is no budget to keep.
 */
struct fr_budget {
	size_t left; /* bytes that may still be allocated */
	bool   hit;  /* an allocation was refused for the budget */
	bool   oom;  /* malloc failed */
};

#define FR_HDR alignof(max_align_t)

static void *
fr_alloc(void *data, size_t size)
{
	struct fr_budget *b = data;
	unsigned char *p;
	size_t need;

	if (size > SIZE_MAX - FR_HDR)
		return (NULL);
	need = size + FR_HDR;
	if (b != NULL) {
		if (need > b->left) {
			b->hit = true;
			return (NULL);
		}
		b->left -= need;
	}
	if ((p = malloc(need)) == NULL) {
		if (b != NULL) {
			b->left += need;
			b->oom = true;
		}
		return (NULL);
	}
	memcpy(p, &need, sizeof(need));
	return (p + FR_HDR);
}

static void
fr_free(void *data, void *ptr)
{
	struct fr_budget *b = data;
	unsigned char *p;
	size_t need;

	if (ptr == NULL)
		return;
	p = (unsigned char *) ptr - FR_HDR;
	if (b != NULL) {
		memcpy(&need, p, sizeof(need));
		b->left += need;
	}
	free(p);
}

/* The decoding memory budget for a frame of len bytes (see frame.h). */
static size_t
fr_budget_for(size_t len, const sli_frame_limits *lim)
{
	size_t per = 384, slack = 64 * 1024, sum;

	sum = slack;
	if (len > (SIZE_MAX - sum) / 2)
		return (SIZE_MAX);
	sum += 2 * len;
	if (lim->max_batch > (SIZE_MAX - sum) / per)
		return (SIZE_MAX);
	return (sum + per * lim->max_batch);
}

int
sli_frame_decode(const void *buf, size_t len, const sli_frame_limits *lim,
    sli_frame **fp, char *err, size_t errsz)
{
	static const uint8_t empty[1];
	struct fr_budget budget;
	ProtobufCAllocator a;
	sli_frame *f;
	int rv;

	*fp = NULL;
	if (lim == NULL)
		lim = &sli_frame_limits_default;
	if (len > lim->max_frame)
		return (fr_fail(err, errsz, SL_ETOOBIG,
		    "frame of %zu bytes exceeds the limit of %zu", len,
		    lim->max_frame));
	if (buf == NULL)
		buf = empty, len = 0;

	budget.left = fr_budget_for(len, lim);
	budget.hit = false;
	budget.oom = false;
	a.alloc = fr_alloc;
	a.free = fr_free;
	a.allocator_data = &budget;
	f = sluice__link__frame__unpack(&a, len, buf);
	if (f == NULL) {
		if (budget.oom)
			return (fr_fail(err, errsz, SL_ENOMEM,
			    "frame of %zu bytes: out of memory while decoding",
			    len));
		if (budget.hit)
			return (fr_fail(err, errsz, SL_ETOOBIG,
			    "frame of %zu bytes needs more than %zu bytes of "
			    "memory to decode", len, fr_budget_for(len, lim)));
		return (fr_fail(err, errsz, SL_EPROTO,
		    "frame of %zu bytes is not a valid protobuf Frame", len));
	}
	if (fr_tag0_frame(f)) {
		sli_frame_free(f);
		return (fr_fail(err, errsz, SL_EPROTO,
		    "frame of %zu bytes has a field numbered 0", len));
	}
	if ((rv = sli_frame_check(f, lim, err, errsz)) != 0) {
		sli_frame_free(f);
		return (rv);
	}
	*fp = f;
	return (0);
}

void
sli_frame_free(sli_frame *f)
{
	ProtobufCAllocator a;

	if (f == NULL)
		return;
	a.alloc = fr_alloc;
	a.free = fr_free;
	a.allocator_data = NULL;
	sluice__link__frame__free_unpacked(f, &a);
}

/* ---- encoding --------------------------------------------------------- */

size_t
sli_frame_size(const sli_frame *f)
{
	return (sluice__link__frame__get_packed_size(f));
}

int
sli_frame_encode(const sli_frame *f, const sli_frame_limits *lim, void *buf,
    size_t cap, size_t *lenp, char *err, size_t errsz)
{
	size_t n;
	int rv;

	if (lenp != NULL)
		*lenp = 0;
	if (lim == NULL)
		lim = &sli_frame_limits_default;
	if ((rv = sli_frame_check(f, lim, err, errsz)) != 0)
		return (rv);
	n = sluice__link__frame__get_packed_size(f);
	if (n > lim->max_frame)
		return (fr_fail(err, errsz, SL_ETOOBIG,
		    "frame of %zu bytes exceeds the limit of %zu", n,
		    lim->max_frame));
	if (lenp != NULL)
		*lenp = n;
	if (n > cap)
		return (fr_fail(err, errsz, SL_EINVAL,
		    "frame of %zu bytes does not fit a buffer of %zu bytes",
		    n, cap));
	if (sluice__link__frame__pack(f, buf) != n)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "frame: packed size differs from computed size"));
	return (0);
}

/* ---- hello ------------------------------------------------------------ */

int
sli_hello_match(const sli_hello *ours, const sli_hello *peer, char *err,
    size_t errsz)
{
	char os[FR_QUOTE_SZ], op[FR_QUOTE_SZ], ps[FR_QUOTE_SZ],
	    pp[FR_QUOTE_SZ], ot[FR_QUOTE_SZ], pt[FR_QUOTE_SZ];
	bool sender;

	fr_quote(os, ours->stage);
	fr_quote(op, ours->port);
	fr_quote(ps, peer->stage);
	fr_quote(pp, peer->port);
	if (ours->version != peer->version)
		return (fr_fail(err, errsz, SL_EVERSION,
		    "protocol version mismatch: this end (stage '%s' port "
		    "'%s') speaks %" PRIu32 ", peer (stage '%s' port '%s') "
		    "speaks %" PRIu32, os, op, ours->version, ps, pp,
		    peer->version));
	sender = ours->role == SLUICE__LINK__ROLE__ROLE_SENDER;
	if (ours->role == peer->role)
		return (fr_fail(err, errsz, SL_EPROTO,
		    "role mismatch: this end (stage '%s' port '%s') and peer "
		    "(stage '%s' port '%s') are both %s", os, op, ps, pp,
		    sender ? "senders" : "receivers"));
	if (ours->payload_type.len != peer->payload_type.len ||
	    (ours->payload_type.len > 0 &&
	    memcmp(ours->payload_type.data, peer->payload_type.data,
	    ours->payload_type.len) != 0))
		return (fr_fail(err, errsz, SL_ETYPE,
		    "payload type mismatch: this end (stage '%s' port '%s') "
		    "%s '%s', peer (stage '%s' port '%s') %s '%s'", os, op,
		    sender ? "sends" : "expects",
		    fr_quote(ot, ours->payload_type), ps, pp,
		    sender ? "expects" : "sends",
		    fr_quote(pt, peer->payload_type)));
	return (0);
}

/* ---- small helpers ---------------------------------------------------- */

const char *
sli_frame_kind_name(const sli_frame *f)
{
	if (f == NULL)
		return ("none");
	switch (f->kind_case) {
	case SLUICE__LINK__FRAME__KIND_HELLO:
		return ("hello");
	case SLUICE__LINK__FRAME__KIND_BATCH:
		return ("batch");
	case SLUICE__LINK__FRAME__KIND_CREDIT:
		return ("credit");
	case SLUICE__LINK__FRAME__KIND_ACK:
		return ("ack");
	case SLUICE__LINK__FRAME__KIND_CLOSE:
		return ("close");
	case SLUICE__LINK__FRAME__KIND_CANCEL:
		return ("cancel");
	case SLUICE__LINK__FRAME__KIND_HEARTBEAT:
		return ("heartbeat");
	case SLUICE__LINK__FRAME__KIND_REFUSE:
		return ("refuse");
	case SLUICE__LINK__FRAME__KIND__NOT_SET:
	default:
		return ("none");
	}
}

ProtobufCBinaryData
sli_bytes(const char *s)
{
	ProtobufCBinaryData b;

	b.len = s != NULL ? strlen(s) : 0;
	b.data = (uint8_t *) (uintptr_t) s;
	return (b);
}

bool
sli_bytes_eq(ProtobufCBinaryData b, const char *s)
{
	size_t n;

	n = strlen(s);
	return (b.len == n && (n == 0 || memcmp(b.data, s, n) == 0));
}
