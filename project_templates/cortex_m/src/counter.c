/* 64-bit cycle counter. Under QEMU (no DWT) SysTick counts at the machine's SysTick clock and, with -icount,
 * advances exactly with executed instructions; its down-counter is extended by counting wraps. On silicon
 * DWT CYCCNT counts core cycles; its 32-bit value is extended in software, kept fresh by the SysTick interrupt. */
#include "trm_platform.h"

#define SYST_CSR 0xE000E010u /* b0 enable, b1 interrupt, b2 processor clock */
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u

/* SysTick wraps every 2^18 ticks (~10 ms): often enough to wake the RPC loop for its inter-byte timeout. */
#define PERIOD_BITS 18
#define RELOAD ((1u << PERIOD_BITS) - 1u)

#if TRM_COUNTER_SYSTICK
static volatile uint32_t wraps;
static uint64_t last;

void trm_counter_init(void) {
  TRM_REG(SYST_RVR) = RELOAD;
  TRM_REG(SYST_CVR) = 0;
  TRM_REG(SYST_CSR) = 0x7;
}

void trm_systick_irq(void) { wraps++; }

uint64_t trm_counter_now(void) {
  uint32_t w, v;
  do {
    w = wraps;
    v = TRM_REG(SYST_CVR);
  } while (w != wraps);
  uint64_t t = ((uint64_t)w << PERIOD_BITS) + (RELOAD - v);
  if (t < last) t += 1u << PERIOD_BITS; /* the counter reloaded but its interrupt has not run yet */
  last = t;
  return t;
}

#elif TRM_COUNTER_DWT
#define DEMCR 0xE000EDFCu
#define DWT_CTRL 0xE0001000u
#define DWT_CYCCNT 0xE0001004u
#define DWT_LAR 0xE0001FB0u
static uint32_t high, last_low;

void trm_counter_init(void) {
  TRM_REG(DEMCR) |= 1u << 24; /* TRCENA */
  TRM_REG(DWT_LAR) = 0xC5ACCE55u; /* unlock (Cortex-M7) */
  TRM_REG(DWT_CYCCNT) = 0;
  TRM_REG(DWT_CTRL) |= 1u;
  TRM_REG(SYST_RVR) = RELOAD; /* wakes the RPC loop; and a wrap comes well before one of CYCCNT */
  TRM_REG(SYST_CVR) = 0;
  TRM_REG(SYST_CSR) = 0x7;
}

uint64_t trm_counter_now(void) {
  uint32_t primask;
  __asm volatile("mrs %0, primask" : "=r"(primask));
  trm_irq_disable();
  uint32_t low = TRM_REG(DWT_CYCCNT);
  if (low < last_low) high++;
  last_low = low;
  uint64_t t = ((uint64_t)high << 32) | low;
  __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
  return t;
}

void trm_systick_irq(void) { (void)trm_counter_now(); }
#else
#error "trm_config.h selects no cycle counter"
#endif
