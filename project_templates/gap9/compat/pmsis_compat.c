/* A small implementation of the PMSIS calls of ../pmsis/pmsis.h for qemu-system-riscv32 -M virt -smp 9.
 *
 * It runs the same C as the GAP SDK project, to prove tiling, the per-core split and bit-exactness; it says
 * nothing about GAP9 speed. Hart 0 is the fabric controller (runs main), harts 1..8 are cluster cores 0..7.
 * Cores are real harts: barriers and locks use RV32A atomics; idle harts sleep in WFI and are woken through the
 * CLINT software interrupt (no trap is taken: mstatus.MIE stays 0).
 *
 * Checks (TRM_COMPAT_CHECKS >= 1), each ending the run with one "TRM-COMPAT-ERROR ..." line and exit code 3:
 * - DMA: a transfer is a copy performed at pi_cl_dma_wait; at issue its L1 destination is poisoned, and it must
 *   not overlap L1 that any core read or wrote in the current phase, nor another in-flight transfer; a core that
 *   declares a read/write of L1 under an in-flight transfer is caught; a task ending with a transfer never waited.
 * - per-core write-sets (shadow map of L1, one owner per byte per phase): two cores writing one byte, a core
 *   reading what another writes in the same phase, a store outside the core's declared write-set or outside L1.
 * - TRM_COMPAT_CHECKS >= 2 also poisons all unallocated L1 at every barrier; freed L1 is always poisoned.
 * TRM_COMPAT_SEQUENTIAL=1: a fork runs its cores one after another on the cluster master hart, as cooperative
 * contexts that switch at barriers, in a shuffled order (seed TRM_COMPAT_SEED) that changes every phase.
 */
#include <stdint.h>
#include <string.h>

#include "pmsis.h"

#ifndef TRM_COMPAT_CHECKS
#define TRM_COMPAT_CHECKS 1
#endif
#ifndef TRM_COMPAT_SEQUENTIAL
#define TRM_COMPAT_SEQUENTIAL 0
#endif
#ifndef TRM_COMPAT_SEED
#define TRM_COMPAT_SEED 1
#endif

#define NB_CORES 8
#define FC_HART 0
#define UART0 ((volatile uint8_t *)0x10000000)
#define TEST_DEV ((volatile uint32_t *)0x100000)
#define CLINT_MSIP ((volatile uint32_t *)0x2000000)
#define POISON 0xA5
#define MAX_DMA 64
#define MAX_BLOCKS 64

extern uint8_t __bss_start[], __bss_end[], __l1_start[], __l1_end[], __l2heap_start[], __l2heap_end[];
int main(void);
void compat_ctx_switch(uint32_t *save, uint32_t *load);

static inline int hart_id(void) {
  int h;
  __asm__ volatile("csrr %0, mhartid" : "=r"(h));
  return h;
}

/* ------------------------------------------------------------------ locks, sleeping and waking harts */
static void wake(int hart) { CLINT_MSIP[hart] = 1; }

/* A lock whose waiters sleep in WFI and are woken by the unlocker: single-threaded TCG runs the harts round-robin,
 * so a spinning waiter would burn its whole time slice while the holder is descheduled. */
typedef struct {
  volatile int held, waiters; /* waiters: mask of harts asleep on this lock */
} lock_t;
static void lock(lock_t *l) {
  int me = hart_id();
  while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE)) {
    __atomic_fetch_or(&l->waiters, 1 << me, __ATOMIC_ACQ_REL);
    CLINT_MSIP[me] = 0;
    if (__atomic_load_n(&l->held, __ATOMIC_ACQUIRE)) __asm__ volatile("wfi");
    __atomic_fetch_and(&l->waiters, ~(1 << me), __ATOMIC_ACQ_REL);
  }
}
static void unlock(lock_t *l) {
  __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the store above must be visible before the waiters are read */
  int w = __atomic_load_n(&l->waiters, __ATOMIC_ACQUIRE);
  for (int h = 0; w; h++, w >>= 1)
    if (w & 1) wake(h);
}
static lock_t uart_lock;

static void uart_putc(char c) {
  while (!(UART0[5] & 0x20)) {
  }
  UART0[0] = (uint8_t)c;
}
static void uart_puts(const char *s) {
  while (*s) uart_putc(*s++);
}
static void uart_hex(uint32_t v) {
  for (int i = 28; i >= 0; i -= 4) uart_putc("0123456789abcdef"[(v >> i) & 15]);
}

