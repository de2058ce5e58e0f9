/* GAP9 firmware entry on the fabric controller.
 *
 * Default build: the self-check loop -- every compiled-in input (trm_gap9_inputs.c) is run with fixed compute
 * (q_threshold INT32_MAX, TRM_N_SUP steps) and with learned halting (the artifact's q threshold); one line per run
 *   R <input> <F|H> <steps> <q> <pred> <logits as int16 little-endian hex>
 * then one line per phase "P <phase> <cluster tasks> <cycles>" and "END <status>". The host compares every line
 * with the golden model (trm_tvm/gap9/project.py). With -DTRM_GAP9_RPC the firmware is the framed RPC server shared
 * with the Cortex-M boards (trm_tvm/rpc.py, rpc_server.c), serving trm_run() = trm_gap9_infer().
 */
#include <stdint.h>

#include "pmsis.h"
#include "trm_gap9.h"

#ifndef TRM_GAP9_RPC
extern const TRM_INPUT_CTYPE trm_selfcheck_inputs[TRM_SELFCHECK_N][TRM_INPUT_BYTES];
static struct pi_device uart;

static void put(const char *s) {
  uint32_t n = 0;
  while (s[n]) n++;
  pi_uart_write(&uart, (void *)s, n);
}

static void put_hex(uint32_t v, int digits) {
  char b[9];
  for (int i = 0; i < digits; i++) b[i] = "0123456789abcdef"[(v >> (4 * (digits - 1 - i))) & 15];
  b[digits] = 0;
  put(b);
}

static void put_int(int64_t v) {
  char b[21];
  int i = 20;
  uint64_t u = v < 0 ? (uint64_t)-v : (uint64_t)v;
  b[i] = 0;
  do b[--i] = (char)('0' + u % 10); while (u /= 10);
  if (v < 0) b[--i] = '-';
  put(b + i);
}

static int selfcheck(struct pi_device *cluster) {
  static trm_gap9_stats_t stats;
  for (int i = 0; i < TRM_SELFCHECK_N; i++) {
    for (int mode = 0; mode < 2; mode++) {
      trm_gap9_result_t r;
      int32_t thr = mode == 0 ? INT32_MAX : TRM_Q_THRESHOLD;
      int status = trm_gap9_infer(cluster, trm_selfcheck_inputs[i], thr, TRM_N_SUP, &r, &stats);
      if (status) {
        put("END ");
        put_int(status);
        put("\n");
        return 1;
      }
      put("R "), put_int(i), put(mode == 0 ? " F " : " H "), put_int(r.steps), put(" "), put_int(r.q);
      put(" "), put_int(r.pred), put(" ");
      for (int k = 0; k < TRM_OUTPUT_LEN; k++) put_hex((uint16_t)r.logits[k] & 0xffu, 2), put_hex(((uint16_t)r.logits[k] >> 8) & 0xffu, 2);
      put("\n");
    }
  }
  for (int p = 0; p < TRM_GAP9_N_PHASES; p++) {
    put("P "), put_int(p), put(" "), put_int(stats.calls[p]), put(" "), put_int((int64_t)stats.cycles[p]), put("\n");
  }
  put("END 0\n");
  return 0;
}
#else
int trm_rpc_main(void); /* the shared RPC server (trm_rpc_server_gap9.c); never returns */
#endif

static int app_main(void) {
#ifdef TRM_GAP9_RPC
  return trm_rpc_main(); /* opens the UART itself; trm_init() opens the cluster */
#else
  struct pi_uart_conf uart_conf;
  struct pi_cluster_conf cluster_conf;
  struct pi_device cluster;
  pi_uart_conf_init(&uart_conf);
  uart_conf.baudrate_bps = 115200;
  uart_conf.enable_tx = 1;
  uart_conf.enable_rx = 1;
  pi_open_from_conf(&uart, &uart_conf);
  if (pi_uart_open(&uart)) return 1;
  pi_cluster_conf_init(&cluster_conf);
  pi_open_from_conf(&cluster, &cluster_conf);
  if (pi_cluster_open(&cluster)) return 2;
  int status = selfcheck(&cluster);
  pi_cluster_close(&cluster);
  return status;
#endif
}

int main(void) { return pmsis_kickoff((void *)app_main); }
