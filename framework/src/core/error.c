/*
 * error.c — text for the error codes of sluice/error.h.
 */
#include "sluice/error.h"

static const char *const sl_err_text[] = {
	[SL_OK] = "no error",
#define SL__ERR_TEXT(name, text) [SL_##name] = text,
	SL_ERRORS(SL__ERR_TEXT)
#undef SL__ERR_TEXT
};

static const char *const sl_err_names[] = {
	[SL_OK] = "SL_OK",
#define SL__ERR_NAME(name, text) [SL_##name] = "SL_" #name,
	SL_ERRORS(SL__ERR_NAME)
#undef SL__ERR_NAME
};

const char *
sl_strerror(int err)
{
	if (err < 0 || err >= SL_ERR_COUNT)
		return ("unknown error");
	return (sl_err_text[err]);
}

const char *
sl_errname(int err)
{
	if (err < 0 || err >= SL_ERR_COUNT)
		return ("SL_E?");
	return (sl_err_names[err]);
}
