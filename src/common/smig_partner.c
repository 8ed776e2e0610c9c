/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_partner.c - partner copies of a node-local store: the choice of
 * partners and the copies' directory (see smig_partner.h)
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>

#include "smig_partner.h"

/* smig_partner_pick - see smig_partner.h */
uint32_t smig_partner_pick(const bool *usable, uint32_t n, uint32_t i)
{
	if (i >= n || !usable[i])
		return SMIG_PARTNER_NONE;
	for (uint32_t k = 1; k < n; k++) {
		uint32_t j = (i + k) % n;

		if (usable[j])
			return j;
	}
	return SMIG_PARTNER_NONE;
}

/* smig_partner_dir - see smig_partner.h */
int smig_partner_dir(char *buf, size_t len, const char *jobdir)
{
	int n = snprintf(buf, len, "%s/%s", jobdir, SMIG_PARTNER_SUBDIR);

	if (n < 0 || (size_t) n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}
