/* Kernel self-test table of the GAP9 firmware: empty for now (the RPC KERNELS request lists none). */
#include "trm_selftest.h"

static int absent(trm_st_ctx_t *ctx, const int32_t *params, trm_st_result_t *res) {
  (void)ctx, (void)params, (void)res;
  return TRM_ST_ABSENT;
}
const trm_st_entry_t trm_selftests[] = {{"none", absent}};
const uint32_t trm_selftest_count = 0;
