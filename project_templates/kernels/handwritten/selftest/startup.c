/* Bare-metal start-up for the kernel self-test firmware on QEMU Cortex-M boards: vector table, .data/.bss,
 * FPU/MVE access, semihosting output and exit, SysTick read-out. Temporary: the project's cortex_m template and
 * its RPC SELF_TEST mode replace this firmware once they land (docs/kernels.md). */
#include <stddef.h>
#include <stdint.h>

int main(void);
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;

static uint32_t semihost(uint32_t op, const void *arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void trm_puts(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }

__attribute__((noreturn)) void trm_exit(int code) {
  uint32_t block[2] = {0x20026, (uint32_t)code}; /* ADP_Stopped_ApplicationExit, exit code */
  semihost(0x20, block);                         /* SYS_EXIT_EXTENDED */
  for (;;) {
  }
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)

void trm_systick_start(void) {
  SYST_RVR = 0xFFFFFF;
  SYST_CVR = 0;
  SYST_CSR = 5; /* core clock, enabled, no interrupt */
}
/* down-counter: the caller subtracts two reads modulo 2^24 */
uint32_t trm_systick(void) { return SYST_CVR; }

__attribute__((noreturn, optimize("no-tree-vectorize"))) void reset(void) {
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: FPU and MVE on before any (vectorised) code */
  __asm__ volatile("dsb\n isb");
  for (uint32_t *s = &__data_load, *d = &__data_start; d < &__data_end;) *d++ = *s++;
  for (uint32_t *d = &__bss_start; d < &__bss_end;) *d++ = 0;
  trm_exit(main());
}

static void fault(void) {
  trm_puts("fault\n");
  trm_exit(99);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top, (void *)reset, (void *)fault, (void *)fault, (void *)fault, (void *)fault, (void *)fault};

/* freestanding: the few libc functions the compiler may call */
void *memcpy(void *d, const void *s, size_t n) {
  uint8_t *dp = d;
  const uint8_t *sp = s;
  while (n--) *dp++ = *sp++;
  return d;
}
void *memset(void *d, int c, size_t n) {
  uint8_t *dp = d;
  while (n--) *dp++ = (uint8_t)c;
  return d;
}
