/*
 * trm_insn_classes: a QEMU TCG plugin (plugin API v1, QEMU 7.x) that counts executed Thumb instructions per
 * instruction class and per code region, for the CPI timing model of trm_tvm.measure.timing.
 *
 * Arguments:  ranges=<file>  one region per line, "lo hi" in hex, half-open [lo, hi), sorted, not overlapping
 *             out=<file>     written at exit: "trm-insn-classes 1", the class names, then one line per region
 *             flash=<lo>:<hi> (hex) count the bytes loaded from this range (data reads of weights in flash)
 *             mark=<hex>     (repeatable) each time the instruction at this address runs, append a snapshot of
 *                            the counts so far to <out>.marks: "mark <index>", non-zero region rows, "end"
 * Instructions outside every range go to an extra last region ("other").
 *
 * Classes are counted by inline ops at translation time (no callback per instruction). Whether a conditional
 * branch was taken is only known when the next block starts, so every block also gets a small exec callback that
 * settles the pending branch of the block before it.
 *
 * The QEMU plugin header is not shipped by Debian; the declarations below are our own, written against the
 * API-v1 documentation of QEMU 7.2 (include/qemu/qemu-plugin.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- our declarations of the QEMU plugin API, version 1 ---- */
#define TRM_EXPORT __attribute__((visibility("default")))
#define TRM_PLUGIN_API 1

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef uint32_t qemu_plugin_meminfo_t;
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw, void *userdata);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

TRM_EXPORT int qemu_plugin_version = TRM_PLUGIN_API;

/* ---- instruction classes (the order is the file format; trm_tvm/measure/timing.py mirrors it) ---- */
#define CLASSES(X) \
    X(alu) X(mul) X(mla) X(mac) X(div) X(load) X(load_pipelined) X(store) X(lsm) X(lsm_regs) \
    X(branch_taken) X(branch_not_taken) X(pc_load) X(agu_stall) X(fp) X(fp_mac) X(fp_div) X(mve) X(lob) X(system) \
    X(insns) X(fetch_bytes) X(flash_data_bytes)
#define AS_ENUM(name) C_##name,
#define AS_NAME(name) #name,
enum { CLASSES(AS_ENUM) N_CLASSES };
static const char *class_names[] = { CLASSES(AS_NAME) };

/* What one instruction adds: up to 8 (class, amount) pairs, plus facts the next instruction needs. */
typedef struct {
    int n;
    int cls[8];
    uint64_t amount[8];
    bool conditional_branch; /* outcome settled at run time */
    bool single_load;        /* LDR-family single load: the next load can pipeline behind it */
    int rt;                  /* destination of a single load, -1 otherwise */
    int rn, rm;              /* address registers of a load/store, -1 if none */
    int rd, rd2;             /* registers written by a data-processing or multiply instruction, -1 if none */
} insn_class_t;

#define NO_REGS {.rt = -1, .rn = -1, .rm = -1, .rd = -1, .rd2 = -1}

static void add(insn_class_t *c, int cls, uint64_t amount)
{
    c->cls[c->n] = cls;
    c->amount[c->n] = amount;
    c->n++;
}

static int popcount16(unsigned v) { return __builtin_popcount(v & 0xffffu); }

static void alu(insn_class_t *c, int rd)
{
    add(c, C_alu, 1);
    c->rd = rd == 15 ? -1 : rd;              /* Rd = 1111: compare/test, no destination */
}

static void multiple(insn_class_t *c, int rn, int regs)
{
    add(c, C_lsm, 1);
    add(c, C_lsm_regs, regs);
    c->rn = rn;
}

/* Destination of a 16-bit data-processing instruction, -1 for compares, tests, IT and hints. */
static int alu16_rd(unsigned hw)
{
    if (hw < 0x2000) return hw & 7;                                                    /* shifts, ADD/SUB */
    if (hw < 0x4000) return ((hw >> 11) & 3) == 1 ? -1 : (int)((hw >> 8) & 7);        /* MOV/CMP/ADD/SUB imm8 */
    if (hw < 0x4400) {                                                                 /* register data proc. */
        unsigned op = (hw >> 6) & 0xf;
        return (op == 0x8 || op == 0xa || op == 0xb) ? -1 : (int)(hw & 7);             /* TST, CMP, CMN */
    }
    if ((hw & 0xf000) == 0xa000) return (hw >> 8) & 7;                                 /* ADR, ADD Rd, SP */
    if ((hw & 0xff00) == 0xb000) return 13;                                            /* ADD/SUB SP, SP */
    if ((hw & 0xff00) == 0xb200 || (hw & 0xff00) == 0xba00) return hw & 7;             /* extend, REV */
    return -1;
}

