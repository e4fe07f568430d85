/*
 * waitq.c — the FIFO of blocked parties behind every sync primitive.
 *
 * A struct sli_waitq (sluice/sync.h) is a doubly linked list of
 * sli_waiter entries (sched/wait.h) that live on the blocked parties'
 * stacks.  Every function here runs under the owning object's spinlock;
 * none of them blocks or allocates.
 */
#include <stddef.h>

#include "sluice/sync.h"
#include "sched/wait.h"

/*
 * Appends e at the tail of q and marks it queued.  e must not be queued
 * anywhere.
 */
void
sli_waitq_push(struct sli_waitq *q, sli_waiter *e)
{
	sli_waiter *tail = q->tail;

	e->next = NULL;
	e->prev = tail;
	if (tail != NULL)
		tail->next = e;
	else
		q->head = e;
	q->tail = e;
	e->queued = true;
}

/*
 * Unlinks e, which must be queued in q, and marks it not queued.
 */
void
sli_waitq_remove(struct sli_waitq *q, sli_waiter *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	e->next = NULL;
	e->prev = NULL;
	e->queued = false;
}

/*
 * Removes and returns the head of q (no longer queued), or NULL if q is
 * empty.
 */
sli_waiter *
sli_waitq_pop(struct sli_waitq *q)
{
	sli_waiter *e = q->head;

	if (e != NULL)
		sli_waitq_remove(q, e);
	return (e);
}

/*
 * The head of q, left in place, or NULL if q is empty.
 */
sli_waiter *
sli_waitq_peek(struct sli_waitq *q)
{
	return (q->head);
}

void
sli_wakelist_add(sli_wakelist *l, sli_waiter *e)
{
	e->next = NULL;
	if (l->tail != NULL)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

void
sli_wakelist_wake(sli_wakelist *l)
{
	sli_waiter *e = l->head;

	while (e != NULL) {
		sli_waiter *next = e->next; /* e dies once its owner runs */
		sli_wait_wake(e->wait);
		e = next;
	}
	l->head = l->tail = NULL;
}
