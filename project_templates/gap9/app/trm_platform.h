/* The firmware board layer of the shared RPC server (project_templates/cortex_m/src/rpc_server.c), for GAP9.
 * Same functions as the Cortex-M trm_platform.h; implemented in trm_platform_gap9.c with PMSIS calls (and, in the
 * functional QEMU build, the virt machine's UART and mcycle). Board facts: the generated trm_config.h. */
#ifndef TRM_PLATFORM_H
#define TRM_PLATFORM_H
#include <stdint.h>
#include "trm_config.h"

void trm_uart_init(void);
int trm_uart_getc(void);          /* next received byte, or -1 when none (the SDK build blocks: see docs/gap9.md) */
void trm_uart_write(const uint8_t *data, uint32_t len);
uint32_t trm_uart_lost(void);
int trm_uart_pending(void);

void trm_counter_init(void);
uint64_t trm_counter_now(void);   /* FC cycles, extended to 64 bits */

/* No trigger GPIO is defined for GAP9 yet: the power-analyser gate is a no-op. */
static inline void trm_trigger_set(void) {}
static inline void trm_trigger_clear(void) {}

void trm_stack_paint(void);
uint32_t trm_stack_peak_bytes(void);
uintptr_t trm_stack_pointer(void);
extern uint32_t __stack_bottom, __stack_top;

void trm_rpc_send_error(uint8_t code, uint8_t seq, uint8_t type, uint32_t detail);

/* The receive path is polled on GAP9: nothing to mask, nothing to wait for. */
static inline void trm_irq_disable(void) {}
static inline void trm_irq_enable(void) {}
static inline void trm_wait_for_interrupt(void) {}
#endif
