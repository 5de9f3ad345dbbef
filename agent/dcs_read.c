/*
 * dcs_read.c - the bounded read of baton's prefix (dcs_read_cluster, see
 * dcs.h), the one function of the dcs module that does I/O. It lists the
 * keys first, names those baton does not use, reads the ones it does in
 * one transaction, and leaves out values too large to hold, so that a
 * flooded prefix cannot exhaust the agent; dcs_parse_cluster turns the
 * result into the view. Kept beside the key layout it must know.
 */
#include "agent/dcs.h"
#include "agent/dcs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DCS_LIST_PAGE 500     /* keys per keys-only page */
#define DCS_LIST_PAGE_SMALL 2 /* ... when huge key names made a page too big */
#define DCS_NAMED_MAX 5       /* unknown keys named in one warning */

/* The keys the view is built from, besides members/<name>; and history,
 * which batonctl shows from the same read. */
static const char *const fixed_keys[] = { "leader", "initialize", "config", "status", "switchover", "sync", "history" };
#define N_FIXED (sizeof(fixed_keys) / sizeof(fixed_keys[0]))

static enum etcd_status set_etcd_err(struct etcd_error *err, enum etcd_status st, const char *msg)
{
	err->status = st;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return st;
}

/* A key as it may be shown in a log line: printable ASCII, cut at 80 bytes. */
static void show_key(const char *key, size_t len, char *buf, size_t blen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 4 < blen; i++) {
		if (i == 80) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		buf[o++] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
	}
	buf[o] = '\0';
}

/* Moves src's kvs onto the end of dst (src is left empty). */
static bool move_kvs(struct etcd_range_result *dst, struct etcd_range_result *src)
{
	struct etcd_kv *grown;

	if (src->n_kvs == 0)
		return true;
	grown = realloc(dst->kvs, (dst->n_kvs + src->n_kvs) * sizeof(*grown));
	if (!grown)
		return false;
	dst->kvs = grown;
	memcpy(dst->kvs + dst->n_kvs, src->kvs, src->n_kvs * sizeof(*grown));
	dst->n_kvs += src->n_kvs;
	free(src->kvs);
	src->kvs = NULL;
	src->n_kvs = 0;
	return true;
}

/*
 * Keys-only listing of [start, end) into out, page by page at one revision,
 * at most max keys; *complete false when cut. Pages shrink to
 * DCS_LIST_PAGE_SMALL keys when one is too big (key names of a megabyte).
 */
static enum etcd_status list_keys(struct etcd_client *c, const char *start, const char *end, size_t max,
                                  struct etcd_range_result *out, bool *complete, struct etcd_error *err)
{
	struct etcd_range_req rq = { .key = start, .range_end = end, .keys_only = true, .limit = DCS_LIST_PAGE };
	char *next = NULL;
	enum etcd_status st = ETCD_OK;

	memset(out, 0, sizeof(*out));
	*complete = false;
	/* Bounded: each page moves past its last key, or shrinks once. */
	for (int pages = 0; pages < 2 * (DCS_LIST_MAX / DCS_LIST_PAGE_SMALL) + 2; pages++) {
		struct etcd_range_result page;
		const struct etcd_kv *last;

		if (out->n_kvs >= max)
			break;
		if ((size_t)rq.limit > max - out->n_kvs)
			rq.limit = (int64_t)(max - out->n_kvs);
		st = etcd_range(c, &rq, &page, err);
		if (st != ETCD_OK && etcd_error_too_big(err) && rq.limit > DCS_LIST_PAGE_SMALL) {
			rq.limit = DCS_LIST_PAGE_SMALL;
			continue;
		}
		if (st != ETCD_OK)
			break;
		if (rq.revision == 0)
			rq.revision = page.revision; /* later pages: the same snapshot */
		out->revision = rq.revision;
		if (page.n_kvs == 0 || !page.more) {
			bool moved = move_kvs(out, &page);

			etcd_range_result_free(&page);
			if (!moved) {
				st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
				break;
			}
			*complete = true;
			break;
		}
		/* The next page starts right after the last key: its bytes and a NUL. */
		last = &page.kvs[page.n_kvs - 1];
		free(next);
		next = malloc(last->key_len + 1);
		if (!next || !move_kvs(out, &page)) {
			etcd_range_result_free(&page);
			st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
			break;
		}
		last = &out->kvs[out->n_kvs - 1];
		memcpy(next, last->key, last->key_len);
		next[last->key_len] = '\0';
		rq.key = next;
		rq.key_len = last->key_len + 1;
		etcd_range_result_free(&page);
	}
	free(next);
	if (st != ETCD_OK)
		etcd_range_result_free(out);
	return st;
}

