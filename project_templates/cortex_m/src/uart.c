/* UART: receive interrupt fills a ring buffer (the RPC loop drains it), transmit is polled.
 * Drivers: CMSDK APB UART (Arm MPS2/MPS3 boards and QEMU) and STM32 LPUART. */
#include "trm_platform.h"

#define TRM_RING_BYTES 2048u /* > one maximal frame: the host never sends more before a reply */
static volatile uint8_t ring[TRM_RING_BYTES];
static volatile uint32_t ring_head, ring_tail, ring_lost;
static int uart_ready;

#if TRM_UART_CMSDK
#define UART_DATA (TRM_UART_BASE + 0x00)
#define UART_STATE (TRM_UART_BASE + 0x04) /* b0 TX full, b1 RX full */
#define UART_CTRL (TRM_UART_BASE + 0x08)  /* b0 TX enable, b1 RX enable, b3 RX interrupt enable */
#define UART_INTCLEAR (TRM_UART_BASE + 0x0C)
#define UART_BAUDDIV (TRM_UART_BASE + 0x10)
static void hw_init(void) {
  uint32_t div = TRM_UART_CLOCK_HZ / TRM_UART_BAUD;
  TRM_REG(UART_BAUDDIV) = div < 16 ? 16 : div;
  TRM_REG(UART_CTRL) = 0x1 | 0x2 | 0x8;
}
static int hw_rx_ready(void) { return TRM_REG(UART_STATE) & 0x2; }
static uint8_t hw_rx(void) { return (uint8_t)TRM_REG(UART_DATA); }
static void hw_rx_irq_clear(void) { TRM_REG(UART_INTCLEAR) = 0x2; }
static void hw_tx(uint8_t b) {
  while (TRM_REG(UART_STATE) & 0x1) {
  }
  TRM_REG(UART_DATA) = b;
}
#elif TRM_UART_STM32_LPUART
#define UART_CR1 (TRM_UART_BASE + 0x00) /* b0 UE, b2 RE, b3 TE, b5 RXNEIE */
#define UART_BRR (TRM_UART_BASE + 0x0C)
#define UART_ISR (TRM_UART_BASE + 0x1C) /* b3 ORE, b5 RXNE, b7 TXE */
#define UART_ICR (TRM_UART_BASE + 0x20)
#define UART_RDR (TRM_UART_BASE + 0x24)
#define UART_TDR (TRM_UART_BASE + 0x28)
static void hw_init(void) {
  TRM_REG(UART_BRR) = (uint32_t)((256ull * TRM_UART_CLOCK_HZ + TRM_UART_BAUD / 2) / TRM_UART_BAUD);
  TRM_REG(UART_CR1) = 0x1 | 0x4 | 0x8 | 0x20;
}
static int hw_rx_ready(void) { return TRM_REG(UART_ISR) & 0x20; }
static uint8_t hw_rx(void) { return (uint8_t)TRM_REG(UART_RDR); }
static void hw_rx_irq_clear(void) {
  if (TRM_REG(UART_ISR) & 0x8) {
    TRM_REG(UART_ICR) = 0x8; /* overrun: a byte was lost in hardware */
    ring_lost++;
  }
}
static void hw_tx(uint8_t b) {
  while (!(TRM_REG(UART_ISR) & 0x80)) {
  }
  TRM_REG(UART_TDR) = b;
}
#else
#error "trm_config.h selects no UART driver"
#endif

void trm_uart_init(void) {
  hw_init();
  TRM_REG(0xE000E100 + 4 * (TRM_UART_IRQ / 32)) = 1u << (TRM_UART_IRQ % 32); /* NVIC ISER */
  uart_ready = 1;
}

/* Clear first, then drain: a byte that arrives after the drain raises the interrupt again. */
void trm_uart_irq(void) {
  hw_rx_irq_clear();
  while (hw_rx_ready()) {
    uint8_t b = hw_rx();
    uint32_t next = (ring_head + 1) % TRM_RING_BYTES;
    if (next == ring_tail) {
      ring_lost++;
    } else {
      ring[ring_head] = b;
      ring_head = next;
    }
  }
}

int trm_uart_getc(void) {
  if (ring_tail == ring_head) return -1;
  uint8_t b = ring[ring_tail];
  ring_tail = (ring_tail + 1) % TRM_RING_BYTES;
  return b;
}

int trm_uart_pending(void) { return ring_tail != ring_head || ring_lost; }

uint32_t trm_uart_lost(void) {
  trm_irq_disable();
  uint32_t n = ring_lost;
  ring_lost = 0;
  trm_irq_enable();
  return n;
}

void trm_uart_write(const uint8_t *data, uint32_t len) {
  if (!uart_ready) return;
  for (uint32_t i = 0; i < len; i++) hw_tx(data[i]);
}
