/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * msgs-test.c - the typed wire messages of smig_msgs.def: every message
 * round-trips, a body that breaks the schema is refused, and the message
 * table of doc/design.md says what the schema says
 */
#include "smig_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_error.h"
#include "smig_msgs.h"
#include "smig_wire.h"

#ifndef SMIG_TOP_SRCDIR
#error "SMIG_TOP_SRCDIR must name the source tree (see testsuite/unit/local.mk)"
#endif

#define FIELD(s, f, type) ((type *) ((char *) (s) + (f)->off))
#define CFIELD(s, f, type) ((const type *) ((const char *) (s) + (f)->off))

/*
 * Fill field i of a struct with a value made from seed (arrays of 3,
 * strings "key-seed", VAR an array of 2 elements of its type), owned by
 * the struct: smig_msgs_clear() frees it.
 */
static void fill(const smig_field_desc_t *f, void *s, unsigned seed)
{
	void *p = FIELD(s, f, char);
	GVariantBuilder b;

	if (!f->required)
		*(bool *) ((char *) s + f->off_has) = true;
	switch (f->kind) {
	case SMIG_KIND_U32:
		*(uint32_t *) p = 1000 + seed;
		break;
	case SMIG_KIND_U64:
		*(uint64_t *) p = G_MAXUINT64 - seed;
		break;
	case SMIG_KIND_I32:
		*(int32_t *) p = -(int32_t) seed;
		break;
	case SMIG_KIND_BOOL:
		*(bool *) p = seed % 2;
		break;
	case SMIG_KIND_DBL:
		*(double *) p = seed + 0.25;
		break;
	case SMIG_KIND_STR:
		*(char **) p = g_strdup_printf("%s-%u", f->key, seed);
		break;
	case SMIG_KIND_AU: {
		uint32_t *a = g_new(uint32_t, 3);

		for (int i = 0; i < 3; i++)
			a[i] = seed + i;
		*(uint32_t **) p = a;
		*(size_t *) ((char *) s + f->off_n) = 3;
		break;
	}
	case SMIG_KIND_AT: {
		uint64_t *a = g_new(uint64_t, 3);

		for (int i = 0; i < 3; i++)
			a[i] = ((uint64_t) seed << 33) + i;
		*(uint64_t **) p = a;
		*(size_t *) ((char *) s + f->off_n) = 3;
		break;
	}
	case SMIG_KIND_AD: {
		double *a = g_new(double, 3);

		for (int i = 0; i < 3; i++)
			a[i] = seed - 0.5 * i;
		*(double **) p = a;
		*(size_t *) ((char *) s + f->off_n) = 3;
		break;
	}
	case SMIG_KIND_VAR: {
		const GVariantType *elem =
			g_variant_type_element(G_VARIANT_TYPE(f->type));
		GVariant *one, *all;

		/* Dicts with a field; other elements: zeroes of their type. */
		g_variant_builder_init(&b, G_VARIANT_TYPE(f->type));
		for (unsigned i = 0; i < 2; i++) {
			if (g_variant_type_equal(elem,
						 G_VARIANT_TYPE_VARDICT)) {
				char *text = g_strdup_printf("{'n': <%u>}",
							     seed + i);

				/* Not floating: the builder takes a ref. */
				one = g_variant_parse(elem, text, NULL, NULL,
						      NULL);
				g_free(text);
				ck_assert(one);
				g_variant_builder_add_value(&b, one);
				g_variant_unref(one);
			} else {
				one = g_variant_new_from_data(elem, NULL, 0,
							      FALSE, NULL,
							      NULL);
				g_variant_builder_add_value(&b, one);
			}
		}
		all = g_variant_ref_sink(g_variant_builder_end(&b));
		*(GVariant **) p = g_variant_get_normal_form(all);
		g_variant_unref(all);
		break;
	}
	}
}

