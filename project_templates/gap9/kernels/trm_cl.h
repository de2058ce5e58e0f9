/* Cluster-kernel annotations: what each core reads and writes in L1 during the current phase (between barriers).
 *
 * On the GAP SDK these compile to nothing (a plain store for TRM_CL_ST). In the functional build
 * (TRM_GAP9_COMPAT) they feed the checker of project_templates/gap9/compat/: two cores writing the same byte in
 * one phase, a core reading what another core writes in the same phase (a missing barrier), compute touching an
 * L1 tile whose DMA is still in flight, and stores outside the declared write-set all stop the run with one
 * "TRM-COMPAT-ERROR" line. Declarations are made from the same bounds as the loops that follow them.
 */
#ifndef TRM_CL_H
#define TRM_CL_H
#include <stdint.h>

#ifdef TRM_GAP9_COMPAT
void trm_compat_reads(const void *p, uint32_t n);
void trm_compat_writes(void *p, uint32_t n);
void trm_compat_check_store(void *p);
#define TRM_CL_READS(p, n) trm_compat_reads((p), (uint32_t)(n))
#define TRM_CL_WRITES(p, n) trm_compat_writes((p), (uint32_t)(n))
#define TRM_CL_ST8(p, v) (trm_compat_check_store(p), *(p) = (v))
#else
#define TRM_CL_READS(p, n) ((void)0)
#define TRM_CL_WRITES(p, n) ((void)0)
#define TRM_CL_ST8(p, v) (*(p) = (v))
#endif

#endif