/* Is key (a listed one) at mod_revision known to be oversized? Its size then. */
static bool cache_hit(const struct dcs_read_cache *cache, const char *key, int64_t rev, size_t *len)
{
	for (size_t i = 0; cache && i < DCS_CACHE_N; i++)
		if (cache->e[i].mod_revision == rev && rev != 0 && strcmp(cache->e[i].key, key) == 0) {
			*len = cache->e[i].len;
			return true;
		}
	return false;
}

static void cache_add(struct dcs_read_cache *cache, const char *key, int64_t rev, size_t len)
{
	size_t i;

	if (cache)
		cache->saw_oversized = true;
	if (!cache || rev == 0 || strlen(key) >= sizeof(cache->e[0].key))
		return;
	i = cache->next++ % DCS_CACHE_N;
	snprintf(cache->e[i].key, sizeof(cache->e[i].key), "%s", key);
	cache->e[i].mod_revision = rev;
	cache->e[i].len = len;
}

/* A key whose existence counts even without a readable value. */
static bool presence_matters(const struct dcs_keys *k, const char *key)
{
	return strcmp(key, k->leader) == 0 || strcmp(key, k->initialize) == 0;
}

/* One key to read: its name, and what the listing said of it (NULL: not listed). */
struct want {
	char key[400];
	const struct etcd_kv *listed;
	bool skip;      /* known oversized (cache): not fetched */
	size_t old_len; /* ... of this many bytes */
};

/* Appends kv (taking its strings) to out, or drops it when its value is too
 * big (keeping leader/initialize without a value). */
static bool keep_kv(const struct dcs_keys *k, struct dcs_read_cache *cache, struct etcd_kv *kv,
                    struct etcd_range_result *out, char *warn, size_t warnlen)
{
	if (kv->value_len > DCS_VALUE_MAX) {
		char shown[100];

		show_key(kv->key, kv->key_len, shown, sizeof(shown));
		dcs_warn_add(warn, warnlen, "%s: a value of %zu bytes, more than the %d a key may hold: ignored", shown,
		             kv->value_len, DCS_VALUE_MAX);
		cache_add(cache, kv->key, kv->mod_revision, kv->value_len);
		free(kv->value);
		kv->value = NULL;
		kv->value_len = 0;
		if (!presence_matters(k, kv->key)) {
			free(kv->key);
			memset(kv, 0, sizeof(*kv));
			return true;
		}
	}
	out->kvs[out->n_kvs++] = *kv;
	memset(kv, 0, sizeof(*kv));
	return true;
}

/* A listed key, without its value (known oversized), for the view. */
static bool keep_listed(const struct dcs_keys *k, const struct want *w, struct etcd_range_result *out, char *warn,
                        size_t warnlen)
{
	struct etcd_kv *kv;

	dcs_warn_add(warn, warnlen, "%s: a value of %zu bytes, more than the %d a key may hold: ignored", w->key,
	             w->old_len, DCS_VALUE_MAX);
	if (!presence_matters(k, w->key))
		return true;
	kv = &out->kvs[out->n_kvs];
	memset(kv, 0, sizeof(*kv));
	kv->key = strdup(w->key);
	if (!kv->key)
		return false;
	kv->key_len = strlen(w->key);
	kv->create_revision = w->listed->create_revision;
	kv->mod_revision = w->listed->mod_revision;
	kv->version = w->listed->version;
	kv->lease = w->listed->lease;
	out->n_kvs++;
	return true;
}

