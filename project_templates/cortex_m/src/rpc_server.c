/* The RPC server: receives frames (trm_rpc.h, docs/session.md), runs the model or a kernel self-test, replies.
 * Strictly request/response; damaged frames, stalls and stray bytes are answered with ERROR frames. */
#include <string.h>
#include "trm_model.h"
#include "trm_platform.h"
#include "trm_rpc.h"
#include "trm_selftest.h"

#define WORK_BYTES (TRM_ARENA_BYTES > TRM_SELFTEST_BYTES ? TRM_ARENA_BYTES : TRM_SELFTEST_BYTES)
#define TIMEOUT_TICKS ((uint64_t)TRM_COUNTER_HZ / 1000u * TRM_INTER_BYTE_TIMEOUT_MS)

/* The model arena doubles as the self-test work area: the two never run at the same time. */
static uint8_t work[WORK_BYTES] __attribute__((aligned(16)));
static uint8_t input[TRM_INPUT_BYTES] __attribute__((aligned(16)));
static uint32_t input_loaded;
static trm_result_t result;

static struct {
  uint64_t total_ticks, phase_t0[TRM_PHASE_COUNT], phase_ticks[TRM_PHASE_COUNT];
  uint32_t phase_calls[TRM_PHASE_COUNT], peak_stack, model_stack, rx_errors;
} stats;

/* ---- phase hooks called by the model's executor (weak no-ops in trm_model.c); out of line, so that the
 * timing plugin can mark them */
__attribute__((noinline)) void trm_phase_begin(trm_phase_t p) {
  if ((unsigned)p < TRM_PHASE_COUNT) stats.phase_t0[p] = trm_counter_now();
}
__attribute__((noinline)) void trm_phase_end(trm_phase_t p) {
  if ((unsigned)p < TRM_PHASE_COUNT) {
    stats.phase_ticks[p] += trm_counter_now() - stats.phase_t0[p];
    stats.phase_calls[p]++;
  }
}

/* ---- supervision-step log (RUN flag LOG_STEPS): every step's logits, q and cumulative phase ticks, so that a
 * halting study replays every policy from one full-compute run. Called between phase windows, so phase ticks
 * exclude it. Logits are kept only when they fit in 8 KiB (else READ_STEPS answers ABSENT). */
#define STEP_LOG_LOGITS (TRM_N_SUP * TRM_OUTPUT_LEN * 2 <= 8192)
static struct {
  uint8_t on, count;
  int16_t q[TRM_N_SUP];
  uint64_t ticks[TRM_N_SUP][TRM_PHASE_COUNT];
#if STEP_LOG_LOGITS
  int16_t logits[TRM_N_SUP][TRM_OUTPUT_LEN];
#endif
} step_log;
void trm_step_end(int step, const int16_t *logits, int16_t q) {
  if (!step_log.on || step < 1 || step > TRM_N_SUP) return;
  step_log.q[step - 1] = q;
  memcpy(step_log.ticks[step - 1], stats.phase_ticks, sizeof stats.phase_ticks);
#if STEP_LOG_LOGITS
  memcpy(step_log.logits[step - 1], logits, sizeof step_log.logits[0]);
#else
  (void)logits;
#endif
  step_log.count = (uint8_t)step;
}

/* ---- per-layer profile (builds with TRM_PROFILE_LAYERS=1): counter ticks per kernel call site */
#if TRM_PROFILE_LAYERS
#define MAX_LAYERS 256
static struct {
  uint64_t t0, ticks[MAX_LAYERS];
  uint32_t calls[MAX_LAYERS], seen;
} layers;
void trm_layer_begin(int op) { layers.t0 = trm_counter_now(); (void)op; }
void trm_layer_end(int op) {
  if ((unsigned)op >= MAX_LAYERS) return;
  layers.ticks[op] += trm_counter_now() - layers.t0;
  layers.calls[op]++;
  if ((uint32_t)op >= layers.seen) layers.seen = (uint32_t)op + 1;
}
#endif

/* ---- framing */
static uint32_t crc32(const uint8_t *p, uint32_t n) {
  uint32_t c = 0xFFFFFFFFu;
  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v), put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t get16(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | get16(p + 2) << 16; }

