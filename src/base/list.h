/*
 * list.h — an intrusive, circular doubly-linked list (the shape of nng's
 * nni_list and libuv's queue). An element embeds a jr_link; a list is a
 * jr_link head that points at itself when empty, so adding and removing never
 * branch on the ends, and an element that list_remove (or list_init) left
 * points at itself too: list_linked tells whether it is in a list. Nothing is
 * allocated; the list never owns its elements.
 */
#ifndef JR_LIST_H
#define JR_LIST_H

#include <stddef.h>

typedef struct jr_link {
	struct jr_link *prev, *next;
} jr_link;

/* list_item: the element of type whose member is the link l. */
#define list_item(l, type, member) ((type *)(void *)((char *)(l) - offsetof(type, member)))

/* list_init: an empty list head, or an element that is in no list. */
static inline void list_init(jr_link *l)
{
	l->prev = l->next = l;
}

static inline int list_empty(const jr_link *head)
{
	return head->next == head;
}

/* list_linked: 1 when element e is in a list (e was list_init'ed before its first use). */
static inline int list_linked(const jr_link *e)
{
	return e->next != e;
}

/* list_append: e (in no list) becomes the last element of head. */
static inline void list_append(jr_link *head, jr_link *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}

/* list_remove: e leaves its list and points at itself; harmless when it is in none. */
static inline void list_remove(jr_link *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = e;
}

/* list_first, list_last: the first (oldest appended) or last element, or NULL. */
static inline jr_link *list_first(const jr_link *head)
{
	return head->next == head ? NULL : head->next;
}

static inline jr_link *list_last(const jr_link *head)
{
	return head->prev == head ? NULL : head->prev;
}

#endif