enum key_kind { KEY_FIXED, KEY_MEMBER, KEY_UNKNOWN };

/* What a key under the prefix is to baton; *fixed = index in fixed_keys[]. */
static enum key_kind classify(const struct dcs_keys *k, const struct etcd_kv *kv, size_t *fixed)
{
	size_t plen = strlen(k->prefix);
	const char *rel;

	if (kv->key_len != strlen(kv->key) || kv->key_len < plen || strncmp(kv->key, k->prefix, plen) != 0)
		return KEY_UNKNOWN;
	rel = kv->key + plen;
	for (size_t f = 0; f < N_FIXED; f++)
		if (strcmp(rel, fixed_keys[f]) == 0) {
			*fixed = f;
			return KEY_FIXED;
		}
	if (strncmp(rel, "members/", 8) == 0 && rel[8] && !strchr(rel + 8, '/') && strlen(rel + 8) < HA_NAME_MAX)
		return KEY_MEMBER;
	return KEY_UNKNOWN;
}

/* One warning naming the listed keys baton does not use (the first few). */
static void warn_unknown(const struct dcs_keys *k, const struct etcd_range_result *list, char *warn, size_t warnlen)
{
	char named[DCS_NAMED_MAX * 90 + 16] = "";
	size_t unknown = 0, f;

	for (size_t i = 0; i < list->n_kvs; i++) {
		const struct etcd_kv *kv = &list->kvs[i];

		if (classify(k, kv, &f) != KEY_UNKNOWN)
			continue;
		if (unknown++ < DCS_NAMED_MAX) {
			char shown[100];
			size_t used = strlen(named);

			show_key(kv->key, kv->key_len, shown, sizeof(shown));
			snprintf(named + used, sizeof(named) - used, "%s\"%s\"", used ? ", " : "", shown);
		}
	}
	if (unknown > 0)
		dcs_warn_add(warn, warnlen, "%s: %zu key%s that baton does not use, not read: %s%s", k->prefix, unknown,
		             unknown == 1 ? "" : "s", named, unknown > DCS_NAMED_MAX ? ", ..." : "");
}

/* Sorts the listing into the keys to read and the ones to name. */
static size_t choose_keys(const struct dcs_keys *k, const struct etcd_range_result *list, bool complete,
                          const struct dcs_read_cache *cache, struct want *want, size_t max, char *warn, size_t warnlen)
{
	size_t n = 0, extra_members = 0, f;

	for (size_t i = 0; i < N_FIXED; i++) {
		snprintf(want[n].key, sizeof(want[n].key), "%s%s", k->prefix, fixed_keys[i]);
		want[n].listed = NULL;
		n++;
	}
	for (size_t i = 0; i < list->n_kvs; i++) {
		const struct etcd_kv *kv = &list->kvs[i];

		switch (classify(k, kv, &f)) {
		case KEY_FIXED:
			want[f].listed = kv;
			break;
		case KEY_MEMBER:
			if (n >= max) {
				extra_members++;
				break;
			}
			snprintf(want[n].key, sizeof(want[n].key), "%s", kv->key);
			want[n].listed = kv;
			n++;
			break;
		case KEY_UNKNOWN:
			break;
		}
	}
	warn_unknown(k, list, warn, warnlen);
	if (extra_members > 0)
		dcs_warn_add(warn, warnlen, "%smembers/: %zu member keys beyond the first %zu, not read", k->prefix,
		             extra_members, max - N_FIXED);
	if (!complete)
		dcs_warn_add(warn, warnlen, "%s: more than %d keys, the listing was cut there", k->prefix,
		             DCS_LIST_MAX);
	for (size_t i = 0; i < n; i++)
		want[i].skip = want[i].listed &&
		               cache_hit(cache, want[i].key, want[i].listed->mod_revision, &want[i].old_len);
	return n;
}