static uint8_t tx[TRM_RPC_OVERHEAD + TRM_RPC_MAX_PAYLOAD];
#define TX_PAYLOAD (tx + TRM_RPC_HEADER_BYTES)

static void send_frame(uint8_t type, uint8_t seq, uint32_t len) {
  tx[0] = TRM_RPC_SYNC0, tx[1] = TRM_RPC_SYNC1, tx[2] = type, tx[3] = seq;
  put16(tx + 4, len);
  put32(tx + TRM_RPC_HEADER_BYTES + len, crc32(tx + 2, 4 + len));
  trm_uart_write(tx, TRM_RPC_OVERHEAD + len);
}

void trm_rpc_send_error(uint8_t code, uint8_t seq, uint8_t type, uint32_t detail) {
  TX_PAYLOAD[0] = code, TX_PAYLOAD[1] = type;
  put32(TX_PAYLOAD + 2, detail);
  send_frame(TRM_RPC_ERROR, seq, TRM_RPC_ERROR_BYTES);
  if (code != TRM_E_FAULT) stats.rx_errors++;
}

/* ---- requests; each returns the reply payload length, or a negative error code (detail in *detail) */
static uint32_t detail;
#define FAIL(code, d) return (detail = (uint32_t)(d), -(code))

static int append(uint32_t *at, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  if (*at + n > TRM_RPC_MAX_PAYLOAD) return 0;
  memcpy(TX_PAYLOAD + *at, s, n);
  *at += n;
  return 1;
}
static void append_uint(uint32_t *at, const char *key, uint32_t v, int hex) {
  char num[11], *p = num + sizeof num;
  *--p = 0;
  do *--p = "0123456789abcdef"[hex ? v % 16 : v % 10]; while ((v /= hex ? 16 : 10));
  append(at, key), append(at, hex ? "0x" : ""), append(at, p), append(at, "\n");
}

extern uint32_t __code_end, __data_start, __bss_end;
static int do_info(void) {
  uint32_t n = 0;
  append(&n, TRM_INFO_TEXT); /* board, build id, artifact hash, link regions, io sizes, phases (generated) */
  append_uint(&n, "protocol=", TRM_RPC_VERSION, 0);
  append_uint(&n, "image_code_bytes=", (uint32_t)((uintptr_t)&__code_end - TRM_CODE_ORIGIN), 0);
  append_uint(&n, "image_data_bytes=", (uint32_t)((uintptr_t)&__bss_end - TRM_DATA_ORIGIN), 0);
  append_uint(&n, "work_bytes=", WORK_BYTES, 0);
  return (int)n;
}

