/*
 * sluice/sluice.h — umbrella header of libsluice.
 */
#ifndef SLUICE_SLUICE_H
#define SLUICE_SLUICE_H

#include "sluice/error.h"
#include "sluice/runtime.h"
#include "sluice/chan.h"
#include "sluice/sync.h"
#include "sluice/context.h"
#include "sluice/timer.h"
#include "sluice/group.h"
#include "sluice/fd.h"
#include "sluice/signal.h"

#endif /* SLUICE_SLUICE_H */