static void single_ls(insn_class_t *c, bool load, int rt, int rn, int rm)
{
    add(c, load ? C_load : C_store, 1);
    if (load && rt == 15)
        add(c, C_pc_load, 1);
    c->single_load = load;
    c->rt = load ? rt : -1;
    c->rn = rn;
    c->rm = rm;
}

static void classify16(unsigned hw, insn_class_t *c)
{
    if ((hw & 0xffc0) == 0x4340) { add(c, C_mul, 1); c->rd = hw & 7; return; }      /* MULS */
    if ((hw & 0xfc00) == 0x4400) {                                                     /* hi-reg ADD/CMP/MOV, BX */
        if ((hw & 0xff00) == 0x4700) { add(c, C_branch_taken, 1); return; }           /* BX/BLX Rm */
        int rd = (hw & 7) | ((hw >> 4) & 8);
        bool cmp = (hw & 0xff00) == 0x4500;
        alu(c, cmp ? -1 : rd);
        if (rd == 15 && !cmp)
            add(c, C_pc_load, 1);                                                      /* ADD/MOV pc: refill */
        return;
    }
    if ((hw & 0xf800) == 0x4800) { single_ls(c, true, (hw >> 8) & 7, 15, -1); return; }  /* LDR literal */
    if ((hw & 0xf000) == 0x5000) {                                                     /* register offset */
        unsigned op = (hw >> 9) & 7;
        single_ls(c, op >= 3, hw & 7, (hw >> 3) & 7, (hw >> 6) & 7);
        return;
    }
    if ((hw & 0xe000) == 0x6000 || (hw & 0xf000) == 0x8000) {                          /* immediate offset */
        single_ls(c, hw & 0x0800, hw & 7, (hw >> 3) & 7, -1);
        return;
    }
    if ((hw & 0xf000) == 0x9000) { single_ls(c, hw & 0x0800, (hw >> 8) & 7, 13, -1); return; }  /* SP-relative */
    if ((hw & 0xf500) == 0xb100) { c->conditional_branch = true; return; }             /* CBZ/CBNZ */
    if ((hw & 0xfe00) == 0xb400) {                                                     /* PUSH */
        multiple(c, 13, popcount16(hw & 0xff) + ((hw >> 8) & 1));
        return;
    }
    if ((hw & 0xfe00) == 0xbc00) {                                                     /* POP */
        multiple(c, 13, popcount16(hw & 0xff) + ((hw >> 8) & 1));
        if (hw & 0x0100)
            add(c, C_pc_load, 1);
        return;
    }
    if ((hw & 0xffe0) == 0xb660 || (hw & 0xff00) == 0xbe00) { add(c, C_system, 1); return; }  /* CPS, BKPT */
    if ((hw & 0xff00) == 0xbf00 && (hw & 0x000f) == 0 && (hw & 0x00f0) >= 0x20) {     /* WFE/WFI/SEV hints */
        add(c, C_system, 1);
        return;
    }
    if ((hw & 0xf000) == 0xc000) {                                                     /* STM/LDM */
        multiple(c, (hw >> 8) & 7, popcount16(hw & 0xff));
        return;
    }
    if ((hw & 0xf000) == 0xd000) {
        if ((hw & 0x0e00) == 0x0e00) { add(c, C_system, 1); return; }                 /* UDF, SVC */
        c->conditional_branch = true;                                                  /* B<c> */
        return;
    }
    if ((hw & 0xf800) == 0xe000) { add(c, C_branch_taken, 1); return; }              /* B */
    alu(c, alu16_rd(hw));                                                              /* shifts, ALU, IT, NOP... */
}

static void classify_coprocessor(unsigned hw1, unsigned hw2, insn_class_t *c, bool mve)
{
    bool vfp = ((hw2 >> 9) & 7) == 5;                                                  /* coprocessor 10/11 */
    if (!vfp || (hw1 & 0xef00) == 0xef00) { add(c, mve ? C_mve : C_fp, 1); return; }
    if ((hw1 & 0xee00) == 0xec00 && (hw1 & 0x01a0) != 0) {                             /* ext. register ld/st */
        bool load = hw1 & 0x10;
        bool multiple_regs = !((hw1 & 0x0120) == 0x0100);                              /* VLDR/VSTR: P=1, W=0 */
        if (multiple_regs)
            multiple(c, hw1 & 0xf, hw2 & 0xff);                                        /* count words */
        else
            add(c, load ? C_load : C_store, 1), c->rn = hw1 & 0xf;
        return;
    }
    if ((hw1 & 0xef00) == 0xee00 && !(hw2 & 0x10)) {                                   /* VFP data processing */
        unsigned opc1 = (hw1 >> 4) & 0xb;
        if (opc1 == 0x8 || (opc1 == 0xb && (hw1 & 0xf) == 1 && (hw2 & 0xc0) == 0xc0))
            add(c, C_fp_div, 1);                                                       /* VDIV, VSQRT */
        else if (opc1 == 0x0 || opc1 == 0x1 || opc1 == 0x9 || opc1 == 0xa)
            add(c, C_fp_mac, 1);                                                       /* VMLA/VMLS/VFMA/... */
        else
            add(c, C_fp, 1);
        return;
    }
    add(c, C_fp, 1);                                                                   /* VMOV core<->fp, VMRS */
}

