/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_msgs.c - typed encode/decode of the wire messages, from smig_msgs.def
 */
#include "smig_config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_msgs.h"

#define SMIG_OFF_N_U32(name, key)	0
#define SMIG_OFF_N_U64(name, key)	0
#define SMIG_OFF_N_I32(name, key)	0
#define SMIG_OFF_N_BOOL(name, key)	0
#define SMIG_OFF_N_DBL(name, key)	0
#define SMIG_OFF_N_STR(name, key)	0
#define SMIG_OFF_N_VAR(name, key)	0
#define SMIG_OFF_N_AU(name, key)	offsetof(smig_msg_##name##_t, n_##key)
#define SMIG_OFF_N_AT(name, key)	offsetof(smig_msg_##name##_t, n_##key)
#define SMIG_OFF_N_AD(name, key)	offsetof(smig_msg_##name##_t, n_##key)
#define SMIG_OFF_HAS_REQ(name, key)	SIZE_MAX
#define SMIG_OFF_HAS_OPT(name, key)	offsetof(smig_msg_##name##_t, has_##key)
#define SMIG_IS_REQ_REQ			true
#define SMIG_IS_REQ_OPT			false

/* The field tables, one per message. */
#define SMIG_MSG(T, name, comment) \
	static const smig_field_desc_t name##_fields[] = {
#define SMIG_FIELD(name, key, kind, type, req, comment)			\
	{ #key, type, SMIG_KIND_##kind, SMIG_IS_REQ_##req,		\
	  offsetof(smig_msg_##name##_t, key),				\
	  SMIG_OFF_N_##kind(name, key), SMIG_OFF_HAS_##req(name, key),	\
	  comment },
#define SMIG_MSG_END(T, name) };
#include "smig_msgs.def"
#undef SMIG_MSG
#undef SMIG_FIELD
#undef SMIG_MSG_END

/* The messages, by type. */
static const smig_msg_desc_t descs[SMIG_MSG_TYPE_MAX] = {
#define SMIG_MSG(T, name, comment) \
	[SMIG_MSG_##T] = { SMIG_MSG_##T, comment, name##_fields,	\
			   G_N_ELEMENTS(name##_fields),			\
			   sizeof(smig_msg_##name##_t) },
#define SMIG_FIELD(name, key, kind, type, req, comment)
#define SMIG_MSG_END(T, name)
#include "smig_msgs.def"
#undef SMIG_MSG
#undef SMIG_FIELD
#undef SMIG_MSG_END
};

/* smig_msgs_desc - the schema of one message type (static); NULL if none */
const smig_msg_desc_t *smig_msgs_desc(smig_msg_type_t type)
{
	if ((unsigned) type >= SMIG_MSG_TYPE_MAX || !descs[type].fields)
		return NULL;
	return &descs[type];
}

#define AT(s, off, type) ((type *) ((char *) (s) + (off)))
#define CAT(s, off, type) ((const type *) ((const char *) (s) + (off)))

/*
 * smig_msgs_check - a body against its type's schema: required fields
 * there, every known field of its type, unknown ones ignored
 * OUT error - "TYPE: field KEY ..."; caller frees it with g_error_free()
 */
bool smig_msgs_check(const smig_msg_t *msg, GError **error)
{
	const smig_msg_desc_t *d = smig_msgs_desc(msg->type);
	const char *name = smig_msg_type_name(msg->type);

	if (!d) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "message type %u has no schema",
			    (unsigned) msg->type);
		return false;
	}
	if (!msg->body ||
	    !g_variant_is_of_type(msg->body, G_VARIANT_TYPE_VARDICT)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "%s: body is not of type a{sv}", name);
		return false;
	}
	for (size_t i = 0; i < d->nfields; i++) {
		const smig_field_desc_t *f = &d->fields[i];
		GVariant *v = g_variant_lookup_value(msg->body, f->key, NULL);
		bool ok;

		if (!v) {
			if (!f->required)
				continue;
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "%s: field %s (type %s) is missing",
				    name, f->key, f->type);
			return false;
		}
		ok = g_variant_is_of_type(v, G_VARIANT_TYPE(f->type));
		if (!ok)
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "%s: field %s: expected type %s, found %s",
				    name, f->key, f->type,
				    g_variant_get_type_string(v));
		g_variant_unref(v);
		if (!ok)
			return false;
	}
	return true;
}

/* An empty array of type t (floating). */
static GVariant *empty_array(const char *t)
{
	return g_variant_new_array(g_variant_type_element(G_VARIANT_TYPE(t)),
				   NULL, 0);
}

static GVariant *field_value(const smig_field_desc_t *f, const void *s)
{
	const void *p = CAT(s, f->off, char);
	size_t n = f->off_n ? *CAT(s, f->off_n, size_t) : 0;
	const char *str;
	GVariant *v;

	switch (f->kind) {
	case SMIG_KIND_U32:
		return g_variant_new_uint32(*(const uint32_t *) p);
	case SMIG_KIND_U64:
		return g_variant_new_uint64(*(const uint64_t *) p);
	case SMIG_KIND_I32:
		return g_variant_new_int32(*(const int32_t *) p);
	case SMIG_KIND_BOOL:
		return g_variant_new_boolean(*(const bool *) p);
	case SMIG_KIND_DBL:
		return g_variant_new_double(*(const double *) p);
	case SMIG_KIND_STR:
		str = *(char *const *) p;
		return g_variant_new_string(str ? str : "");
	case SMIG_KIND_AU:
		return g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
						 *(void *const *) p, n,
						 sizeof(uint32_t));
	case SMIG_KIND_AT:
		return g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64,
						 *(void *const *) p, n,
						 sizeof(uint64_t));
	case SMIG_KIND_AD:
		return g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
						 *(void *const *) p, n,
						 sizeof(double));
	case SMIG_KIND_VAR:
	default:
		v = *(GVariant *const *) p;
		return v ? v : empty_array(f->type);
	}
}

