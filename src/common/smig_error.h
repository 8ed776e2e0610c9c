/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_error.h - the GError domain of the core
 */
#ifndef SMIG_ERROR_H
#define SMIG_ERROR_H

#include <glib.h>

#define SMIG_ERROR smig_error_quark()

typedef enum {
	SMIG_ERROR_CONFIG,	/* migrate.conf */
	SMIG_ERROR_REQUEST,	/* --migrate option */
	SMIG_ERROR_WIRE,	/* framing, decoding, message fields */
	SMIG_ERROR_AUTH,	/* credential missing, bad, replayed, refused */
	SMIG_ERROR_IMAGE,	/* recovery image format or checksum */
	SMIG_ERROR_IO,		/* system call failed */
	SMIG_ERROR_POLICY,	/* no plan possible */
	SMIG_ERROR_STATE,	/* request out of order */
	SMIG_ERROR_SCHEMA,	/* a whole message breaks its schema (the stream
				 * is intact: the next frame can be read) */
} smig_error_code_t;

GQuark smig_error_quark(void);

#endif /* SMIG_ERROR_H */
