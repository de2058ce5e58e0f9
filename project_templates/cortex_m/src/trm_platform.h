/* The firmware's board layer: start-up, UART, cycle counter, trigger GPIO, stack painting.
 * Board facts come from the generated trm_config.h (trm_tvm/project/generate.py, from boards/<board>.yaml). */
#ifndef TRM_PLATFORM_H
#define TRM_PLATFORM_H
#include <stdint.h>
#include "trm_config.h"

#define TRM_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* UART: interrupt-driven receive into a ring buffer, polled transmit. */
void trm_uart_init(void);
int trm_uart_getc(void);                      /* next received byte, or -1 when the ring is empty */
void trm_uart_write(const uint8_t *data, uint32_t len);
uint32_t trm_uart_lost(void);                 /* bytes dropped because the ring was full, then reset to 0 */
int trm_uart_pending(void);                   /* received bytes or a loss not yet handled */
void trm_uart_irq(void);

/* Cycle counter: 64-bit ticks at TRM_COUNTER_HZ (SysTick under QEMU -icount with wrap counting, DWT CYCCNT on silicon). */
void trm_counter_init(void);
uint64_t trm_counter_now(void);
void trm_systick_irq(void);

/* Trigger GPIO for a power analyser: high while RUN executes. */
static inline void trm_trigger_set(void) { TRM_REG(TRM_TRIGGER_SET_REG) = TRM_TRIGGER_SET_VALUE; }
static inline void trm_trigger_clear(void) { TRM_REG(TRM_TRIGGER_CLEAR_REG) = TRM_TRIGGER_CLEAR_VALUE; }

/* Stack painting: fill the unused stack with a pattern, later find the deepest overwritten word. */
void trm_stack_paint(void);
uint32_t trm_stack_peak_bytes(void);          /* from the stack top down to the deepest word written */
uintptr_t trm_stack_pointer(void);
extern uint32_t __stack_bottom, __stack_top;

/* Send an ERROR frame (also used by the fault handler). */
void trm_rpc_send_error(uint8_t code, uint8_t seq, uint8_t type, uint32_t detail);

static inline void trm_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void trm_irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void trm_wait_for_interrupt(void) { __asm volatile("wfi"); }
#endif