void pmsis_exit(int err) {
  *TEST_DEV = err == 0 ? 0x5555u : (((uint32_t)err & 0xffffu) << 16) | 0x3333u;
  for (;;) {
  }
}

/* One line, then exit 3. Messages are fixed strings plus up to two hex values. */
static void fail(const char *what, uint32_t a, uint32_t b) {
  lock(&uart_lock);
  uart_puts("\nTRM-COMPAT-ERROR ");
  uart_puts(what);
  uart_puts(" 0x");
  uart_hex(a);
  uart_puts(" 0x");
  uart_hex(b);
  uart_putc('\n');
  pmsis_exit(3);
}

void compat_trap_report(uint32_t mcause, uint32_t mepc, uint32_t mtval) {
  (void)mtval;
  fail("trap (mcause, mepc)", mcause, mepc);
}

/* ------------------------------------------------------------------ waiting for a value to change */
/* Sleep until *p != old. The msip bit is cleared before the test, so a wake between test and WFI is not lost. */
static int wait_change(volatile int *p, int old) {
  for (;;) {
    CLINT_MSIP[hart_id()] = 0;
    int v = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    if (v != old) return v;
    __asm__ volatile("wfi");
  }
}

/* ------------------------------------------------------------------ team state */
static struct {
  void (*entry)(void *);
  void *arg;
  int nb;
} team;
static volatile int team_gen, team_done, bar_count, bar_gen;
static volatile int task_gen, task_done;
static struct pi_cluster_task *volatile task_cur;
static lock_t check_lock __attribute__((unused));
static uint32_t phase = 1; /* phases are delimited by fork start, barriers and fork end */

#if TRM_COMPAT_SEQUENTIAL
enum { READY, AT_BARRIER, FINISHED };
static uint32_t ctx_sched[14], ctx_core[NB_CORES][14];
static int seq_state[NB_CORES], seq_current, seq_in_fork;
static uint8_t seq_stacks[NB_CORES][8192] __attribute__((aligned(16)));
static uint32_t rng = TRM_COMPAT_SEED;
static uint32_t next_rand(void) {
  rng = rng * 1664525u + 1013904223u;
  return rng >> 8;
}
#endif

uint32_t pi_core_id(void) {
#if TRM_COMPAT_SEQUENTIAL
  if (hart_id() == 1) return (uint32_t)seq_current;
#endif
  int h = hart_id();
  return h == FC_HART ? 0 : (uint32_t)(h - 1);
}
uint32_t pi_cluster_id(void) { return hart_id() == FC_HART ? 31u : 0u; }
int pi_is_fc(void) { return hart_id() == FC_HART; }
int pi_cl_team_nb_cores(void) { return team.nb; }
int pi_cl_cluster_nb_cores(void) { return NB_CORES; }

/* ------------------------------------------------------------------ L1 shadow: per-byte owners per phase */
#if TRM_COMPAT_CHECKS
static uint32_t wshadow[COMPAT_L1_BYTES]; /* (phase << 8) | writer core id */
static uint32_t rshadow[COMPAT_L1_BYTES]; /* (phase << 8) | mask of reader cores */
#endif
static int in_l1(uintptr_t p, uint32_t n) {
  return p >= (uintptr_t)__l1_start && p + n <= (uintptr_t)__l1_end && p + n >= p;
}

/* ------------------------------------------------------------------ DMA: copies at wait, checked at issue */
typedef struct {
  uintptr_t ext, loc;
  uint32_t size, stride, length;
  int dir, active;
} dma_t;
static dma_t dma[MAX_DMA];
static lock_t dma_lock;

static int overlap(uintptr_t a, uint32_t an, uintptr_t b, uint32_t bn) { return a < b + bn && b < a + an; }

#if TRM_COMPAT_CHECKS
static void check_against_dma(uintptr_t p, uint32_t n, int is_write) {
  for (int i = 0; i < MAX_DMA; i++) {
    if (!dma[i].active) continue;
    int dst_l1 = dma[i].dir == PI_CL_DMA_DIR_EXT2LOC;
    if (overlap(p, n, dma[i].loc, dma[i].size) && (dst_l1 || is_write))
      fail(dst_l1 ? "core touches L1 under an in-flight DMA load (addr, core)"
                  : "core writes L1 that an in-flight DMA store still reads (addr, core)",
           (uint32_t)p, pi_core_id());
  }
}
#endif

