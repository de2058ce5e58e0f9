/* The PMSIS subset that trm-tvm's GAP9 project uses: our own declarations, written from the public API
 * documentation, so that the generated sources can be checked (`gcc -fsyntax-only`) without the GAP SDK and
 * so that the functional build (project_templates/gap9/compat/) implements exactly these calls.
 *
 * Sources (public): GreenWaves GAP SDK, PMSIS API reference (rtos/pmsis/pmsis_api/include/pmsis/...):
 *   cluster/cl_team.h (pi_cl_team_fork, pi_cl_team_barrier), cluster/cluster_sync/fc_to_cl_delegate.h
 *   (pi_cluster_task, pi_cluster_send_task_to_cl), drivers/cluster.h (pi_cluster_conf, pi_cluster_open),
 *   cluster/dma/cl_dma.h (pi_cl_dma_copy_t: ext, loc, id, uint16_t size, dir, merge, stride, length;
 *   PI_CL_DMA_DIR_LOC2EXT = 0, PI_CL_DMA_DIR_EXT2LOC = 1), mem_slab/malloc.h (pi_l2_malloc, pi_l1_malloc,
 *   pi_cl_l1_malloc), perf.h (pi_perf_*), drivers/uart.h (pi_uart_*), pmsis.h (pmsis_kickoff, pmsis_exit).
 * With the real SDK, its own pmsis.h is used instead of this file; nothing here is copied from it.
 * Differences that do not change call sites: functions the SDK defines `static inline` are plain prototypes
 * here, and struct layouts hold only the fields we use.
 */
#ifndef TRM_PMSIS_PROTO_H
#define TRM_PMSIS_PROTO_H
#include <stddef.h>
#include <stdint.h>

#define PI_L2 /* placement attribute for L2 data; the SDK maps it to a section */
#define PI_CL_L1 /* cluster L1 placement attribute */

struct pi_device {
  void *api;
  void *config;
  void *data;
};
void pi_open_from_conf(struct pi_device *device, void *conf);

/* ---- fabric controller side: cluster control ---- */
struct pi_cluster_conf {
  int id;
};
struct pi_cluster_task {
  void (*entry)(void *arg);
  void *arg;
  void *stacks;
  uint32_t stack_size;
  uint32_t slave_stack_size;
  int nb_cores;
};
void pi_cluster_conf_init(struct pi_cluster_conf *conf);
int pi_cluster_open(struct pi_device *device);
int pi_cluster_close(struct pi_device *device);
struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *arg), void *arg);
int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task);

/* ---- cluster side: team, identity ---- */
void pi_cl_team_fork(int nb_cores, void (*entry)(void *arg), void *arg);
void pi_cl_team_barrier(void);
int pi_cl_team_nb_cores(void);
int pi_cl_cluster_nb_cores(void);
uint32_t pi_core_id(void);
uint32_t pi_cluster_id(void);
int pi_is_fc(void);

/* ---- cluster DMA (L2 <-> L1) ---- */
typedef enum { PI_CL_DMA_DIR_LOC2EXT = 0, PI_CL_DMA_DIR_EXT2LOC = 1 } pi_cl_dma_dir_e;
typedef struct pi_cl_dma_copy_s {
  uint32_t ext;   /* address in L2 (external to the cluster) */
  uint32_t loc;   /* address in L1 */
  uint32_t id;
  uint16_t size;  /* bytes; one command moves at most 65535 bytes */
  pi_cl_dma_dir_e dir;
  uint8_t merge;
  uint32_t stride; /* 2D: bytes from one line start to the next, on the L2 side */
  uint32_t length; /* 2D: bytes per line */
} pi_cl_dma_copy_t;
typedef pi_cl_dma_copy_t pi_cl_dma_copy_2d_t;
void pi_cl_dma_memcpy(pi_cl_dma_copy_t *copy);
void pi_cl_dma_memcpy_2d(pi_cl_dma_copy_2d_t *copy);
void pi_cl_dma_wait(void *copy);

/* ---- memory ---- */
void *pi_l2_malloc(int size);
void pi_l2_free(void *chunk, int size);
void *pi_l1_malloc(struct pi_device *device, uint32_t size);        /* from the FC */
void pi_l1_free(struct pi_device *device, void *chunk, uint32_t size);
void *pi_cl_l1_malloc(struct pi_device *device, uint32_t size);     /* from the cluster */
void pi_cl_l1_free(struct pi_device *device, void *chunk, uint32_t size);

/* ---- performance counters (per core) ---- */
typedef enum { PI_PERF_ACTIVE_CYCLES = 0, PI_PERF_INSTR = 1, PI_PERF_CYCLES = 17 } pi_perf_event_e;
void pi_perf_conf(unsigned events);
void pi_perf_reset(void);
void pi_perf_start(void);
void pi_perf_stop(void);
unsigned int pi_perf_read(int id);

/* ---- UART ---- */
struct pi_uart_conf {
  uint32_t baudrate_bps;
  uint8_t uart_id;
  uint8_t enable_rx;
  uint8_t enable_tx;
};
void pi_uart_conf_init(struct pi_uart_conf *conf);
int pi_uart_open(struct pi_device *device);
int pi_uart_write(struct pi_device *device, void *buffer, uint32_t size);
int pi_uart_read(struct pi_device *device, void *buffer, uint32_t size);
void pi_uart_close(struct pi_device *device);

/* ---- start / exit ---- */
int pmsis_kickoff(void *arg);
void pmsis_exit(int err);

#endif