static bool field_equal(const smig_field_desc_t *f, const void *a,
			const void *b)
{
	size_t n = f->off_n ? *(const size_t *) ((const char *) a + f->off_n)
			    : 0;
	size_t m = f->off_n ? *(const size_t *) ((const char *) b + f->off_n)
			    : 0;

	if (!f->required &&
	    *(const bool *) ((const char *) a + f->off_has) !=
	    *(const bool *) ((const char *) b + f->off_has))
		return false;
	switch (f->kind) {
	case SMIG_KIND_U32:
		return *CFIELD(a, f, uint32_t) == *CFIELD(b, f, uint32_t);
	case SMIG_KIND_U64:
		return *CFIELD(a, f, uint64_t) == *CFIELD(b, f, uint64_t);
	case SMIG_KIND_I32:
		return *CFIELD(a, f, int32_t) == *CFIELD(b, f, int32_t);
	case SMIG_KIND_BOOL:
		return *CFIELD(a, f, bool) == *CFIELD(b, f, bool);
	case SMIG_KIND_DBL:
		return *CFIELD(a, f, double) == *CFIELD(b, f, double);
	case SMIG_KIND_STR:
		return !g_strcmp0(*CFIELD(a, f, char *), *CFIELD(b, f, char *));
	case SMIG_KIND_AU:
		return n == m && !memcmp(*CFIELD(a, f, void *),
					 *CFIELD(b, f, void *), n * 4);
	case SMIG_KIND_AT:
	case SMIG_KIND_AD:
		return n == m && !memcmp(*CFIELD(a, f, void *),
					 *CFIELD(b, f, void *), n * 8);
	case SMIG_KIND_VAR:
		if (!*CFIELD(a, f, GVariant *) || !*CFIELD(b, f, GVariant *))
			return *CFIELD(a, f, GVariant *) ==
			       *CFIELD(b, f, GVariant *);
		return g_variant_equal(*CFIELD(a, f, GVariant *),
				       *CFIELD(b, f, GVariant *));
	}
	return false;
}

/* The schema itself: kinds match type strings, VAR types are arrays. */
START_TEST(test_schema_sane)
{
	static const char *const kind_type[] = {
		[SMIG_KIND_U32] = "u", [SMIG_KIND_U64] = "t",
		[SMIG_KIND_I32] = "i", [SMIG_KIND_BOOL] = "b",
		[SMIG_KIND_DBL] = "d", [SMIG_KIND_STR] = "s",
		[SMIG_KIND_AU] = "au", [SMIG_KIND_AT] = "at",
		[SMIG_KIND_AD] = "ad",
	};

	for (int t = 1; t < SMIG_MSG_TYPE_MAX; t++) {
		const smig_msg_desc_t *d = smig_msgs_desc(t);

		ck_assert_msg(d, "type %d has no schema", t);
		ck_assert_int_eq(d->type, t);
		ck_assert_uint_gt(d->nfields, 0);
		for (size_t i = 0; i < d->nfields; i++) {
			const smig_field_desc_t *f = &d->fields[i];

			ck_assert_msg(g_variant_type_string_is_valid(f->type),
				      "%s.%s: %s", smig_msg_type_name(t),
				      f->key, f->type);
			if (f->kind == SMIG_KIND_VAR)
				ck_assert_msg(g_variant_type_is_array(
						G_VARIANT_TYPE(f->type)),
					      "%s.%s", smig_msg_type_name(t),
					      f->key);
			else
				ck_assert_str_eq(f->type, kind_type[f->kind]);
			for (size_t j = 0; j < i; j++)
				ck_assert_str_ne(f->key, d->fields[j].key);
		}
	}
	ck_assert_ptr_null(smig_msgs_desc(0));
	ck_assert_ptr_null(smig_msgs_desc(SMIG_MSG_TYPE_MAX));
}
END_TEST

/*
 * Every message type, every field set: encode, frame, send over a socket,
 * receive (with the schema check), decode: the same struct comes back.
 * And with only the required fields: the optional ones come back unset.
 */
START_TEST(test_roundtrip_all)
{
	smig_auth_t *auth = smig_auth_none_new(1000, 100);
	int t = _i;
	const smig_msg_desc_t *d = smig_msgs_desc(t);
	void *in = g_malloc0(d->size), *out = g_malloc0(d->size);
	GError *err = NULL;
	smig_msg_t *m, *got;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int only_required = 0; only_required < 2; only_required++) {
		for (size_t i = 0; i < d->nfields; i++)
			if (!only_required || d->fields[i].required)
				fill(&d->fields[i], in, 7 + i);
		m = smig_msg_new(t, smig_msgs_body(t, in));
		ck_assert_msg(smig_wire_send(sv[0], auth, m, &err), "%s",
			      err ? err->message : "");
		got = smig_wire_recv(sv[1], auth, 1000, &err);
		ck_assert_msg(got, "%s", err ? err->message : "");
		ck_assert_int_eq(got->type, t);
		ck_assert_msg(smig_msgs_decode(t, got, out, &err), "%s",
			      err ? err->message : "");
		for (size_t i = 0; i < d->nfields; i++)
			ck_assert_msg(field_equal(&d->fields[i], in, out),
				      "%s.%s differs after the round trip",
				      smig_msg_type_name(t),
				      d->fields[i].key);
		smig_msgs_clear(t, in);
		smig_msgs_clear(t, out);
		smig_msg_free(m);
		smig_msg_free(got);
	}
	close(sv[0]);
	close(sv[1]);
	g_free(in);
	g_free(out);
	smig_auth_free(auth);
}
END_TEST

