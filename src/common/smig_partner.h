/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_partner.h - partner copies of a node-local store
 * (MigrateImageStore=local, MigratePartnerCopies=yes): which node of a step
 * holds the copies of another node's images, and where they live there
 *
 * Pure functions, no I/O: the balancer picks the partners
 * (smig_balancer_capture.c), the node agents store and prune the copies
 * (smig_agent_store.c). See doc/images.md, "Partner copies".
 */
#ifndef SMIG_PARTNER_H
#define SMIG_PARTNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No partner (a step with one usable node). */
#define SMIG_PARTNER_NONE	UINT32_MAX

/* The subdirectory of a job directory that holds partner copies. */
#define SMIG_PARTNER_SUBDIR	"partner"

/*
 * smig_partner_pick - the partner of node i among n nodes in allocation
 * order: the next usable node after i, round-robin. Over the usable nodes
 * this is a cycle, so every usable node holds the copies of exactly one
 * other (balanced), and never its own.
 * IN usable - n flags: the node has an agent of the step that can receive
 * RET the partner's index, or SMIG_PARTNER_NONE (i not usable, i >= n, or
 *     no other usable node)
 */
uint32_t smig_partner_pick(const bool *usable, uint32_t n, uint32_t i);

/*
 * smig_partner_dir - "<jobdir>/partner", where a node keeps the partner
 * copies it holds of other nodes' ranks (same file names as the job
 * directory: rank<R>.g<G>.img)
 * RET 0, or -ENAMETOOLONG (buf then holds "")
 */
int smig_partner_dir(char *buf, size_t len, const char *jobdir);

#endif /* SMIG_PARTNER_H */