static void dma_issue(pi_cl_dma_copy_t *c, int two_d) {
  uint32_t stride = two_d ? c->stride : c->size, length = two_d ? c->length : c->size;
  if (!in_l1(c->loc, c->size)) fail("DMA loc is not in L1 (loc, size)", c->loc, c->size);
  if (in_l1(c->ext, 1)) fail("DMA ext is in L1 (ext, size)", c->ext, c->size);
  if (c->size == 0 || length == 0 || c->size % length) fail("DMA size not a multiple of length", c->size, length);
  lock(&dma_lock);
  int slot = -1;
  for (int i = 0; i < MAX_DMA; i++) {
    if (!dma[i].active) {
      if (slot < 0) slot = i;
    } else if (overlap(c->loc, c->size, dma[i].loc, dma[i].size)) {
      fail("two in-flight DMAs share L1 (loc, other loc)", c->loc, (uint32_t)dma[i].loc);
    }
  }
  if (slot < 0) fail("more than 64 DMAs in flight", c->loc, 0);
#if TRM_COMPAT_CHECKS
  /* A load into L1 counts as a write by the issuing core in this phase; a store from L1 must not race a writer. */
  uint32_t me = pi_core_id();
  lock(&check_lock);
  for (uint32_t i = 0; i < c->size; i++) {
    uint32_t off = c->loc + i - (uintptr_t)__l1_start;
    int other_writer = (wshadow[off] >> 8) == phase && (wshadow[off] & 0xff) != me;
    uint32_t other_readers = (rshadow[off] >> 8) == phase ? rshadow[off] & 0xff & ~(1u << me) : 0;
    if (other_writer)
      fail("DMA on L1 that another core writes in this phase (addr, writer core)", c->loc + i, wshadow[off] & 0xff);
    if (c->dir == PI_CL_DMA_DIR_EXT2LOC) {
      if (other_readers) fail("DMA load into L1 that another core reads in this phase (addr, reader mask)", c->loc + i, other_readers);
      wshadow[off] = (phase << 8) | me;
    }
  }
  unlock(&check_lock);
  if (c->dir == PI_CL_DMA_DIR_EXT2LOC) memset((void *)c->loc, POISON, c->size);
#endif
  dma[slot] = (dma_t){c->ext, c->loc, c->size, stride, length, c->dir, 1};
  c->id = (uint32_t)slot;
  unlock(&dma_lock);
}

void pi_cl_dma_memcpy(pi_cl_dma_copy_t *copy) { dma_issue(copy, 0); }
void pi_cl_dma_memcpy_2d(pi_cl_dma_copy_2d_t *copy) { dma_issue(copy, 1); }

void pi_cl_dma_wait(void *copy) {
  pi_cl_dma_copy_t *c = copy;
  lock(&dma_lock);
  dma_t *d = &dma[c->id % MAX_DMA];
  if (!d->active || d->loc != c->loc) fail("pi_cl_dma_wait on a transfer not in flight (loc, id)", c->loc, c->id);
  for (uint32_t line = 0; line < d->size / d->length; line++) {
    uint8_t *ext = (uint8_t *)(d->ext + line * d->stride), *loc = (uint8_t *)(d->loc + line * d->length);
    if (d->dir == PI_CL_DMA_DIR_EXT2LOC) memcpy(loc, ext, d->length);
    else memcpy(ext, loc, d->length);
  }
  d->active = 0;
  unlock(&dma_lock);
}

/* ------------------------------------------------------------------ declared reads / writes */
void trm_compat_reads(const void *p, uint32_t n) {
#if TRM_COMPAT_CHECKS
  uintptr_t a = (uintptr_t)p;
  if (n == 0 || !in_l1(a, n)) return; /* reads of L2 are legal (slow on GAP9, not a race) */
  uint32_t core = pi_core_id();
  lock(&dma_lock);
  check_against_dma(a, n, 0);
  unlock(&dma_lock);
  lock(&check_lock);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t off = a + i - (uintptr_t)__l1_start;
    if ((wshadow[off] >> 8) == phase && (wshadow[off] & 0xff) != core)
      fail("core reads L1 another core writes in this phase (addr, writer)", a + i, wshadow[off] & 0xff);
    rshadow[off] = (rshadow[off] >> 8) == phase ? rshadow[off] | (1u << core) : (phase << 8) | (1u << core);
  }
  unlock(&check_lock);
#else
  (void)p, (void)n;