/*
 * The common case in one request: a transaction holding the keys-only
 * listing (one page), the fixed keys and the members' values (at most
 * DCS_FETCH_MEMBERS). *fallback is set, and nothing is kept, when that is
 * not enough: the answer too big, the listing or the members cut. out->kvs
 * must have room for N_FIXED + DCS_FETCH_MEMBERS entries.
 */
static enum etcd_status read_fast(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
                                  struct etcd_range_result *out, char *warn, size_t warnlen, bool *fallback,
                                  struct etcd_error *err)
{
	struct etcd_op ops[N_FIXED + 2];
	char fixed[N_FIXED][400];
	struct etcd_txn_result tr;
	enum etcd_status st;
	size_t f;

	*fallback = false;
	ops[0] = (struct etcd_op){
		.kind = ETCD_OP_GET, .key = k->prefix, .prefix = true, .keys_only = true, .limit = DCS_LIST_PAGE
	};
	for (size_t i = 0; i < N_FIXED; i++) {
		snprintf(fixed[i], sizeof(fixed[i]), "%s%s", k->prefix, fixed_keys[i]);
		ops[1 + i] = (struct etcd_op){ .kind = ETCD_OP_GET, .key = fixed[i] };
	}
	ops[1 + N_FIXED] = (struct etcd_op){
		.kind = ETCD_OP_GET, .key = k->members, .prefix = true, .limit = DCS_FETCH_MEMBERS
	};
	st = etcd_txn(c, NULL, 0, ops, N_FIXED + 2, NULL, 0, &tr, err);
	if (st != ETCD_OK) {
		*fallback = etcd_error_too_big(err);
		return *fallback ? ETCD_OK : st;
	}
	if (tr.n_ranges != N_FIXED + 2 || tr.ranges[0].more || tr.ranges[1 + N_FIXED].more) {
		*fallback = true;
		etcd_txn_result_free(&tr);
		return ETCD_OK;
	}
	warn_unknown(k, &tr.ranges[0], warn, warnlen);
	for (size_t i = 1; i <= N_FIXED && st == ETCD_OK; i++)
		if (tr.ranges[i].n_kvs == 1 && !keep_kv(k, cache, &tr.ranges[i].kvs[0], out, warn, warnlen))
			st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	for (size_t i = 0; i < tr.ranges[1 + N_FIXED].n_kvs && st == ETCD_OK; i++) {
		struct etcd_kv *kv = &tr.ranges[1 + N_FIXED].kvs[i];

		if (classify(k, kv, &f) == KEY_MEMBER && !keep_kv(k, cache, kv, out, warn, warnlen))
			st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	}
	out->revision = tr.revision;
	etcd_txn_result_free(&tr);
	return st;
}

/* The values of want[] (those not skipped) into out: one transaction, or
 * key by key when its answer is too big. */
static enum etcd_status fetch_values(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
                                     const struct want *want, size_t n, struct etcd_range_result *out, char *warn,
                                     size_t warnlen, struct etcd_error *err)
{
	struct etcd_op ops[N_FIXED + DCS_FETCH_MEMBERS];
	size_t idx[N_FIXED + DCS_FETCH_MEMBERS], n_ops = 0;
	struct etcd_txn_result tr;
	enum etcd_status st;

	for (size_t i = 0; i < n; i++) {
		if (want[i].skip) {
			if (cache)
				cache->saw_oversized = true;
			if (!keep_listed(k, &want[i], out, warn, warnlen))
				return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
			continue;
		}
		ops[n_ops] = (struct etcd_op){ .kind = ETCD_OP_GET, .key = want[i].key };
		idx[n_ops++] = i;
	}
	if (n_ops == 0)
		return ETCD_OK;
	st = etcd_txn(c, NULL, 0, ops, n_ops, NULL, 0, &tr, err);
	if (st == ETCD_OK) {
		out->revision = tr.revision;
		for (size_t i = 0; i < tr.n_ranges; i++)
			if (tr.ranges[i].n_kvs == 1 && !keep_kv(k, cache, &tr.ranges[i].kvs[0], out, warn, warnlen))
				st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
		etcd_txn_result_free(&tr);
		return st;
	}
	if (!etcd_error_too_big(err))
		return st;
	/* Too much at once: key by key, each answer at most one value. */
	for (size_t i = 0; i < n_ops; i++) {
		const struct want *w = &want[idx[i]];
		struct etcd_range_result r;

		st = etcd_get(c, w->key, &r, err);
		if (st != ETCD_OK && etcd_error_too_big(err) && w->listed) {
			struct want big = *w;

			big.old_len = (size_t)DCS_VALUE_MAX + 1; /* more than that, how much is unknown */
			if (!keep_listed(k, &big, out, warn, warnlen))
				return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
			continue;
		}
		if (st != ETCD_OK)
			return st;
		if (r.revision > out->revision)
			out->revision = r.revision;
		if (r.n_kvs == 1 && !keep_kv(k, cache, &r.kvs[0], out, warn, warnlen)) {
			etcd_range_result_free(&r);
			return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
		}
		etcd_range_result_free(&r);
	}
	return ETCD_OK;
}