static int do_load_input(const uint8_t *p, uint32_t len) {
  if (len < TRM_RPC_LOAD_INPUT_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t off = get32(p), n = len - 4;
  if (off > TRM_INPUT_BYTES || n > TRM_INPUT_BYTES - off) FAIL(TRM_E_RANGE, off + n);
  memcpy(input + off, p + 4, n);
  if (off == 0) input_loaded = n; /* a new input starts */
  else if (off <= input_loaded && off + n > input_loaded) input_loaded = off + n;
  put32(TX_PAYLOAD, input_loaded);
  return 4;
}

static int do_run(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_RUN_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  if (input_loaded < TRM_INPUT_BYTES) FAIL(TRM_E_NO_INPUT, input_loaded);
  trm_run_opts_t opts = {(int32_t)get32(p), p[4]};
  if (opts.max_steps == 0 || opts.max_steps > TRM_N_SUP) FAIL(TRM_E_RANGE, opts.max_steps);
  int rc = trm_init(work, sizeof work);
  if (rc < 0) FAIL(TRM_E_MODEL, rc);
#if TRM_PROFILE_LAYERS
  memset(&layers, 0, sizeof layers);
#endif
  memset(&stats.phase_ticks, 0, sizeof stats.phase_ticks);
  memset(&stats.phase_calls, 0, sizeof stats.phase_calls);
  step_log.on = (p[5] & TRM_RPC_RUN_FLAG_LOG_STEPS) != 0, step_log.count = 0;
  if (p[5] & TRM_RPC_RUN_FLAG_PAINT_STACK) trm_stack_paint();
  uintptr_t sp = trm_stack_pointer();
  trm_trigger_set();
  uint64_t t0 = trm_counter_now();
  rc = trm_run(input, &result, &opts);
  stats.total_ticks = trm_counter_now() - t0;
  trm_trigger_clear();
  stats.peak_stack = trm_stack_peak_bytes();
  uint32_t above = (uint32_t)((uintptr_t)&__stack_top - sp);
  stats.model_stack = stats.peak_stack > above ? stats.peak_stack - above : 0;
  if (rc < 0) FAIL(TRM_E_MODEL, rc);
  put32(TX_PAYLOAD, (uint32_t)rc);
  TX_PAYLOAD[4] = result.steps, TX_PAYLOAD[5] = 0;
  put16(TX_PAYLOAD + 6, result.pred);
  put16(TX_PAYLOAD + 8, (uint16_t)result.q);
  put64(TX_PAYLOAD + 10, stats.total_ticks);
  return TRM_RPC_RUN_REPLY_BYTES;
}

static int do_read_output(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_READ_OUTPUT_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t off = get16(p), count = get16(p + 2);
  if (off + count > TRM_OUTPUT_LEN || count * 2 > TRM_RPC_MAX_PAYLOAD) FAIL(TRM_E_RANGE, off + count);
  for (uint32_t i = 0; i < count; i++) put16(TX_PAYLOAD + 2 * i, (uint16_t)result.logits[off + i]);
  return (int)(2 * count);
}

static int do_read_stats(uint32_t len) {
  if (len) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint8_t *o = TX_PAYLOAD;
  o[0] = TRM_COUNTER_KIND, o[1] = TRM_PHASE_COUNT, o[2] = result.steps, o[3] = 0;
  put32(o + 4, stats.peak_stack);
  put32(o + 8, stats.model_stack);
  put32(o + 12, (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_bottom));
  put32(o + 16, stats.rx_errors);
  put64(o + 20, stats.total_ticks);
  for (int i = 0; i < TRM_PHASE_COUNT; i++) {
    put32(o + 28 + 12 * i, stats.phase_calls[i]);
    put64(o + 32 + 12 * i, stats.phase_ticks[i]);
  }
  return TRM_RPC_READ_STATS_REPLY_BYTES + 12 * TRM_PHASE_COUNT;
}

static int do_read_steps(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_READ_STEPS_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t step = p[0], off = get16(p + 1), count = get16(p + 3);
  uint32_t head = TRM_RPC_READ_STEPS_REPLY_BYTES + 8 * TRM_PHASE_COUNT;
  if (!STEP_LOG_LOGITS && count) FAIL(TRM_E_ABSENT, TRM_OUTPUT_LEN);
  if (step >= step_log.count) FAIL(TRM_E_RANGE, step);
  if (off + count > TRM_OUTPUT_LEN || head + 2 * count > TRM_RPC_MAX_PAYLOAD) FAIL(TRM_E_RANGE, off + count);
  uint8_t *o = TX_PAYLOAD;
  o[0] = step_log.count, o[1] = TRM_PHASE_COUNT;
  put16(o + 2, (uint16_t)step_log.q[step]);
  for (int i = 0; i < TRM_PHASE_COUNT; i++) put64(o + 4 + 8 * i, step_log.ticks[step][i]);
#if STEP_LOG_LOGITS
  for (uint32_t i = 0; i < count; i++) put16(o + head + 2 * i, (uint16_t)step_log.logits[step][off + i]);
#endif
  return (int)(head + 2 * count);
}

static void get_params(const uint8_t *p, int32_t *params) {
  for (int i = 0; i < TRM_ST_PARAMS; i++) params[i] = (int32_t)get32(p + 4 * i);
}

static int selftest_error(int rc, uint32_t kernel) {
  if (rc == TRM_ST_ABSENT) FAIL(TRM_E_ABSENT, kernel);
  FAIL(TRM_E_RANGE, kernel);
}

static int do_self_test(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_SELF_TEST_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t kernel = get16(p), batches = get16(p + 2), seed = get32(p + 4);
  int32_t params[TRM_ST_PARAMS];
  get_params(p + 8, params);
  if (kernel >= trm_selftest_count) FAIL(TRM_E_RANGE, kernel);
  if (batches > (TRM_RPC_MAX_PAYLOAD - 4) / 12) FAIL(TRM_E_RANGE, batches);
  put16(TX_PAYLOAD, kernel);
  put16(TX_PAYLOAD + 2, batches);
  for (uint32_t b = 0; b < batches; b++) {
    trm_st_result_t res;
    int rc = trm_st_run(kernel, trm_prng_batch_seed(seed, b), params, work, sizeof work, &res);
    if (rc) return selftest_error(rc, kernel);
    put32(TX_PAYLOAD + 4 + 12 * b, crc32(res.out, res.out_bytes));
    put64(TX_PAYLOAD + 8 + 12 * b, res.ticks);
  }
  return (int)(4 + 12 * batches);
}

static int do_self_test_data(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_SELF_TEST_DATA_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t kernel = get16(p), batch = get16(p + 2), seed = get32(p + 4);
  int32_t params[TRM_ST_PARAMS];
  get_params(p + 8, params);
  uint32_t off = get32(p + 32), count = get16(p + 36);
  if (kernel >= trm_selftest_count) FAIL(TRM_E_RANGE, kernel);
  trm_st_result_t res;
  int rc = trm_st_run(kernel, trm_prng_batch_seed(seed, batch), params, work, sizeof work, &res);
  if (rc) return selftest_error(rc, kernel);
  if (off > res.out_bytes || count > res.out_bytes - off || count > TRM_RPC_MAX_PAYLOAD) FAIL(TRM_E_RANGE, off + count);
  memcpy(TX_PAYLOAD, res.out + off, count);
  return (int)count;
}

static int do_kernels(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_KERNELS_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t n = 2;
  put16(TX_PAYLOAD, trm_selftest_count);
  for (uint32_t i = get16(p); i < trm_selftest_count; i++) {
    uint32_t before = n;
    char idx[11], *q = idx + sizeof idx;
    uint32_t v = i;
    *--q = 0;
    do *--q = (char)('0' + v % 10); while ((v /= 10));
    trm_st_result_t res;
    int present = trm_st_run(i, 0, (const int32_t[TRM_ST_PARAMS]){0}, work, 0, &res) != TRM_ST_ABSENT;
    if (!(append(&n, q) && append(&n, " ") && append(&n, trm_selftests[i].name) &&
          append(&n, present ? " 1\n" : " 0\n"))) {
      n = before;
      break;
    }
  }
  return (int)n;
}

static int do_read_layers(const uint8_t *p, uint32_t len) {
  if (len != TRM_RPC_READ_LAYERS_REQ_BYTES) FAIL(TRM_E_BAD_PAYLOAD, len);
  uint32_t first = get16(p), n = 0;
#if TRM_PROFILE_LAYERS
  uint32_t seen = layers.seen;
  for (uint32_t i = first; i < seen && n < (TRM_RPC_MAX_PAYLOAD - 4) / 12; i++, n++) {
    put32(TX_PAYLOAD + 4 + 12 * n, layers.calls[i]);
    put64(TX_PAYLOAD + 8 + 12 * n, layers.ticks[i]);
  }
#else
  uint32_t seen = 0;
  (void)first;
#endif
  put16(TX_PAYLOAD, seen);
  put16(TX_PAYLOAD + 2, n);
  return (int)(4 + 12 * n);
}

static void dispatch(uint8_t type, uint8_t seq, const uint8_t *p, uint32_t len) {
  int n;
  switch (type) {
    case TRM_RPC_PING: memcpy(TX_PAYLOAD, p, len), n = (int)len; break;
    case TRM_RPC_INFO: n = len ? (detail = len, -TRM_E_BAD_PAYLOAD) : do_info(); break;
    case TRM_RPC_LOAD_INPUT: n = do_load_input(p, len); break;
    case TRM_RPC_RUN: n = do_run(p, len); break;
    case TRM_RPC_READ_OUTPUT: n = do_read_output(p, len); break;
    case TRM_RPC_READ_STATS: n = do_read_stats(len); break;
    case TRM_RPC_SELF_TEST: n = do_self_test(p, len); break;
    case TRM_RPC_SELF_TEST_DATA: n = do_self_test_data(p, len); break;
    case TRM_RPC_KERNELS: n = do_kernels(p, len); break;
    case TRM_RPC_READ_LAYERS: n = do_read_layers(p, len); break;
    case TRM_RPC_READ_STEPS: n = do_read_steps(p, len); break;
    default: n = -TRM_E_UNKNOWN_TYPE, detail = type;
  }
  if (n < 0)
    trm_rpc_send_error((uint8_t)-n, seq, type, detail);
  else
    send_frame((uint8_t)(type | TRM_RPC_REPLY), seq, (uint32_t)n);
}

/* ---- receive state machine: hunt for sync, header, payload + CRC; inter-byte timeout; stray-byte report */
static uint8_t rx[TRM_RPC_OVERHEAD + TRM_RPC_MAX_PAYLOAD];
static uint32_t rx_len, rx_need, garbage;
static uint64_t last_byte;

static void receive(uint8_t b) {
  if (rx_len == 0) {
    if (b == TRM_RPC_SYNC0) rx[rx_len++] = b;
    else garbage++;
    return;
  }
  if (rx_len == 1) {
    if (b == TRM_RPC_SYNC1) {
      rx[rx_len++] = b;
    } else {
      garbage++;                                   /* the lone SYNC0 */
      if (b != TRM_RPC_SYNC0) garbage++, rx_len = 0;
    }
    return;
  }
  rx[rx_len++] = b;
  if (rx_len == TRM_RPC_HEADER_BYTES) {
    uint32_t len = get16(rx + 4);
    if (len > TRM_RPC_MAX_PAYLOAD) {
      trm_rpc_send_error(TRM_E_BAD_LENGTH, rx[3], rx[2], len);
      rx_len = 0;
      return;
    }
    rx_need = TRM_RPC_OVERHEAD + len;
  }
  if (rx_len >= TRM_RPC_HEADER_BYTES && rx_len == rx_need) {
    uint32_t len = rx_need - TRM_RPC_OVERHEAD, got = get32(rx + TRM_RPC_HEADER_BYTES + len);
    rx_len = 0;
    if (got != crc32(rx + 2, 4 + len)) trm_rpc_send_error(TRM_E_BAD_CRC, rx[3], rx[2], got);
    else dispatch(rx[2], rx[3], rx + TRM_RPC_HEADER_BYTES, len);
  }
}

/* Drain the receive ring; 1 if any byte arrived. */
static int service_link(void) {
  uint32_t lost = trm_uart_lost();
  if (lost) trm_rpc_send_error(TRM_E_OVERFLOW, 0, 0, lost);
  int c, got = 0;
  while ((c = trm_uart_getc()) >= 0) receive((uint8_t)c), got = 1;
  if (got) last_byte = trm_counter_now();
  return got;
}

static void check_timeout(void) {
  if (trm_counter_now() - last_byte <= TIMEOUT_TICKS) return;
  if (rx_len) trm_rpc_send_error(TRM_E_TIMEOUT, rx_len > 3 ? rx[3] : 0, rx_len > 2 ? rx[2] : 0, rx_len);
  else trm_rpc_send_error(TRM_E_GARBAGE, 0, 0, garbage);
  rx_len = garbage = 0;
}

/* Waiting is spinning first (requests follow replies closely, and waking from WFI is slow under QEMU), then WFI:
 * the RX interrupt or the periodic SysTick wrap wakes the core. Under QEMU -icount the virtual clock follows real
 * time only while the core sleeps -- a spinning core races it ahead -- so the inter-byte timeout is checked
 * after a short spin, and mostly spans sleep: it then means roughly real milliseconds on both QEMU and silicon. */
#define FRAME_SPINS 20000u   /* mid-frame: the next byte is normally already on its way */
#define IDLE_SPINS 200000u   /* between requests */

int main(void) {
  trm_counter_init();
  trm_uart_init();
  trm_trigger_clear();
  trm_irq_enable();
  uint32_t idle = 0;
  for (;;) {
    if (service_link()) {
      idle = 0;
      continue;
    }
    int waiting = rx_len || garbage;
    if (++idle < (waiting ? FRAME_SPINS : IDLE_SPINS)) continue;
    if (waiting) check_timeout();
    trm_irq_disable();
    if (!trm_uart_pending()) trm_wait_for_interrupt();
    trm_irq_enable();
  }
}