/* The typed functions by name, as the callers use them. */
START_TEST(test_typed_hello_agent)
{
	uint32_t ranks[] = { 4, 5, 6 };
	smig_msg_hello_agent_t a = {
		.job = 42, .step = 3, .node = "node2",
		.ranks = ranks, .n_ranks = 3,
		.good_gen = 9, .has_good_gen = true,
	}, b;
	GError *err = NULL;
	smig_msg_t *m = smig_msg_hello_agent_encode(&a);

	ck_assert_int_eq(m->type, SMIG_MSG_HELLO_AGENT);
	ck_assert(smig_msg_hello_agent_decode(m, &b, &err));
	ck_assert_uint_eq(b.job, 42);
	ck_assert_uint_eq(b.step, 3);
	ck_assert_str_eq(b.node, "node2");
	ck_assert_uint_eq(b.n_ranks, 3);
	ck_assert_uint_eq(b.ranks[2], 6);
	ck_assert(b.has_good_gen);
	ck_assert_uint_eq(b.good_gen, 9);
	ck_assert(!b.has_tried_gen);
	ck_assert(!b.has_handoff_port);
	ck_assert(!b.has_error);
	/* The absent optional fields are not sent at all. */
	ck_assert(!g_variant_lookup_value(m->body, "tried_gen", NULL));
	smig_msg_hello_agent_clear(&b);
	ck_assert_ptr_null(b.node);
	ck_assert_ptr_null(b.ranks);
	smig_msg_hello_agent_clear(&b);		/* twice: a no-op */
	smig_msg_free(m);
}
END_TEST

/* NULL strings and arrays of fields that are sent go out empty. */
START_TEST(test_encode_null_is_empty)
{
	smig_msg_restored_t r = { .job = 1, .step = 2, .gen = 0 };
	smig_msg_refused_t f = { .what = "QUERY" };
	smig_msg_restored_t r2;
	smig_msg_refused_t f2;
	smig_msg_t *m1 = smig_msg_restored_encode(&r);
	smig_msg_t *m2 = smig_msg_refused_encode(&f);

	ck_assert(smig_msg_restored_decode(m1, &r2, NULL));
	ck_assert_uint_eq(r2.n_ranks, 0);
	ck_assert_ptr_null(r2.ranks);
	ck_assert(smig_msg_refused_decode(m2, &f2, NULL));
	ck_assert_str_eq(f2.what, "QUERY");
	ck_assert_str_eq(f2.reason, "");
	smig_msg_restored_clear(&r2);
	smig_msg_refused_clear(&f2);
	smig_msg_free(m1);
	smig_msg_free(m2);
}
END_TEST

/* A message of type t built by hand, its body given as GVariant text. */
static smig_msg_t *parsed(smig_msg_type_t t, const char *text)
{
	GVariant *body = g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL,
					 NULL, NULL);
	smig_msg_t *m;

	ck_assert_msg(body, "bad test text %s", text);
	m = smig_msg_new(t, body);
	g_variant_unref(body);	/* parsed values are not floating */
	return m;
}

static smig_msg_t *bye(const char *text)
{
	return parsed(SMIG_MSG_BYE, text);
}