#endif
}

void trm_compat_writes(void *p, uint32_t n) {
#if TRM_COMPAT_CHECKS
  uintptr_t a = (uintptr_t)p;
  uint32_t core = pi_core_id();
  if (n == 0) return;
  if (!in_l1(a, n)) fail("cluster core declares a write outside L1 (addr, core)", (uint32_t)a, core);
  lock(&dma_lock);
  check_against_dma(a, n, 1);
  unlock(&dma_lock);
  lock(&check_lock);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t off = a + i - (uintptr_t)__l1_start;
    if ((wshadow[off] >> 8) == phase && (wshadow[off] & 0xff) != core)
      fail("two cores write the same L1 byte in one phase (addr, other core)", a + i, wshadow[off] & 0xff);
    uint32_t readers = (rshadow[off] >> 8) == phase ? rshadow[off] & 0xff & ~(1u << core) : 0;
    if (readers) fail("core writes L1 another core reads in this phase (addr, reader mask)", a + i, readers);
    wshadow[off] = (phase << 8) | core;
  }
  unlock(&check_lock);
#else
  (void)p, (void)n;
#endif
}

void trm_compat_check_store(void *p) {
#if TRM_COMPAT_CHECKS
  uintptr_t a = (uintptr_t)p;
  if (!in_l1(a, 1)) fail("cluster core stores outside L1 (addr, core)", (uint32_t)a, pi_core_id());
  uint32_t w = wshadow[a - (uintptr_t)__l1_start];
  if (w != ((phase << 8) | pi_core_id())) fail("store outside the core's declared write-set (addr, core)", (uint32_t)a, pi_core_id());
#else
  (void)p;
#endif
}

/* ------------------------------------------------------------------ allocators (first fit, block table) */
typedef struct {
  uint8_t *base;
  uint32_t bytes, used, peak;
  struct {
    uint32_t off, size;
  } blk[MAX_BLOCKS];
  int n;
} arena_t;
static arena_t l1, l2;
static lock_t alloc_lock;

static void *arena_alloc(arena_t *a, uint32_t size) {
  size = (size + 7u) & ~7u;
  lock(&alloc_lock);
  uint32_t off = 0;
  int at = 0;
  for (; at < a->n; at++) { /* blocks are kept sorted by offset */
    if (a->blk[at].off - off >= size) break;
    off = a->blk[at].off + a->blk[at].size;
  }
  void *p = 0;
  if (a->n < MAX_BLOCKS && off + size <= a->bytes) {
    memmove(&a->blk[at + 1], &a->blk[at], (size_t)(a->n - at) * sizeof a->blk[0]);
    a->blk[at].off = off, a->blk[at].size = size, a->n++;
    a->used += size;
    if (off + size > a->peak) a->peak = off + size;
    p = a->base + off;
  }
  unlock(&alloc_lock);
  return p;
}

static void arena_free(arena_t *a, void *p, uint32_t size) {
  size = (size + 7u) & ~7u;
  lock(&alloc_lock);
  int i = 0;
  while (i < a->n && a->base + a->blk[i].off != (uint8_t *)p) i++;
  if (i == a->n || a->blk[i].size != size) fail("free of a block not allocated with this size (addr, size)", (uint32_t)(uintptr_t)p, size);
  memset(p, POISON, size);
  memmove(&a->blk[i], &a->blk[i + 1], (size_t)(a->n - i - 1) * sizeof a->blk[0]);
  a->n--;
  a->used -= size;
  unlock(&alloc_lock);
}

#if TRM_COMPAT_CHECKS >= 2
static void poison_free_l1(void) {
  uint32_t off = 0;
  for (int i = 0; i <= l1.n; i++) {
    uint32_t end = i < l1.n ? l1.blk[i].off : l1.bytes;
    memset(l1.base + off, POISON, end - off);
    if (i < l1.n) off = l1.blk[i].off + l1.blk[i].size;
  }
}
#endif