/*
 * smig_msgs_body - the a{sv} of a struct (read only; optional fields only
 * when their has_ flag is set)
 * RET new floating GVariant
 */
GVariant *smig_msgs_body(smig_msg_type_t type, const void *s)
{
	const smig_msg_desc_t *d = smig_msgs_desc(type);
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	for (size_t i = 0; d && i < d->nfields; i++) {
		const smig_field_desc_t *f = &d->fields[i];

		if (!f->required && !*CAT(s, f->off_has, bool))
			continue;
		/* A VAR the caller holds is not floating: the builder
		 * takes a reference of its own. */
		g_variant_builder_add(&b, "{sv}", f->key, field_value(f, s));
	}
	return g_variant_builder_end(&b);
}

/* smig_msgs_clear - free the strings, arrays and GVariants of s; zero it */
void smig_msgs_clear(smig_msg_type_t type, void *s)
{
	const smig_msg_desc_t *d = smig_msgs_desc(type);

	if (!d || !s)
		return;
	for (size_t i = 0; i < d->nfields; i++) {
		const smig_field_desc_t *f = &d->fields[i];

		switch (f->kind) {
		case SMIG_KIND_STR:
		case SMIG_KIND_AU:
		case SMIG_KIND_AT:
		case SMIG_KIND_AD:
			g_free(*AT(s, f->off, void *));
			break;
		case SMIG_KIND_VAR:
			if (*AT(s, f->off, GVariant *))
				g_variant_unref(*AT(s, f->off, GVariant *));
			break;
		default:
			break;
		}
	}
	memset(s, 0, d->size);
}

/* Copy a fixed array out of v into the struct. */
static void take_array(const smig_field_desc_t *f, GVariant *v, void *s,
		       size_t elem)
{
	gsize n = 0;
	const void *data = g_variant_get_fixed_array(v, &n, elem);

	*AT(s, f->off, void *) = n ? g_memdup2(data, n * elem) : NULL;
	*AT(s, f->off_n, size_t) = n;
}

/*
 * smig_msgs_decode - msg into s (zeroed first): copies of its strings and
 * arrays, references of its other values; on failure s holds nothing
 * OUT error - another message type, or smig_msgs_check()'s error
 */
bool smig_msgs_decode(smig_msg_type_t type, const smig_msg_t *msg, void *s,
		      GError **error)
{
	const smig_msg_desc_t *d = smig_msgs_desc(type);

	if (!d) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "message type %u has no schema", (unsigned) type);
		return false;
	}
	memset(s, 0, d->size);
	if (msg->type != type) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "expected a %s message, got %s",
			    smig_msg_type_name(type),
			    smig_msg_type_name(msg->type));
		return false;
	}
	if (!smig_msgs_check(msg, error))
		return false;
	for (size_t i = 0; i < d->nfields; i++) {
		const smig_field_desc_t *f = &d->fields[i];
		GVariant *v = g_variant_lookup_value(msg->body, f->key,
						     G_VARIANT_TYPE(f->type));

		if (!v)
			continue;	/* optional: checked above */
		if (!f->required)
			*AT(s, f->off_has, bool) = true;
		switch (f->kind) {
		case SMIG_KIND_U32:
			*AT(s, f->off, uint32_t) = g_variant_get_uint32(v);
			break;
		case SMIG_KIND_U64:
			*AT(s, f->off, uint64_t) = g_variant_get_uint64(v);
			break;
		case SMIG_KIND_I32:
			*AT(s, f->off, int32_t) = g_variant_get_int32(v);
			break;
		case SMIG_KIND_BOOL:
			*AT(s, f->off, bool) = g_variant_get_boolean(v);
			break;
		case SMIG_KIND_DBL:
			*AT(s, f->off, double) = g_variant_get_double(v);
			break;
		case SMIG_KIND_STR:
			*AT(s, f->off, char *) = g_variant_dup_string(v, NULL);
			break;
		case SMIG_KIND_AU:
			take_array(f, v, s, sizeof(uint32_t));
			break;
		case SMIG_KIND_AT:
			take_array(f, v, s, sizeof(uint64_t));
			break;
		case SMIG_KIND_AD:
			take_array(f, v, s, sizeof(double));
			break;
		case SMIG_KIND_VAR:
			*AT(s, f->off, GVariant *) = g_variant_ref(v);
			break;
		}
		g_variant_unref(v);
	}
	return true;
}

/* The typed functions: thin, type-safe wrappers of the four above. */
#define SMIG_MSG(T, name, comment)					\
GVariant *smig_msg_##name##_body(const smig_msg_##name##_t *s)		\
{									\
	return smig_msgs_body(SMIG_MSG_##T, s);				\
}									\
smig_msg_t *smig_msg_##name##_encode(const smig_msg_##name##_t *s)	\
{									\
	return smig_msg_new(SMIG_MSG_##T, smig_msgs_body(SMIG_MSG_##T, s)); \
}									\
bool smig_msg_##name##_decode(const smig_msg_t *msg,			\
			      smig_msg_##name##_t *s, GError **error)	\
{									\
	return smig_msgs_decode(SMIG_MSG_##T, msg, s, error);		\
}									\
void smig_msg_##name##_clear(smig_msg_##name##_t *s)			\
{									\
	smig_msgs_clear(SMIG_MSG_##T, s);				\
}
#define SMIG_FIELD(name, key, kind, type, req, comment)
#define SMIG_MSG_END(T, name)
#include "smig_msgs.def"
#undef SMIG_MSG
#undef SMIG_FIELD
#undef SMIG_MSG_END