static void classify32(unsigned hw1, unsigned hw2, insn_class_t *c, bool mve)
{
    if ((hw1 & 0xfe40) == 0xe800) {                                                    /* LDM/STM (and RFE/SRS) */
        multiple(c, hw1 & 0xf, popcount16(hw2));
        if ((hw1 & 0x10) && (hw2 & 0x8000))
            add(c, C_pc_load, 1);
        return;
    }
    if ((hw1 & 0xfe40) == 0xe840) {                                                    /* dual, exclusive, TBB */
        unsigned op1 = (hw1 >> 7) & 3, op2 = (hw1 >> 4) & 3;
        if ((op1 & 2) || (op2 & 2)) {                                                  /* LDRD/STRD */
            multiple(c, hw1 & 0xf, 2);
            return;
        }
        if (op1 == 1 && op2 == 1 && (hw2 & 0x00e0) == 0) {                             /* TBB/TBH */
            add(c, C_load, 1);
            add(c, C_alu, 1);
            add(c, C_pc_load, 1);
            c->rn = hw1 & 0xf, c->rm = hw2 & 0xf;
            return;
        }
        single_ls(c, op2 & 1, hw2 >> 12, hw1 & 0xf, -1);                               /* LDREX/STREX family */
        return;
    }
    if ((hw1 & 0xe000) == 0xe000 && (hw1 & 0x0c00) == 0x0c00 && (hw1 & 0x1800) != 0x1000) {
        classify_coprocessor(hw1, hw2, c, mve);                                        /* 111x 11xx: coprocessor */
        return;
    }
    if ((hw1 & 0xfe00) == 0xea00) { alu(c, (hw2 >> 8) & 0xf); return; }              /* shifted register */
    if ((hw1 & 0xf800) == 0xf000 && (hw2 & 0x8000)) {                                  /* branches, misc control */
        switch (hw2 & 0x5000) {
        case 0x0000:
            if (hw1 == 0xf3af && (hw2 & 0x07ff) == 0) alu(c, -1);                      /* NOP.W */
            else if ((hw1 & 0x0380) == 0x0380) add(c, C_system, 1);                    /* MSR/MRS/hints/barriers */
            else c->conditional_branch = true;                                          /* B<c>.W */
            return;
        case 0x4000: add(c, mve ? C_lob : C_branch_taken, 1); return;                  /* v8.1-M DLS/WLS/LE */
        default: add(c, C_branch_taken, 1); return;                                    /* B.W, BL */
        }
    }
    if ((hw1 & 0xf800) == 0xf000) { alu(c, (hw2 >> 8) & 0xf); return; }              /* data proc. immediate */
    if ((hw1 & 0xfe00) == 0xf800) {                                                    /* load/store single */
        bool load = hw1 & 0x10;
        int rt = hw2 >> 12;
        bool reg_offset = !(hw1 & 0x80) && (hw2 & 0x0fc0) == 0;
        if (load && rt == 15 && (hw1 & 0x60) != 0x40) { add(c, C_system, 1); return; }  /* PLD/PLI hints */
        single_ls(c, load, rt, hw1 & 0xf, reg_offset ? (int)(hw2 & 0xf) : -1);
        return;
    }
    if ((hw1 & 0xff00) == 0xfa00) { alu(c, (hw2 >> 8) & 0xf); return; }              /* register, SIMD add/sub */
    if ((hw1 & 0xff80) == 0xfb00) {                                                    /* multiply, MAC */
        unsigned op1 = (hw1 >> 4) & 7;
        if (op1 == 0) add(c, ((hw2 >> 12) == 0xf && !(hw2 & 0xf0)) ? C_mul : C_mla, 1);
        else add(c, C_mac, 1);
        c->rd = (hw2 >> 8) & 0xf;
        return;
    }
    if ((hw1 & 0xff80) == 0xfb80) {                                                    /* long multiply, divide */
        unsigned op1 = (hw1 >> 4) & 7;
        bool div = op1 == 1 || op1 == 3;
        add(c, div ? C_div : C_mac, 1);
        c->rd = (hw2 >> 8) & 0xf;
        c->rd2 = div ? -1 : (int)(hw2 >> 12);                                          /* RdLo of a long multiply */
        return;
    }
    alu(c, -1);
}

