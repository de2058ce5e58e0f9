/* The model library API of docs/build-dir.md, served on GAP9 by trm_gap9_exec.c (the shared RPC server calls it). */
#ifndef TRM_MODEL_H
#define TRM_MODEL_H
#include <stdint.h>
#include "trm_gap9_model.h"

#define TRM_ARENA_BYTES 8 /* GAP9 keeps its activations in L2 statics: the arena is unused */
#define TRM_E_ARENA (-1)
#define TRM_E_ARGS (-2)
#define TRM_E_INIT (-3)
#define TRM_E_KERNEL (-4) /* a cluster kernel refused its tiles (L1) */

typedef struct { int32_t q_threshold; uint8_t max_steps; } trm_run_opts_t;
typedef struct { int16_t logits[TRM_OUTPUT_LEN]; int16_t q; uint16_t pred; uint8_t steps; } trm_result_t;
typedef enum { TRM_PHASE_PROLOGUE = 0, TRM_PHASE_NET = 1, TRM_PHASE_HEADS = 2 } trm_phase_t;

int trm_init(void *arena, uint32_t arena_bytes); /* opens the cluster once */
int trm_run(const void *input, trm_result_t *out, const trm_run_opts_t *opts);
void trm_phase_begin(trm_phase_t phase);
void trm_phase_end(trm_phase_t phase);
#endif
