/* The recursion on the fabric controller: prologue, then per supervision step the T*(n+1) `net` calls and the
 * heads, each as one cluster task, with the FC performance counter around every task; halting as in
 * docs/integer-spec.md (stop after step k when q >= q_threshold or k == max_steps). */
#include <string.h>

#include "trm_gap9.h"
#include "trm_model.h"

__attribute__((weak)) void trm_phase_begin(trm_phase_t phase) { (void)phase; }
__attribute__((weak)) void trm_phase_end(trm_phase_t phase) { (void)phase; }

typedef struct {
  int section, call;
} cl_job_t;

static void cluster_entry(void *arg) {
  const cl_job_t *job = arg;
  if (job->section == TRM_GAP9_PHASE_PROLOGUE) trm_gap9_prologue();
  else if (job->section == TRM_GAP9_PHASE_NET) trm_gap9_net(job->call);
  else trm_gap9_heads();
}

static void run_on_cluster(struct pi_device *cluster, int section, int call, trm_gap9_stats_t *stats) {
  struct pi_cluster_task task;
  cl_job_t job = {section, call};
  trm_phase_begin((trm_phase_t)section);
  pi_perf_conf(1u << PI_PERF_CYCLES);
  pi_perf_reset();
  pi_perf_start();
  pi_cluster_send_task_to_cl(cluster, pi_cluster_task(&task, cluster_entry, &job));
  pi_perf_stop();
  trm_phase_end((trm_phase_t)section);
  stats->calls[section]++;
  stats->cycles[section] += pi_perf_read(PI_PERF_CYCLES);
}

static uint16_t argmax(const int16_t *x, int n) { /* ties to the lowest index */
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return (uint16_t)best;
}

int trm_gap9_infer(struct pi_device *cluster, const void *input, int32_t q_threshold, int max_steps,
                   trm_gap9_result_t *out, trm_gap9_stats_t *stats) {
  if (max_steps < 1 || max_steps > TRM_N_SUP) return -3;
  trm_gap9_error = 0;
  memcpy(trm_input, input, sizeof trm_input);
  run_on_cluster(cluster, TRM_GAP9_PHASE_PROLOGUE, 0, stats);
  for (int t = 0; t < TRM_TOKENS; t++) {
    memcpy(trm_state_y + t * TRM_HIDDEN, trm_y_init, TRM_HIDDEN);
    memcpy(trm_state_z + t * TRM_HIDDEN, trm_z_init, TRM_HIDDEN);
  }
  for (int step = 1; step <= max_steps; step++) {
    for (int call = 0; call < TRM_N_CALLS; call++) run_on_cluster(cluster, TRM_GAP9_PHASE_NET, call, stats);
    run_on_cluster(cluster, TRM_GAP9_PHASE_HEADS, 0, stats);
    if (trm_gap9_error) return trm_gap9_error;
    if ((int32_t)trm_q[0] >= q_threshold || step == max_steps) {
      memcpy(out->logits, trm_logits, sizeof out->logits);
      out->q = trm_q[0];
      out->pred = TRM_PER_TOKEN ? 0 : argmax(trm_logits, TRM_OUTPUT_LEN);
      out->steps = (uint8_t)step;
      break;
    }
  }
  return 0;
}

/* ---- the docs/build-dir.md API on top (used by the shared RPC server) ---- */
static struct pi_device cluster_dev;
static int cluster_open;
static trm_gap9_stats_t api_stats;

int trm_init(void *arena, uint32_t arena_bytes) {
  if (arena == NULL || arena_bytes < TRM_ARENA_BYTES) return TRM_E_ARENA;
  if (!cluster_open) {
    struct pi_cluster_conf conf;
    pi_cluster_conf_init(&conf);
    pi_open_from_conf(&cluster_dev, &conf);
    if (pi_cluster_open(&cluster_dev)) return TRM_E_INIT;
    cluster_open = 1;
  }
  return 0;
}

int trm_run(const void *input, trm_result_t *out, const trm_run_opts_t *opts) {
  if (!cluster_open) return TRM_E_INIT;
  if (input == NULL || out == NULL || opts == NULL || opts->max_steps < 1 || opts->max_steps > TRM_N_SUP)
    return TRM_E_ARGS;
  trm_gap9_result_t r;
  int rc = trm_gap9_infer(&cluster_dev, input, opts->q_threshold, opts->max_steps, &r, &api_stats);
  if (rc) return TRM_E_KERNEL;
  memcpy(out->logits, r.logits, sizeof out->logits);
  out->q = r.q, out->pred = r.pred, out->steps = r.steps;
  return 0;
}
