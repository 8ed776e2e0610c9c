/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_error.c - the GError domain of the core
 */
#include "smig_config.h"

#include <glib.h>

#include "smig_error.h"

/*
 * smig_error_quark - the domain of every GError the core sets
 * RET the quark of "smig-error-quark"
 */
G_DEFINE_QUARK(smig-error-quark, smig_error)