/* Any load or store whose address register was written by the instruction just before waits one cycle: there is
 * no forwarding path from the ALU to address generation (Cortex-M3/M4 TRM, load/store timings). */
static bool address_stall(const insn_class_t *prev, const insn_class_t *c)
{
    if (c->rn < 0 && c->rm < 0) return false;
    for (int r = 0; r < 2; r++) {
        int rd = r ? prev->rd2 : prev->rd;
        if (rd >= 0 && (rd == c->rn || rd == c->rm)) return true;
    }
    return false;
}

/* ---- regions ---- */
static uint64_t *range_lo, *range_hi;
static size_t n_ranges;
static uint64_t *counts;           /* (n_ranges + 1) x N_CLASSES */
static char *out_path;
static bool has_mve;
#define MAX_MARKS 16
static uint64_t marks[MAX_MARKS];
static int n_marks;
static FILE *marks_file;
static uint64_t flash_lo, flash_hi;   /* empty range: data reads from flash are not counted */

static size_t region_of(uint64_t pc)
{
    size_t lo = 0, hi = n_ranges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pc < range_lo[mid]) hi = mid;
        else if (pc >= range_hi[mid]) lo = mid + 1;
        else return mid;
    }
    return n_ranges;
}

static uint64_t *counter(size_t region, int cls) { return &counts[region * N_CLASSES + cls]; }

/* ---- output: one row per region, the classes in order ---- */
static void write_rows(FILE *f, bool skip_zero)
{
    for (size_t r = 0; r <= n_ranges; r++) {
        if (skip_zero && *counter(r, C_insns) == 0)
            continue;
        fprintf(f, "%zu", r);
        for (int k = 0; k < N_CLASSES; k++) fprintf(f, " %" PRIu64, *counter(r, k));
        fprintf(f, "\n");
    }
}

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    fprintf(marks_file, "mark %d\n", (int)(intptr_t)userdata);
    write_rows(marks_file, true);
    fprintf(marks_file, "end\n");
}

/* ---- data reads from flash: userdata is the region's flash_data_bytes counter ----
 * Registered for reads and writes: QEMU 7.2 delivered stores, not loads, to a read-only (MEM_R) registration. */
static void on_load(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata)
{
    (void)vcpu_index;
    if (vaddr >= flash_lo && vaddr < flash_hi && !qemu_plugin_mem_is_store(info))
        *(uint64_t *)userdata += 1u << qemu_plugin_mem_size_shift(info);
}

static bool drop_class(insn_class_t *c, int cls)
{
    for (int k = 0; k < c->n; k++)
        if (c->cls[k] == cls) {
            c->n--;
            c->cls[k] = c->cls[c->n];
            c->amount[k] = c->amount[c->n];
            return true;
        }
    return false;
}

static bool reads_memory(const insn_class_t *c)
{
    for (int k = 0; k < c->n; k++)
        if (c->cls[k] == C_load || c->cls[k] == C_load_pipelined || c->cls[k] == C_lsm) return true;
    return false;
}

/* ---- conditional branches: settled by the block that runs next ---- */
typedef struct {
    uint64_t start;
    uint64_t fallthrough;          /* 0: the block does not end in a conditional branch */
    size_t branch_region;
} tb_info_t;

static const tb_info_t *pending;

