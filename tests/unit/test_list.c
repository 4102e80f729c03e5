/* The intrusive list (src/base/list.h): order, removal from any place, membership, and
 * random operations against an array kept in the same order. */
#include <stdint.h>

#include "cu.h"
#include "list.h"

typedef struct item {
	int v;
	jr_link link;
} item;

static int item_at(const jr_link *head, int i)
{
	const jr_link *l = head->next;
	for (; i > 0 && l != head; i--)
		l = l->next;
	return l == head ? -1 : list_item(l, item, link)->v;
}

static void test_order_and_ends(void)
{
	jr_link head;
	item it[3] = {{.v = 0}, {.v = 1}, {.v = 2}};
	list_init(&head);
	CU_ASSERT_TRUE(list_empty(&head));
	CU_ASSERT_PTR_NULL(list_first(&head));
	CU_ASSERT_PTR_NULL(list_last(&head));
	for (int i = 0; i < 3; i++) {
		list_init(&it[i].link);
		CU_ASSERT_FALSE(list_linked(&it[i].link));
		list_append(&head, &it[i].link);
		CU_ASSERT_TRUE(list_linked(&it[i].link));
	}
	CU_ASSERT_FALSE(list_empty(&head));
	CU_ASSERT_PTR_EQUAL(list_item(list_first(&head), item, link), &it[0]);
	CU_ASSERT_PTR_EQUAL(list_item(list_last(&head), item, link), &it[2]);
	list_remove(&it[1].link); /* the middle */
	CU_ASSERT_FALSE(list_linked(&it[1].link));
	CU_ASSERT_EQUAL(item_at(&head, 0), 0);
	CU_ASSERT_EQUAL(item_at(&head, 1), 2);
	CU_ASSERT_EQUAL(item_at(&head, 2), -1);
	list_remove(&it[1].link); /* again: harmless */
	CU_ASSERT_EQUAL(item_at(&head, 1), 2);
	list_remove(&it[0].link); /* the first */
	list_append(&head, &it[0].link); /* moved to the end, as an LRU touch does */
	CU_ASSERT_PTR_EQUAL(list_item(list_first(&head), item, link), &it[2]);
	CU_ASSERT_PTR_EQUAL(list_item(list_last(&head), item, link), &it[0]);
	list_remove(&it[0].link); /* the last */
	list_remove(&it[2].link);
	CU_ASSERT_TRUE(list_empty(&head));
	CU_ASSERT_PTR_NULL(list_first(&head));
}

/* 20,000 random appends and removals; after each, the list walked both ways equals the array. */
static void test_random_against_array(void)
{
	enum { N = 64 };
	item it[N];
	int order[N], n = 0;
	jr_link head;
	list_init(&head);
	for (int i = 0; i < N; i++) {
		it[i].v = i;
		list_init(&it[i].link);
	}
	uint64_t x = 88172645463325252ull;
	int bad = 0;
	for (int step = 0; step < 20000; step++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int i = (int)(x % N);
		if (list_linked(&it[i].link)) {
			list_remove(&it[i].link);
			int k = 0;
			while (order[k] != i)
				k++;
			for (; k + 1 < n; k++)
				order[k] = order[k + 1];
			n--;
		} else {
			list_append(&head, &it[i].link);
			order[n++] = i;
		}
		int k = 0;
		for (jr_link *l = head.next; l != &head; l = l->next, k++)
			bad += k >= n || list_item(l, item, link)->v != order[k];
		bad += k != n;
		k = n - 1;
		for (jr_link *l = head.prev; l != &head; l = l->prev, k--)
			bad += k < 0 || list_item(l, item, link)->v != order[k];
	}
	CU_ASSERT_EQUAL(bad, 0);
}

int main(void)
{
	static const cu_test tests[] = {
		{"order_and_ends", test_order_and_ends},
		{"random_against_array", test_random_against_array},
		{NULL, NULL},
	};
	return cu_run("list", tests);
}
