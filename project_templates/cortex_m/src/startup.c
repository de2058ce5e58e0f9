/* Start-up: vector table, reset handler (FPU/MVE access first, board register set-up, .data/.bss, stack paint),
 * fault handler that reports over the RPC link. */
#include <string.h>
#include "trm_platform.h"
#include "trm_rpc.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
int main(void);
void trm_reset_c(void);

typedef struct { uint32_t reg, set, clear, mask, value; } trm_reg_op_t;
static const trm_reg_op_t trm_init_ops[TRM_INIT_OP_COUNT + 1] = TRM_INIT_OPS; /* + an unused end marker */

/* Naked so that no compiled code (which gcc may vectorise with MVE or FP registers) runs before CPACR grants
 * access to coprocessors 10/11: otherwise the first FP/MVE instruction is a NOCP UsageFault. */
__attribute__((naked, noreturn)) void trm_reset_handler(void) {
  __asm volatile(
      "ldr r0, =0xE000ED88\n"          /* CPACR */
      "ldr r1, [r0]\n"
      "orr r1, r1, #(0xF << 20)\n"     /* CP10, CP11 full access */
      "str r1, [r0]\n"
      "dsb\n"
      "isb\n"
      "b trm_reset_c\n");
}

static void trm_run_init_ops(void) {
  for (int i = 0; i < TRM_INIT_OP_COUNT; i++) {
    const trm_reg_op_t *op = &trm_init_ops[i];
    if (op->mask) {
      while ((TRM_REG(op->reg) & op->mask) != op->value) {
      }
    } else {
      TRM_REG(op->reg) = (TRM_REG(op->reg) & ~op->clear) | op->set;
    }
  }
}

void trm_reset_c(void) {
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
  __asm volatile("msr msplim, %0" ::"r"(&__stack_bottom)); /* stack overflow faults instead of corrupting data */
#endif
  trm_run_init_ops();
  memcpy(&__data_start, &__data_load, (size_t)((char *)&__data_end - (char *)&__data_start));
  memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
  trm_stack_paint();
  main();
  for (;;) trm_wait_for_interrupt();
}

/* ---- stack painting */
#define TRM_STACK_PAINT 0xC5A5C5A5u

uintptr_t trm_stack_pointer(void) {
  uintptr_t sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

__attribute__((noinline)) void trm_stack_paint(void) {
  uint32_t *p = &__stack_bottom;
  uint32_t *end = (uint32_t *)(trm_stack_pointer() - 64); /* leave this function's own frame alone */
  while (p < end) *p++ = TRM_STACK_PAINT;
}

uint32_t trm_stack_peak_bytes(void) {
  const uint32_t *p = &__stack_bottom;
  while (p < &__stack_top && *p == TRM_STACK_PAINT) p++;
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

/* ---- faults: report once over the link, then stop (on QEMU: exit with code 3 through semihosting) */
void trm_fault_handler(void) {
  trm_irq_disable();
  trm_rpc_send_error(TRM_E_FAULT, 0, 0, TRM_REG(0xE000ED28) /* CFSR */);
#if TRM_BOARD_EMULATED
  static const uint32_t exit_args[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, 3u};
  __asm volatile("mov r1, %0\n mov r0, #0x20\n bkpt 0xab" ::"r"(exit_args) : "r0", "r1", "memory");
#endif
  for (;;) {
  }
}

static void trm_unexpected_irq(void) {
  for (;;) {
  }
}

/* ---- vector table: 16 system exceptions + external interrupts up to the UART's.
 * The range initialiser sets defaults that the named entries below override. */
#pragma GCC diagnostic ignored "-Woverride-init"
typedef void (*trm_vector_t)(void);
__attribute__((section(".vectors"), used)) const trm_vector_t trm_vectors[16 + TRM_UART_IRQ + 1] = {
    [0] = (trm_vector_t)&__stack_top,
    [1] = trm_reset_handler,
    [2 ... 15 + TRM_UART_IRQ] = trm_unexpected_irq,
    [3] = trm_fault_handler,  /* HardFault */
    [4] = trm_fault_handler,  /* MemManage */
    [5] = trm_fault_handler,  /* BusFault */
    [6] = trm_fault_handler,  /* UsageFault */
    [7] = trm_fault_handler,  /* SecureFault (v8-M) */
    [15] = trm_systick_irq,
    [16 + TRM_UART_IRQ] = trm_uart_irq,
};