enum etcd_status dcs_read_cluster(struct etcd_client *c, const struct dcs_keys *k, struct dcs_read_cache *cache,
                                  struct etcd_range_result *out, char *warn, size_t warnlen, struct etcd_error *err)
{
	struct etcd_range_result list;
	struct etcd_error scratch;
	struct want *want = NULL;
	char end[sizeof(k->prefix)];
	size_t plen = strlen(k->prefix), n;
	enum etcd_status st;
	bool complete;

	if (!err)
		err = &scratch;
	memset(out, 0, sizeof(*out));
	if (warn && warnlen)
		warn[0] = '\0';
	/* The prefix ends with '/': the range end is the same with '0'. */
	if (plen == 0 || k->prefix[plen - 1] != '/')
		return set_etcd_err(err, ETCD_E_INVALID, "dcs_read_cluster: bad prefix");
	if (cache)
		cache->saw_oversized = false;
	out->kvs = calloc(N_FIXED + DCS_FETCH_MEMBERS, sizeof(*out->kvs));
	if (!out->kvs)
		return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	/* One request unless the last read met an oversized key (then the
	 * listing first, so it is not downloaded again) or this one is too big. */
	if (!cache || !cache->slow) {
		bool fallback;

		st = read_fast(c, k, cache, out, warn, warnlen, &fallback, err);
		if (st != ETCD_OK || !fallback)
			goto done;
		etcd_range_result_free(out);
		if (warn && warnlen)
			warn[0] = '\0';
		out->kvs = calloc(N_FIXED + DCS_FETCH_MEMBERS, sizeof(*out->kvs));
		if (!out->kvs)
			return set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
	}
	memcpy(end, k->prefix, plen + 1);
	end[plen - 1] = '/' + 1;
	st = list_keys(c, k->prefix, end, DCS_LIST_MAX, &list, &complete, err);
	if (st != ETCD_OK)
		goto done;
	if (!complete) {
		/* Flooded: the members may lie past the cut. List them alone. */
		struct etcd_range_result mlist;
		bool mcomplete;
		char mend[sizeof(k->members)];
		size_t mlen = strlen(k->members);

		memcpy(mend, k->members, mlen + 1);
		mend[mlen - 1] = '/' + 1;
		etcd_range_result_free(&list);
		st = list_keys(c, k->members, mend, DCS_FETCH_MEMBERS + 1, &mlist, &mcomplete, err);
		if (st != ETCD_OK)
			goto done;
		list = mlist;
	}
	want = calloc(N_FIXED + DCS_FETCH_MEMBERS, sizeof(*want));
	if (!want) {
		st = set_etcd_err(err, ETCD_E_NOMEM, "out of memory");
		goto cleanup;
	}
	n = choose_keys(k, &list, complete, cache, want, N_FIXED + DCS_FETCH_MEMBERS, warn, warnlen);
	out->revision = list.revision;
	st = fetch_values(c, k, cache, want, n, out, warn, warnlen, err);
cleanup:
	free(want);
	etcd_range_result_free(&list);
done:
	if (st != ETCD_OK)
		etcd_range_result_free(out);
	if (cache)
		cache->slow = cache->saw_oversized;
	return st;
}