START_TEST(test_refusals)
{
	smig_msg_bye_t b;
	smig_msg_commit_t c;
	GError *err = NULL;
	smig_msg_t *m;

	m = bye("{'step': <uint32 1>, 'status': <int32 0>}");
	ck_assert(!smig_msgs_check(m, &err));
	ck_assert_str_eq(err->message, "BYE: field job (type u) is missing");
	g_clear_error(&err);
	ck_assert(!smig_msg_bye_decode(m, &b, &err));
	ck_assert_str_eq(err->message, "BYE: field job (type u) is missing");
	g_clear_error(&err);
	smig_msg_free(m);

	m = bye("{'job': <'42'>, 'step': <uint32 1>, 'status': <int32 0>}");
	ck_assert(!smig_msg_bye_decode(m, &b, &err));
	ck_assert_str_eq(err->message,
			 "BYE: field job: expected type u, found s");
	g_clear_error(&err);
	smig_msg_free(m);

	/* An optional field of the wrong type is refused as well. */
	m = parsed(SMIG_MSG_HELLO_SRUN,
		   "{'job': <uint32 1>, 'step': <uint32 0>, 'request': <'mode=auto'>,"
		   " 'ntasks': <uint32 2>, 'alloc_nodes': <'n[1-2]'>,"
		   " 'alloc_cpus': <'1(x2)'>, 'restored_gen': <uint32 3>}");
	ck_assert(!smig_msgs_check(m, &err));
	ck_assert_str_eq(err->message,
			 "HELLO_SRUN: field restored_gen: expected type t, found u");
	g_clear_error(&err);
	smig_msg_free(m);

	/* Unknown fields are ignored: a newer sender may add some. */
	m = bye("{'job': <uint32 42>, 'step': <uint32 1>, 'status': <int32 3>,"
		" 'newer': <'x'>}");
	ck_assert_msg(smig_msg_bye_decode(m, &b, &err), "%s",
		      err ? err->message : "");
	ck_assert_uint_eq(b.job, 42);
	ck_assert_int_eq(b.status, 3);
	smig_msg_bye_clear(&b);

	/* Decoding as another message says which. */
	ck_assert(!smig_msg_commit_decode(m, &c, &err));
	ck_assert_str_eq(err->message, "expected a COMMIT message, got BYE");
	g_clear_error(&err);
	smig_msg_free(m);
}
END_TEST

/* smig_wire_recv() refuses a bad body and the stream goes on. */
START_TEST(test_recv_refuses)
{
	smig_auth_t *auth = smig_auth_none_new(1000, 100);
	smig_msg_bye_t ok = { .job = 5, .step = 6, .status = 0 };
	smig_msg_t *bad = bye("{'job': <uint32 5>, 'step': <int32 6>}");
	smig_msg_t *good = smig_msg_bye_encode(&ok), *got;
	GError *err = NULL;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert(smig_wire_send(sv[0], auth, bad, NULL));
	ck_assert(smig_wire_send(sv[0], auth, good, NULL));
	ck_assert_ptr_null(smig_wire_recv(sv[1], auth, 1000, &err));
	ck_assert_str_eq(err->message,
			 "BYE: field step: expected type u, found i");
	g_clear_error(&err);
	got = smig_wire_recv(sv[1], auth, 1000, &err);
	ck_assert_msg(got, "%s", err ? err->message : "");
	ck_assert_int_eq(got->type, SMIG_MSG_BYE);
	smig_msg_free(got);
	smig_msg_free(bad);
	smig_msg_free(good);
	close(sv[0]);
	close(sv[1]);
	smig_auth_free(auth);
}
END_TEST

/*
 * doc/design.md's message table: rows "| TYPE | from -> to | fields |", a
 * field written "`key` TYPE" (GVariant type; "?" after it: optional).
 * RET per message name, a table key -> "TYPE" or "TYPE?"; NULL names
 * the first contradiction in *why (a field given two ways)
 */