static void tb_exec(unsigned int vcpu_index, void *userdata)
{
    const tb_info_t *tb = userdata;
    (void)vcpu_index;
    if (pending) {
        int cls = tb->start == pending->fallthrough ? C_branch_not_taken : C_branch_taken;
        (*counter(pending->branch_region, cls))++;
    }
    pending = tb->fallthrough ? tb : NULL;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    tb_info_t *info = calloc(1, sizeof(*info));
    int it_left = 0;               /* instructions still inside an IT block */
    insn_class_t prev = NO_REGS;
    (void)id;
    info->start = qemu_plugin_tb_vaddr(tb);

    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *p = qemu_plugin_insn_data(insn);
        size_t size = qemu_plugin_insn_size(insn);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        unsigned hw1 = p[0] | (p[1] << 8);
        insn_class_t c = NO_REGS;
        bool in_it = it_left > 0;

        if (size == 4) classify32(hw1, p[2] | (p[3] << 8), &c, has_mve);
        else classify16(hw1, &c);

        /* LDR pipelining (Cortex-M3/M4 TRM): a load after a single load whose result is not an address input */
        if (c.single_load && prev.single_load && prev.rt != c.rn && prev.rt != c.rm)
            for (int k = 0; k < c.n; k++)
                if (c.cls[k] == C_load) c.cls[k] = C_load_pipelined;

        if (address_stall(&prev, &c))
            add(&c, C_agu_stall, 1);

        /* a branch inside an IT block is conditional too: its outcome is settled at run time */
        if (in_it && drop_class(&c, C_branch_taken))
            c.conditional_branch = true;

        size_t region = region_of(pc);
        add(&c, C_insns, 1);
        add(&c, C_fetch_bytes, size);
        for (int k = 0; k < c.n; k++)
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       counter(region, c.cls[k]), c.amount[k]);
        if (flash_hi > flash_lo && reads_memory(&c))
            qemu_plugin_register_vcpu_mem_cb(insn, on_load, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                             counter(region, C_flash_data_bytes));
        for (int m = 0; m < n_marks; m++)
            if (pc == marks[m])
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)(intptr_t)m);
        if (c.conditional_branch && i == n - 1) {
            info->fallthrough = pc + size;
            info->branch_region = region;
        }

        if (in_it) it_left--;
        if (size == 2 && (hw1 & 0xff00) == 0xbf00 && (hw1 & 0xf))                      /* IT: mask sets length */
            it_left = 4 - __builtin_ctz(hw1 & 0xf);
        prev = c;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, info);
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    if (pending) {                 /* the last branch before exit never saw its successor */
        (*counter(pending->branch_region, C_branch_taken))++;
        pending = NULL;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "trm_insn_classes: cannot write %s\n", tmp); return; }
    fprintf(f, "trm-insn-classes 1\nclasses");
    for (int k = 0; k < N_CLASSES; k++) fprintf(f, " %s", class_names[k]);
    fprintf(f, "\n");
    write_rows(f, false);
    fclose(f);
    rename(tmp, out_path);
    if (marks_file)
        fflush(marks_file);
}

static bool read_ranges(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t cap = 64;
    range_lo = malloc(cap * sizeof(uint64_t));
    range_hi = malloc(cap * sizeof(uint64_t));
    uint64_t lo, hi;
    while (fscanf(f, "%" SCNx64 " %" SCNx64, &lo, &hi) == 2) {
        if (n_ranges == cap) {
            cap *= 2;
            range_lo = realloc(range_lo, cap * sizeof(uint64_t));
            range_hi = realloc(range_hi, cap * sizeof(uint64_t));
        }
        range_lo[n_ranges] = lo;
        range_hi[n_ranges] = hi;
        n_ranges++;
    }
    fclose(f);
    return true;
}

TRM_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (info->version.cur != TRM_PLUGIN_API) {
        fprintf(stderr, "trm_insn_classes: this QEMU has plugin API v%d (min v%d); the plugin is written for "
                        "API v%d (QEMU 7.x) -- run it with QEMU 7.2\n",
                info->version.cur, info->version.min, TRM_PLUGIN_API);
        return -1;
    }
    const char *ranges = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "ranges=", 7) == 0) ranges = argv[i] + 7;
        else if (strncmp(argv[i], "out=", 4) == 0) out_path = strdup(argv[i] + 4);
        else if (strcmp(argv[i], "mve=on") == 0) has_mve = true;
        else if (strncmp(argv[i], "flash=", 6) == 0)
            sscanf(argv[i] + 6, "%" SCNx64 ":%" SCNx64, &flash_lo, &flash_hi);
        else if (strncmp(argv[i], "mark=", 5) == 0 && n_marks < MAX_MARKS)
            marks[n_marks++] = strtoull(argv[i] + 5, NULL, 16);
        else { fprintf(stderr, "trm_insn_classes: unknown argument %s\n", argv[i]); return -1; }
    }
    if (!out_path) { fprintf(stderr, "trm_insn_classes: needs out=<file>\n"); return -1; }
    if (ranges && !read_ranges(ranges)) {
        fprintf(stderr, "trm_insn_classes: cannot read ranges file %s\n", ranges);
        return -1;
    }
    if (n_marks) {
        char path[4096];
        snprintf(path, sizeof(path), "%s.marks", out_path);
        marks_file = fopen(path, "w");
        if (!marks_file) { fprintf(stderr, "trm_insn_classes: cannot write %s\n", path); return -1; }
    }
    counts = calloc((n_ranges + 1) * N_CLASSES, sizeof(uint64_t));
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