/* ---- the cached view, kept by the watch (dcs_cache_apply, see dcs.h) ---- */

static size_t cache_find(const struct etcd_range_result *cache, const char *key)
{
	for (size_t i = 0; i < cache->n_kvs; i++)
		if (cache->kvs[i].key && strcmp(cache->kvs[i].key, key) == 0)
			return i;
	return cache->n_kvs;
}

static void cache_remove(struct etcd_range_result *cache, size_t i)
{
	free(cache->kvs[i].key);
	free(cache->kvs[i].value);
	cache->kvs[i] = cache->kvs[cache->n_kvs - 1];
	memset(&cache->kvs[cache->n_kvs - 1], 0, sizeof(cache->kvs[0]));
	cache->n_kvs--;
}

enum dcs_apply dcs_cache_apply(const struct dcs_keys *k, struct etcd_range_result *cache, enum etcd_event_type type,
                               const struct etcd_kv *kv)
{
	struct etcd_kv copy;
	size_t f, i, members = 0;
	enum key_kind kind;
	bool keep_value;

	if (!kv->key)
		return DCS_APPLY_IGNORED;
	kind = classify(k, kv, &f);
	if (kind == KEY_UNKNOWN)
		return DCS_APPLY_IGNORED;
	if (kv->mod_revision <= cache->revision)
		return DCS_APPLY_STALE;
	i = cache_find(cache, kv->key);
	if (i < cache->n_kvs && cache->kvs[i].mod_revision >= kv->mod_revision)
		return DCS_APPLY_STALE;
	if (type == ETCD_EVENT_DELETE) {
		if (i < cache->n_kvs)
			cache_remove(cache, i);
		return DCS_APPLY_CHANGED;
	}
	keep_value = kv->value_len <= DCS_VALUE_MAX;
	if (!keep_value && !presence_matters(k, kv->key)) {
		/* Left out, as the read leaves it out; and read again, which
		 * names it to the operator (the cache has no warnings). */
		if (i < cache->n_kvs)
			cache_remove(cache, i);
		return DCS_APPLY_FULL_READ;
	}
	if (i == cache->n_kvs && kind == KEY_MEMBER) {
		for (size_t j = 0; j < cache->n_kvs; j++)
			if (classify(k, &cache->kvs[j], &f) == KEY_MEMBER)
				members++;
		if (members >= DCS_FETCH_MEMBERS)
			return DCS_APPLY_FULL_READ;
	}
	copy = *kv;
	copy.key = malloc(kv->key_len + 1);
	copy.value = malloc((keep_value ? kv->value_len : 0) + 1);
	if (!copy.key || !copy.value) {
		free(copy.key);
		free(copy.value);
		return DCS_APPLY_FULL_READ;
	}
	memcpy(copy.key, kv->key, kv->key_len);
	copy.key[kv->key_len] = '\0';
	copy.value_len = keep_value ? kv->value_len : 0;
	if (copy.value_len)
		memcpy(copy.value, kv->value, copy.value_len);
	copy.value[copy.value_len] = '\0';
	if (i == cache->n_kvs) {
		struct etcd_kv *grown = realloc(cache->kvs, (cache->n_kvs + 1) * sizeof(*grown));

		if (!grown) {
			free(copy.key);
			free(copy.value);
			return DCS_APPLY_FULL_READ;
		}
		cache->kvs = grown;
		cache->n_kvs++;
	} else {
		free(cache->kvs[i].key);
		free(cache->kvs[i].value);
	}
	cache->kvs[i] = copy;
	return DCS_APPLY_CHANGED;
}

bool dcs_cache_same(const struct etcd_range_result *a, const struct etcd_range_result *b)
{
	if (a->n_kvs != b->n_kvs)
		return false;
	for (size_t i = 0; i < a->n_kvs; i++) {
		size_t j = cache_find(b, a->kvs[i].key);

		if (j == b->n_kvs || b->kvs[j].mod_revision != a->kvs[i].mod_revision)
			return false;
	}
	return true;
}