static GHashTable *doc_fields(const char *text, char **why)
{
	GHashTable *msgs = g_hash_table_new_full(g_str_hash, g_str_equal,
		g_free, (GDestroyNotify) g_hash_table_unref);
	GRegex *re = g_regex_new("`([a-z_]+)` ([a-z(){}]+)([?]?)(?=[ ,;.):]|$)",
				 0, 0, NULL);
	char **lines = g_strsplit(text, "\n", -1);
	bool in_table = false;

	for (char **l = lines; *l; l++) {
		char **cols;
		GMatchInfo *mi;
		GHashTable *f;

		if (g_str_has_prefix(*l, "| type | from -> to | fields")) {
			in_table = true;
			continue;
		}
		if (!in_table || g_str_has_prefix(*l, "|---"))
			continue;
		if ((*l)[0] != '|')
			break;
		cols = g_strsplit(*l, "|", 5);
		ck_assert_msg(g_strv_length(cols) == 5, "bad row: %s", *l);
		g_strstrip(cols[1]);
		f = g_hash_table_lookup(msgs, cols[1]);
		if (!f) {
			f = g_hash_table_new_full(g_str_hash, g_str_equal,
						  g_free, g_free);
			g_hash_table_insert(msgs, g_strdup(cols[1]), f);
		}
		g_regex_match(re, cols[3], 0, &mi);
		for (; g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
			char *key = g_match_info_fetch(mi, 1);
			char *type = g_match_info_fetch(mi, 2);
			char *opt = g_match_info_fetch(mi, 3);
			char *val = g_strconcat(type, opt, NULL);
			const char *old = g_hash_table_lookup(f, key);

			/* Not a type: "`status` 0:", "`gen` the ..." */
			if (!g_variant_type_string_is_valid(type)) {
				g_free(val);
				g_free(key);
			} else if (old && strcmp(old, val)) {
				*why = g_strdup_printf("%s: field %s is %s in one row and %s in another",
						       cols[1], key, old, val);
				g_free(val);
				g_free(key);
			} else {
				g_hash_table_replace(f, key, val);
			}
			g_free(type);
			g_free(opt);
		}
		g_match_info_free(mi);
		g_strfreev(cols);
	}
	g_strfreev(lines);
	g_regex_unref(re);
	return msgs;
}

/* The message table of doc/design.md and smig_msgs.def agree. */
START_TEST(test_doc_table)
{
	char *path = g_build_filename(SMIG_TOP_SRCDIR, "doc", "design.md",
				      NULL);
	GString *diff = g_string_new(NULL);
	char *text = NULL, *why = NULL;
	GHashTable *doc;

	ck_assert_msg(g_file_get_contents(path, &text, NULL, NULL), "%s",
		      path);
	doc = doc_fields(text, &why);
	ck_assert_msg(!why, "%s: %s", path, why);
	ck_assert_uint_eq(g_hash_table_size(doc), SMIG_MSG_TYPE_MAX - 1);
	for (int t = 1; t < SMIG_MSG_TYPE_MAX; t++) {
		const smig_msg_desc_t *d = smig_msgs_desc(t);
		const char *name = smig_msg_type_name(t);
		GHashTable *f = g_hash_table_lookup(doc, name);
		GHashTableIter it;
		gpointer k, v;

		if (!f) {
			g_string_append_printf(diff, "%s: no row\n", name);
			continue;
		}
		for (size_t i = 0; i < d->nfields; i++) {
			const smig_field_desc_t *fd = &d->fields[i];
			char *want = g_strconcat(fd->type,
						 fd->required ? "" : "?",
						 NULL);
			const char *got = g_hash_table_lookup(f, fd->key);

			if (!got)
				g_string_append_printf(diff, "%s: field %s (%s) not in the doc\n",
						       name, fd->key, want);
			else if (strcmp(got, want))
				g_string_append_printf(diff, "%s: field %s is %s in the doc, %s in smig_msgs.def\n",
						       name, fd->key, got,
						       want);
			g_free(want);
		}
		g_hash_table_iter_init(&it, f);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			bool known = false;

			for (size_t i = 0; i < d->nfields && !known; i++)
				known = !strcmp(d->fields[i].key, k);
			if (!known)
				g_string_append_printf(diff, "%s: field %s (%s) of the doc not in smig_msgs.def\n",
						       name, (char *) k,
						       (char *) v);
		}
	}
	ck_assert_msg(!diff->len, "%s and smig_msgs.def differ:\n%s", path,
		      diff->str);
	g_string_free(diff, TRUE);
	g_hash_table_unref(doc);
	g_free(text);
	g_free(path);
}
END_TEST

static Suite *msgs_suite(void)
{
	Suite *s = suite_create("msgs");
	TCase *tc = tcase_create("typed");

	tcase_add_test(tc, test_schema_sane);
	tcase_add_loop_test(tc, test_roundtrip_all, 1, SMIG_MSG_TYPE_MAX);
	tcase_add_test(tc, test_typed_hello_agent);
	tcase_add_test(tc, test_encode_null_is_empty);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_recv_refuses);
	suite_add_tcase(s, tc);
	tc = tcase_create("doc");
	tcase_add_test(tc, test_doc_table);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(msgs_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
