/* The GAP9 project's runtime interface: the fabric controller runs the recursion (trm_gap9_exec.c) and sends
 * one cluster task per prologue, per `net` call and per heads evaluation; the generated model (trm_gap9_model.c,
 * from trm_tvm/gap9/project.py) provides the sections that run on the cluster master core. */
#ifndef TRM_GAP9_H
#define TRM_GAP9_H
#include <stdint.h>

#include "pmsis.h"
#include "trm_gap9_model.h" /* generated: sizes, TRM_N_CALLS, TRM_N_SUP, ... */

enum { TRM_GAP9_PHASE_PROLOGUE, TRM_GAP9_PHASE_NET, TRM_GAP9_PHASE_HEADS, TRM_GAP9_N_PHASES };

typedef struct {
  int16_t logits[TRM_OUTPUT_LEN];
  int16_t q;
  uint16_t pred;
  uint8_t steps;
} trm_gap9_result_t;

/* Per-phase counters: cluster tasks run and FC perf-counter cycles spent in them (silicon: GAP9 cycles; the
 * functional QEMU build: emulated counter, never GAP9 cycles). */
typedef struct {
  uint32_t calls[TRM_GAP9_N_PHASES];
  uint64_t cycles[TRM_GAP9_N_PHASES];
} trm_gap9_stats_t;

/* ---- generated model (trm_gap9_model.c): each section runs on the cluster master and forks as it needs ---- */
extern TRM_INPUT_CTYPE trm_input[TRM_INPUT_BYTES];
extern int8_t trm_state_x[TRM_STATE_LEN], trm_state_y[TRM_STATE_LEN], trm_state_z[TRM_STATE_LEN];
extern const int8_t trm_y_init[TRM_HIDDEN], trm_z_init[TRM_HIDDEN];
extern int16_t trm_logits[TRM_OUTPUT_LEN], trm_q[1];
extern volatile int trm_gap9_error; /* first kernel error (negative TRM_CL_E_*), 0 if none */
void trm_gap9_prologue(void);
void trm_gap9_net(int call);
void trm_gap9_heads(void);

/* ---- executor (trm_gap9_exec.c, fabric controller) ---- */
int trm_gap9_infer(struct pi_device *cluster, const void *input, int32_t q_threshold, int max_steps,
                   trm_gap9_result_t *out, trm_gap9_stats_t *stats);

#endif
