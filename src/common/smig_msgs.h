/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_msgs.h - one typed struct and encode/decode pair per wire message,
 * made from the schema in smig_msgs.def
 *
 * For a message "name" (smig_msgs.def) there are
 *   smig_msg_<name>_t                        its fields: a required field is
 *       a member "key"; an optional one also has "bool has_<key>"; an array
 *       (au, at, ad) is "key" plus "size_t n_<key>"; a string is "char *";
 *       any other type a GVariant * (a full reference, never floating)
 *   smig_msg_<name>_encode(const t *)        a new message to send
 *   smig_msg_<name>_body(const t *)          its a{sv} body only (floating)
 *   smig_msg_<name>_decode(msg, t *, error)  the fields of a received one
 *       (t zeroed first; on failure it holds nothing, the error names the
 *       message, the field, the expected and the found type)
 *   smig_msg_<name>_clear(t *)               frees what decode allocated
 *
 * Encoding reads the struct and keeps nothing of it: the caller may fill
 * it with borrowed strings and arrays, and then must not clear() it. A
 * NULL string of a field that is sent is sent as "", a NULL array as empty.
 */
#ifndef SMIG_MSGS_H
#define SMIG_MSGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "smig_wire.h"

typedef enum {
	SMIG_KIND_U32,
	SMIG_KIND_U64,
	SMIG_KIND_I32,
	SMIG_KIND_BOOL,
	SMIG_KIND_DBL,
	SMIG_KIND_STR,
	SMIG_KIND_AU,
	SMIG_KIND_AT,
	SMIG_KIND_AD,
	SMIG_KIND_VAR,
} smig_field_kind_t;

/* One field of a message (a row of smig_msgs.def). */
typedef struct {
	const char *key;
	const char *type;	/* GVariant type string */
	smig_field_kind_t kind;
	bool required;
	size_t off;		/* of the value in the struct */
	size_t off_n;		/* arrays: of the element count */
	size_t off_has;		/* optional: of has_<key> */
	const char *comment;
} smig_field_desc_t;

/* One message of smig_msgs.def. */
typedef struct {
	smig_msg_type_t type;
	const char *comment;
	const smig_field_desc_t *fields;
	size_t nfields;
	size_t size;		/* of its struct */
} smig_msg_desc_t;

/* The members of one field, by kind. */
#define SMIG_MEMBER_U32(key)	uint32_t key;
#define SMIG_MEMBER_U64(key)	uint64_t key;
#define SMIG_MEMBER_I32(key)	int32_t key;
#define SMIG_MEMBER_BOOL(key)	bool key;
#define SMIG_MEMBER_DBL(key)	double key;
#define SMIG_MEMBER_STR(key)	char *key;
#define SMIG_MEMBER_AU(key)	uint32_t *key; size_t n_##key;
#define SMIG_MEMBER_AT(key)	uint64_t *key; size_t n_##key;
#define SMIG_MEMBER_AD(key)	double *key; size_t n_##key;
#define SMIG_MEMBER_VAR(key)	GVariant *key;
#define SMIG_HAS_REQ(key)
#define SMIG_HAS_OPT(key)	bool has_##key;

#define SMIG_MSG(T, name, comment) typedef struct smig_msg_##name {
#define SMIG_FIELD(name, key, kind, type, req, comment) \
	SMIG_MEMBER_##kind(key) SMIG_HAS_##req(key)
#define SMIG_MSG_END(T, name) } smig_msg_##name##_t;
#include "smig_msgs.def"
#undef SMIG_MSG
#undef SMIG_FIELD
#undef SMIG_MSG_END

#define SMIG_MSG(T, name, comment)					\
smig_msg_t *smig_msg_##name##_encode(const smig_msg_##name##_t *s);	\
GVariant *smig_msg_##name##_body(const smig_msg_##name##_t *s);		\
bool smig_msg_##name##_decode(const smig_msg_t *msg,			\
			      smig_msg_##name##_t *s, GError **error);	\
void smig_msg_##name##_clear(smig_msg_##name##_t *s);
#define SMIG_FIELD(name, key, kind, type, req, comment)
#define SMIG_MSG_END(T, name)
#include "smig_msgs.def"
#undef SMIG_MSG
#undef SMIG_FIELD
#undef SMIG_MSG_END

/*
 * smig_msgs_desc - the schema of one message type
 * RET static description; NULL for a type outside 1..SMIG_MSG_TYPE_MAX-1
 */
const smig_msg_desc_t *smig_msgs_desc(smig_msg_type_t type);

/*
 * smig_msgs_check - does a message's body follow the schema of its type?
 * A required field missing or any field of the schema with another type is
 * refused; fields the schema does not know are ignored.
 * OUT error - names the message, the field, the expected and found type;
 *             caller frees it with g_error_free()
 */
bool smig_msgs_check(const smig_msg_t *msg, GError **error);

/*
 * smig_msgs_body - the a{sv} body of a struct of the message type's schema
 * (what smig_msg_<name>_body() calls)
 * RET new floating GVariant
 */
GVariant *smig_msgs_body(smig_msg_type_t type, const void *s);

/*
 * smig_msgs_decode - fill a zeroed struct of the type's schema (what
 * smig_msg_<name>_decode() calls); on failure nothing is left to clear
 * OUT error - wrong message type, or smig_msgs_check()'s error
 */
bool smig_msgs_decode(smig_msg_type_t type, const smig_msg_t *msg, void *s,
		      GError **error);

/* smig_msgs_clear - free what decode put in a struct, and zero it */
void smig_msgs_clear(smig_msg_type_t type, void *s);

#endif /* SMIG_MSGS_H */