void *pi_l2_malloc(int size) { return arena_alloc(&l2, (uint32_t)size); }
void pi_l2_free(void *chunk, int size) { arena_free(&l2, chunk, (uint32_t)size); }
void *pi_l1_malloc(struct pi_device *device, uint32_t size) { (void)device; return arena_alloc(&l1, size); }
void pi_l1_free(struct pi_device *device, void *chunk, uint32_t size) { (void)device; arena_free(&l1, chunk, size); }
void *pi_cl_l1_malloc(struct pi_device *device, uint32_t size) { (void)device; return arena_alloc(&l1, size); }
void pi_cl_l1_free(struct pi_device *device, void *chunk, uint32_t size) { (void)device; arena_free(&l1, chunk, size); }
uint32_t trm_compat_l1_peak(void) { return l1.peak; }
/* Restart the peak at the live blocks' extent (the self-test measures one kernel call at a time). */
void trm_compat_l1_peak_reset(void) { l1.peak = l1.n ? l1.blk[l1.n - 1].off + l1.blk[l1.n - 1].size : 0; }

/* ------------------------------------------------------------------ phases, barriers, fork */
static void phase_end(void) { /* called with every team core stopped at the phase boundary */
  phase++;
#if TRM_COMPAT_CHECKS >= 2
  poison_free_l1();
#endif
}

#if TRM_COMPAT_SEQUENTIAL
void pi_cl_team_barrier(void) {
  if (!seq_in_fork) return; /* a team of one */
  int me = seq_current;
  seq_state[me] = AT_BARRIER;
  compat_ctx_switch(ctx_core[me], ctx_sched);
}

static void seq_trampoline(void) {
  team.entry(team.arg);
  seq_state[seq_current] = FINISHED;
  compat_ctx_switch(ctx_core[seq_current], ctx_sched);
}

void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg) {
  int n = nb_cores <= 0 || nb_cores > NB_CORES ? NB_CORES : nb_cores;
  team.entry = entry, team.arg = arg, team.nb = n;
  phase_end();
  seq_in_fork = 1;
  for (int c = 0; c < n; c++) {
    seq_state[c] = READY;
    ctx_core[c][0] = (uint32_t)(uintptr_t)seq_trampoline;
    ctx_core[c][1] = (uint32_t)(uintptr_t)(seq_stacks[c] + sizeof seq_stacks[c]);
  }
  for (;;) {
    int order[NB_CORES], live = 0;
    for (int c = 0; c < n; c++)
      if (seq_state[c] != FINISHED) order[live++] = c;
    if (!live) break;
    for (int i = live - 1; i > 0; i--) { /* Fisher-Yates: a new order every phase */
      int j = (int)(next_rand() % (uint32_t)(i + 1)), t = order[i];
      order[i] = order[j], order[j] = t;
    }
    for (int i = 0; i < live; i++) {
      seq_current = order[i];
      seq_state[seq_current] = READY;
      compat_ctx_switch(ctx_sched, ctx_core[seq_current]);
    }
    int waiting = 0, finished = 0;
    for (int c = 0; c < n; c++) waiting += seq_state[c] == AT_BARRIER, finished += seq_state[c] == FINISHED;
    if (waiting && finished) fail("barrier reached by only some cores (waiting, finished)", (uint32_t)waiting, (uint32_t)finished);
    phase_end();
  }
  seq_current = 0, seq_in_fork = 0;
}
#else
void pi_cl_team_barrier(void) {
  int gen = __atomic_load_n(&bar_gen, __ATOMIC_ACQUIRE);
  if (__atomic_fetch_add(&bar_count, 1, __ATOMIC_ACQ_REL) == team.nb - 1) {
    phase_end();
    bar_count = 0;
    __atomic_store_n(&bar_gen, gen + 1, __ATOMIC_RELEASE);
    for (int c = 0; c < team.nb; c++)
      if ((int)pi_core_id() != c) wake(c + 1);
  } else {
    wait_change(&bar_gen, gen);
  }
}

void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg) {
  int n = nb_cores <= 0 || nb_cores > NB_CORES ? NB_CORES : nb_cores;
  team.entry = entry, team.arg = arg, team.nb = n;
  __atomic_store_n(&team_done, 0, __ATOMIC_RELAXED);
  phase_end();
  __atomic_fetch_add(&team_gen, 1, __ATOMIC_RELEASE);
  for (int c = 1; c < NB_CORES; c++) wake(c + 1); /* cores beyond n wake, see they are not in the team, sleep */
  entry(arg);
  int done;
  while ((done = __atomic_load_n(&team_done, __ATOMIC_ACQUIRE)) != n - 1) wait_change(&team_done, done);
  phase_end();
}

static void worker_loop(int core) {
  int gen = 0;
  for (;;) {
    gen = wait_change(&team_gen, gen);
    if (core < team.nb) {
      team.entry(team.arg);
      __atomic_fetch_add(&team_done, 1, __ATOMIC_ACQ_REL);
      wake(1);
    }
  }
}
#endif

