/* GAP9 board layer for the shared RPC server: UART, a 64-bit FC cycle counter, stack painting.
 * SDK build: PMSIS UART (a blocking read: frames that stop half-way are not reported by timeout) and the FC
 * performance counter. Functional QEMU build (TRM_GAP9_COMPAT): the virt machine's ns16550a polled without
 * blocking, and mcycle. */
#include <stddef.h>

#include "pmsis.h"
#include "trm_platform.h"

static struct pi_device uart;

void trm_uart_init(void) {
  struct pi_uart_conf conf;
  pi_uart_conf_init(&conf);
  conf.baudrate_bps = TRM_UART_BAUD;
  conf.enable_rx = 1;
  conf.enable_tx = 1;
  pi_open_from_conf(&uart, &conf);
  pi_uart_open(&uart);
}

void trm_uart_write(const uint8_t *data, uint32_t len) { pi_uart_write(&uart, (void *)data, len); }
uint32_t trm_uart_lost(void) { return 0; } /* no receive ring: nothing is dropped */

#ifdef TRM_GAP9_COMPAT
#define NS16550_RBR ((volatile uint8_t *)0x10000000)
#define NS16550_LSR ((volatile uint8_t *)0x10000005)
int trm_uart_pending(void) { return *NS16550_LSR & 1; }
int trm_uart_getc(void) { return trm_uart_pending() ? *NS16550_RBR : -1; }

void trm_counter_init(void) {}
uint64_t trm_counter_now(void) {
  uint32_t hi, lo, hi2;
  do {
    __asm__ volatile("csrr %0, mcycleh" : "=r"(hi));
    __asm__ volatile("csrr %0, mcycle" : "=r"(lo));
    __asm__ volatile("csrr %0, mcycleh" : "=r"(hi2));
  } while (hi != hi2);
  return ((uint64_t)hi << 32) | lo;
}
#else
int trm_uart_pending(void) { return 1; }
int trm_uart_getc(void) {
  uint8_t b;
  pi_uart_read(&uart, &b, 1);
  return b;
}

static uint32_t last;
static uint64_t high;
void trm_counter_init(void) {
  pi_perf_conf(1u << PI_PERF_CYCLES);
  pi_perf_reset();
  pi_perf_start();
}
uint64_t trm_counter_now(void) { /* 32-bit counter extended: call at least once per wrap (11 s at 370 MHz) */
  uint32_t now = pi_perf_read(PI_PERF_CYCLES);
  if (now < last) high += 1ull << 32;
  last = now;
  return high | now;
}
#endif

/* ---- stack painting over the FC stack [__stack_bottom, __stack_top) ---- */
#define PAINT 0x5AC3A55Au
#ifndef TRM_GAP9_COMPAT
/* The SDK's linker script has none of these symbols: INFO's image sizes and the stack figures read 0 there. */
uint32_t __stack_bottom, __stack_top, __code_end, __data_start, __bss_end;
void trm_stack_paint(void) {}
uint32_t trm_stack_peak_bytes(void) { return 0; }
uintptr_t trm_stack_pointer(void) { return (uintptr_t)&__stack_top; }
#else

uintptr_t trm_stack_pointer(void) {
  uintptr_t sp;
  __asm__ volatile("mv %0, sp" : "=r"(sp));
  return sp;
}

void trm_stack_paint(void) {
  for (volatile uint32_t *p = &__stack_bottom; (uintptr_t)p < trm_stack_pointer() - 64; p++) *p = PAINT;
}

uint32_t trm_stack_peak_bytes(void) {
  const uint32_t *p = &__stack_bottom;
  while (p < &__stack_top && *p == PAINT) p++;
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}
#endif