/* ------------------------------------------------------------------ fabric controller <-> cluster */
void pi_open_from_conf(struct pi_device *device, void *conf) { device->config = conf; }
void pi_cluster_conf_init(struct pi_cluster_conf *conf) { conf->id = 0; }
int pi_cluster_open(struct pi_device *device) { (void)device; return 0; }
int pi_cluster_close(struct pi_device *device) { (void)device; return 0; }

struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg) {
  memset(task, 0, sizeof *task);
  task->entry = entry, task->arg = arg;
  return task;
}

int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task) {
  (void)device;
  task_cur = task;
  int gen = __atomic_add_fetch(&task_gen, 1, __ATOMIC_RELEASE);
  wake(1);
  int done;
  while ((done = __atomic_load_n(&task_done, __ATOMIC_ACQUIRE)) != gen) wait_change(&task_done, done);
  return 0;
}

static void cluster_master_loop(void) {
  int gen = 0;
  for (;;) {
    gen = wait_change(&task_gen, gen);
    team.nb = 1;
    task_cur->entry(task_cur->arg);
    for (int i = 0; i < MAX_DMA; i++)
      if (dma[i].active) fail("cluster task ended with a DMA never waited (loc, size)", (uint32_t)dma[i].loc, dma[i].size);
    __atomic_store_n(&task_done, gen, __ATOMIC_RELEASE);
    wake(FC_HART);
  }
}

/* ------------------------------------------------------------------ perf counters: emulated, per hart */
static uint32_t perf_start[9], perf_acc[9];
static inline uint32_t mcycle(void) {
  uint32_t v;
  __asm__ volatile("csrr %0, mcycle" : "=r"(v));
  return v;
}
void pi_perf_conf(unsigned events) { (void)events; }
void pi_perf_reset(void) { perf_acc[hart_id()] = 0; }
void pi_perf_start(void) { perf_start[hart_id()] = mcycle(); }
void pi_perf_stop(void) { perf_acc[hart_id()] += mcycle() - perf_start[hart_id()]; }
unsigned int pi_perf_read(int id) { (void)id; return perf_acc[hart_id()]; }

/* ------------------------------------------------------------------ UART (ns16550a, polled) */
void pi_uart_conf_init(struct pi_uart_conf *conf) { memset(conf, 0, sizeof *conf), conf->baudrate_bps = 115200; }
int pi_uart_open(struct pi_device *device) { (void)device; return 0; }
void pi_uart_close(struct pi_device *device) { (void)device; }
int pi_uart_write(struct pi_device *device, void *buffer, uint32_t size) {
  (void)device;
  lock(&uart_lock);
  for (uint32_t i = 0; i < size; i++) uart_putc(((const char *)buffer)[i]);
  unlock(&uart_lock);
  return 0;
}
int pi_uart_read(struct pi_device *device, void *buffer, uint32_t size) {
  (void)device;
  for (uint32_t i = 0; i < size; i++) {
    while (!(UART0[5] & 0x01)) {
    }
    ((uint8_t *)buffer)[i] = UART0[0];
  }
  return 0;
}

/* ------------------------------------------------------------------ start */
int pmsis_kickoff(void *arg) {
  int (*app_main)(void) = (int (*)(void))arg;
  pmsis_exit(app_main());
  return 0;
}

static volatile int booted __attribute__((section(".data"))) = 0;

void compat_hart_start(int hart) {
  __asm__ volatile("csrs mie, %0" ::"r"(8)); /* MSIE: a CLINT software interrupt ends WFI */
  if (hart == FC_HART) {
    memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
    l1 = (arena_t){.base = __l1_start, .bytes = (uint32_t)(__l1_end - __l1_start)};
    l2 = (arena_t){.base = __l2heap_start, .bytes = (uint32_t)(__l2heap_end - __l2heap_start)};
    memset(__l1_start, POISON, l1.bytes);
    __atomic_store_n(&booted, 1, __ATOMIC_RELEASE);
    for (int h = 1; h <= NB_CORES; h++) wake(h);
    pmsis_exit(main());
  }
  wait_change(&booted, 0);
  if (hart == 1) cluster_master_loop();
#if !TRM_COMPAT_SEQUENTIAL
  worker_loop(hart - 1);
#endif
  for (;;) __asm__ volatile("wfi");
}
